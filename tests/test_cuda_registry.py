"""The cuda kernel registry: every kernel the cuda profile's lowering emits, for every op type the
cpu target lowers, has a launcher; a missing launcher is a compile-time error naming the op and
the user's line; the profile keeps the cpu-only kernels and machinery out."""
import numpy as np
import pytest

import staticgraph as sg
from cuda_helpers import fast_simulator_switching  # noqa: F401  (autouse; skips the module without numba-cuda)
from compiler.backends.cpu import LOWERINGS
from compiler.backends.cpu.executable import _optimize
from compiler.backends.cpu.library import ELEMENTWISE
from compiler.backends.cpu.lowering import Lowering
from compiler.backends.cuda.kernels import LAUNCHERS, load_all
from compiler.backends.cuda.profile import CUDA_PROFILE
from compiler.schedule import schedule
from staticgraph.ops.collective import all_reduce
from staticgraph.ops.pool import max_pool_gather

# op types no cuda plan lowers, each for a reason its own test checks: no elementwise fusion pass
# (the cuda plan is the base tier), collectives refused at compile time
NOT_ON_CUDA = {"FusedElementwise": "test_the_cuda_plan_runs_the_passes_without_fusion",
               "Allreduce": "test_host_calls_are_refused_at_compile_time"}


def _zoo():
    """Graphs whose schedules hold every op type the cpu target lowers (but NOT_ON_CUDA's),
    with shapes where the cpu would choose its Winograd, single-tile and fused conv kernels."""
    x = sg.placeholder(sg.float32, (None, 6), name="x")
    labels = sg.placeholder(sg.int64, (None,), name="labels")
    w = sg.Variable(np.ones((6, 4), np.float32), name="w")
    h = sg.relu(sg.matmul(x, w)) + sg.ones_like(x)[:, :4] + sg.ones((4,))
    h = sg.debugging.check_numerics(sg.identity(h), "h")
    parts = [h[:, :2], sg.stop_gradient(h[:, 2:])]
    h = sg.concat([sg.where(parts[0] > 0.0, sg.exp(parts[0]), sg.pow(sg.abs(parts[0]), 0.5)), parts[1]], axis=1)
    logits = sg.reshape(sg.expand_dims(h, 1), (-1, 4))
    loss = sg.reduce_mean(sg.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    loss = loss + sg.reduce_sum(sg.nn.softmax(logits) * sg.one_hot(labels, 4)) + sg.reduce_max(logits)
    loss = loss + sg.cast(sg.reduce_sum(sg.argmax(logits, axis=1)), sg.float32) + sg.reduce_sum(logits * logits)
    ops = [sg.random_normal((2,), seed=1), sg.random_uniform((2,), seed=2), sg.transpose(logits),
           sg.pow(sg.cast(labels, sg.int32), 2), sg.matmul(sg.cast(logits, sg.int64), sg.ones((4, 2), sg.int64))]
    for fn in (sg.neg if hasattr(sg, "neg") else sg.negative, sg.sign, sg.square, sg.sqrt, sg.log, sg.sin,
               sg.cos, sg.tanh, sg.sigmoid):
        ops.append(fn(logits))
    ops += [logits - 1.0, logits / 2.0, sg.maximum(logits, 0.0), sg.minimum(logits, 0.0), logits < 0.0,
            logits <= 0.0, logits >= 0.0, sg.equal(logits, 0.0), sg.not_equal(logits, 0.0), logits > 0.0]
    img = sg.placeholder(sg.float32, (None, 16, 12, 12), name="img")
    k3 = sg.Variable(np.ones((16, 16, 3, 3), np.float32), name="k3")      # cpu: Winograd / single tile
    c = sg.nn.conv2d(img, k3, padding=1)
    c = sg.nn.max_pool2d(c, 2) + 0.0
    c = sg.nn.avg_pool2d(c, 2)
    closs = sg.reduce_sum(c * c)
    train = sg.train.GradientDescentOptimizer(0.1).minimize(loss + closs)
    gp = sg.gradients(sg.reduce_sum(sg.nn.max_pool2d(img, 2) ** 2), [img])[0]
    second = sg.gradients(sg.reduce_sum(gp * gp), [img])          # MaxPoolGather where it appears
    m = sg.nn.max_pool2d(img, 2)
    gather = max_pool_gather(img, m.op.outputs[1] if len(m.op.outputs) > 1 else m, 2)
    fetches = [loss, closs, train, sg.group(train)] + ops + second + [gather] + sg.gradients(closs, [img])
    return fetches, [x, labels, img]


def _lowered(fetches, feeds, types=None):
    """The cuda plan's program (graph passes without fusion, then the cuda profile's lowering);
    ``types`` gains the op types of the schedule before and after the passes (those the passes
    remove, Identity or Fill, never reach a lowering)."""
    tensors = [f for f in fetches if isinstance(f, sg.Tensor)]
    targets = [f for f in fetches if not isinstance(f, sg.Tensor)]
    sched = schedule(tensors, targets, feeds)
    opt = _optimize(sched, fusion=False)
    if types is not None:
        types.update([op.type for op in sched.ops + opt.schedule.ops] + [t.op.type for t in sched.feeds])
    return Lowering(opt.schedule, CUDA_PROFILE).lower()


def test_every_emitted_kernel_has_a_launcher_and_every_op_type_is_covered():
    load_all()
    types = set()
    prog = _lowered(*_zoo(), types=types)
    missing_types = sorted(set(LOWERINGS) - types - set(NOT_ON_CUDA))
    assert not missing_types, f"the zoo lacks op types (add them to _zoo): {missing_types}"
    emitted = {c.kernel for c in prog.all_calls}
    assert emitted - set(LAUNCHERS) == set(), "kernels with no cuda launcher"
    assert {f"ew_{n}" for n in ELEMENTWISE} <= set(LAUNCHERS)
    # the cpu-only kernels are never chosen: no Winograd, single-tile Winograd, conv+pool fusion
    assert not {k for k in emitted if k.startswith(("wino_", "tile_", "conv_pool"))}
    # the conv and pool kernels, as the cpu lowers them unfused (the bias folded into the conv)
    assert {"conv_fwd", "conv_bpi", "conv_bpf", "pool_max", "pool_avg", "pool_avg_grad", "pool_max_grad",
            "pool_max_gather"} <= emitted
    assert not any(c.share for c in prog.all_calls)


def test_missing_launcher_is_a_compile_time_error_naming_the_op_and_line(monkeypatch):
    load_all()
    monkeypatch.delitem(LAUNCHERS, "ew_Sin")
    x = sg.placeholder(sg.float32, (3,))
    y = sg.sin(x, name="my_sine")
    with sg.Session(target="cuda") as sess:
        with pytest.raises(NotImplementedError, match=r"no kernel 'ew_Sin' for Sin 'my_sine' at .*test_cuda_registry.py:\d+"):
            sess.compile(y, [x])


def test_host_calls_are_refused_at_compile_time():
    x = sg.placeholder(sg.float32, (3,))
    y = all_reduce(x, "sum", name="my_allreduce")
    with sg.Session(target="cuda") as sess:
        with pytest.raises(NotImplementedError, match=r"host call 'allreduce' of Allreduce 'my_allreduce'.*target='cpu'"):
            sess.compile(y, [x])


def test_the_cuda_plan_runs_the_passes_without_fusion():
    x = sg.placeholder(sg.float32, (3,))
    y = sg.exp(sg.sin(x) * 2.0 + 1.0)           # a fusable chain: one group on the cpu's fused tier
    prog = _lowered([y], [x])
    assert [c.kernel for c in prog.all_calls] == ["ew_Sin", "ew_Mul", "ew_Add", "ew_Exp"]
    assert not prog.fused


def test_the_generated_elementwise_kernels_read_their_record_by_field_name():
    """The cuda elementwise kernels are generated text (``elementwise.kernel_source``): each reads the
    shared elementwise record (``cpu/library.ew_spec``) by field name, never at a literal position."""
    from compiler.backends.cuda.kernels.elementwise import kernel_source
    from test_cpu_records import magic_reads
    for name, (arity, expr, check) in ELEMENTWISE.items():
        source = kernel_source(name, arity, expr, check)
        assert f"EW{arity + 1}.off{arity}" in source, source
        assert not magic_reads(source), (name, magic_reads(source))
