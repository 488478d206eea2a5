"""sg.distributed (API.md section 11): data-parallel training over MPI.

The MPI tests run ``tests/distributed_worker.py`` under ``mpiexec -n 2`` and ``-n 3`` as
subprocesses (each with a timeout, in a session of its own that is killed on expiry, so no test
can hang CI) and compare every rank's parameters with one process training on the same global
batches, run in this process by the same code. They are skipped only where mpi4py or mpiexec is
absent (CI installs both: setup.cfg's ``test`` extra). The single-process parts (graph
structure, sharding, errors, the op's gradient) need no MPI.
"""
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import staticgraph as sg
from staticgraph import distributed as dist
from staticgraph.ops import collective

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import distributed_worker as worker  # noqa: E402

TIMEOUT = 240       # seconds per mpiexec run (the cpu case may compile kernels on a cold cache)


def _mpiexec():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return None
    beside = Path(sys.executable).parent / "mpiexec"      # the mpich wheel installs it beside python
    return str(beside) if beside.exists() else shutil.which("mpiexec")


MPIEXEC = _mpiexec()
needs_mpi = pytest.mark.skipif(MPIEXEC is None, reason="mpi4py or mpiexec not installed "
                                                       "(pip install -e '.[distributed]')")


def launch(n, argv, cwd):
    """``mpiexec -n n python *argv``: (return code, output), killed with its whole process group
    after TIMEOUT seconds (the test then fails, never hangs)."""
    # MPICH: a rank waiting in a collective yields its core (the suite's other workers share them)
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               MPIR_CVAR_ENABLE_HEAVY_YIELD="1")
    cmd = [MPIEXEC, "-n", str(n), sys.executable, *map(str, argv)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"{' '.join(cmd)} still ran after {TIMEOUT} s:\n{out}")
    return proc.returncode, out


def mpirun(n, tmp_path, scenario, *args):
    """``distributed_worker.py scenario tmp_path *args`` on n ranks."""
    return launch(n, [HERE / "distributed_worker.py", scenario, tmp_path, *args], tmp_path)


def single_process(tmp_path, *args):
    """The worker in this process (rank 0 of 1): its final variables."""
    sg.reset_default_graph()
    out = tmp_path / "single"
    out.mkdir()
    assert worker.main([args[0], str(out), *args[1:]]) == 0
    return dict(np.load(out / "rank0.npz"))


def ranks(tmp_path, n):
    return [dict(np.load(tmp_path / f"rank{r}.npz")) for r in range(n)]


def assert_same(got, want, dtype):
    assert sorted(got) == sorted(want)
    rtol, atol = (1e-12, 1e-14) if dtype == "float64" else (1e-5, 1e-7)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=rtol, atol=atol, err_msg=name)


# -- K ranks give one process's parameters ----------------------------------------------------

@needs_mpi
@pytest.mark.parametrize("n, target, dtype, optimizer", [
    (2, "reference", "float64", "sgd"),
    (3, "reference", "float64", "sgd"),
    (2, "reference", "float64", "momentum"),
    (3, "reference", "float64", "momentum"),
    (2, "reference", "float64", "adam"),
    (3, "reference", "float64", "adam"),
    (2, "reference", "float32", "adam"),
    (3, "cpu", "float32", "adam"),
    (2, "cpu", "float32", "sgd"),
    (2, "cpu", "float32", "momentum"),
    (2, "cpu", "float64", "sgd"),
])
def test_ranks_match_one_process_on_the_global_batch(tmp_path, n, target, dtype, optimizer):
    args = ("train", "--target", target, "--dtype", dtype, "--optimizer", optimizer, "--steps", "4", "--batch", "12")
    want = single_process(tmp_path, *args)
    rc, out = mpirun(n, tmp_path, *args)
    assert rc == 0, out
    got = ranks(tmp_path, n)
    for r in range(n):
        assert_same(got[r], want, dtype)


@needs_mpi
def test_the_python_plan_calls_the_allreduce_too(tmp_path, monkeypatch):
    """Under NUMBA_DISABLE_JIT=1 the cpu target runs its generated plan.py as Python, which calls
    the host call (the allreduce) through its ``hosts`` parameter."""
    args = ("train", "--dtype", "float32", "--optimizer", "sgd", "--steps", "2")
    want = single_process(tmp_path, *args, "--target", "reference")
    monkeypatch.setenv("NUMBA_DISABLE_JIT", "1")
    monkeypatch.setenv("STATICGRAPH_CACHE_DIR", str(tmp_path / "cache"))
    rc, out = mpirun(2, tmp_path, *args, "--target", "cpu")
    assert rc == 0, out
    for got in ranks(tmp_path, 2):
        assert_same(got, want, "float32")


READ_AFTER = """
import sys
sys.path.insert(0, {root!r})
import numpy as np, staticgraph as sg
from staticgraph import distributed as dist
rank = dist.rank()
res = {{}}
for target in ("reference", "cpu"):
    with sg.Graph().as_default():
        x = sg.placeholder(sg.float32, [4, 3])
        w = sg.Variable(np.ones((3, 2), np.float32))
        b = sg.Variable(np.zeros(2, np.float32))
        loss = sg.reduce_sum(sg.square(x @ w + b))
        gw = sg.gradients(loss, [w])[0]
        step = dist.DistributedOptimizer(sg.train.GradientDescentOptimizer(0.01)).minimize(loss)
        probe = sg.reduce_sum(gw * 1.0)     # reads this rank's gradient after the allreduce
        with sg.Session(target=target) as sess:
            sess.run(sg.global_variables_initializer())
            xv = np.arange(12, dtype=np.float32).reshape(4, 3) * (rank + 1)
            res[target] = [sess.run([step, probe], {{x: xv}})[1] for _ in range(2)] + [sess.get_variable_value(w)]
for a, c in zip(res["reference"], res["cpu"]):
    np.testing.assert_allclose(c, a, rtol=1e-5)
with open({out!r} + f"/sum{{rank}}.txt", "w") as f:     # a file per rank: the ranks' stdout interleaves
    f.write(repr(float(res["cpu"][0])))
"""


@needs_mpi
def test_a_gradient_read_after_the_allreduce_keeps_its_local_value(tmp_path):
    """On cpu the gradient lives in the fusion buffer: a read after the allreduce must still see
    this rank's own gradient (the allreduce then does not run in place), as on reference."""
    script = tmp_path / "read_after.py"
    script.write_text(READ_AFTER.format(root=str(HERE.parent), out=str(tmp_path)))
    rc, out = launch(2, [script], tmp_path)
    assert rc == 0, out
    sums = [float((tmp_path / f"sum{r}.txt").read_text()) for r in range(2)]
    assert sums[1] == pytest.approx(4 * sums[0]), out      # rank 1's inputs are 2x: 4x


@needs_mpi
def test_sum_is_k_times_the_mean(tmp_path):
    """op="sum" with learning rate lr is the mean-combined step with lr * K."""
    want = single_process(tmp_path, "train", "--lr-scale", "2")
    rc, out = mpirun(2, tmp_path, "train", "--op", "sum")
    assert rc == 0, out
    for got in ranks(tmp_path, 2):
        assert_same(got, want, "float64")


@needs_mpi
def test_without_the_distributed_optimizer_ranks_drift_apart(tmp_path):
    """The control: plain optimizers train each rank on its own shard only."""
    rc, out = mpirun(2, tmp_path, "train", "--op", "none")
    assert rc == 0, out
    a, b = ranks(tmp_path, 2)
    assert not np.allclose(a["w1"], b["w1"])


@needs_mpi
def test_broadcast_gives_every_rank_root_values(tmp_path):
    """Initial values differ per rank (seeded by rank); after broadcast_variables all are rank 0's."""
    want = single_process(tmp_path, "train", "--steps", "0")
    rc, out = mpirun(3, tmp_path, "train", "--steps", "0")
    assert rc == 0, out
    for got in ranks(tmp_path, 3):
        assert_same(got, want, "float64")
    rc, out = mpirun(2, tmp_path, "train", "--steps", "0", "--no-broadcast")
    a, b = ranks(tmp_path, 2)
    assert rc == 0 and not np.allclose(a["w1"], b["w1"]), out


@needs_mpi
def test_uneven_shards_keep_ranks_in_step(tmp_path):
    """A global batch of 10 rows on 3 ranks: parts of 4, 3, 3 rows; every rank ends with the same
    parameters (they differ from one process's: a mean of unequal means is not the global mean)."""
    rc, out = mpirun(3, tmp_path, "train", "--batch", "10", "--optimizer", "momentum")
    assert rc == 0, out
    got = ranks(tmp_path, 3)
    for other in got[1:]:
        assert_same(other, got[0], "float64")


@needs_mpi
def test_saver_writes_on_rank_0_only(tmp_path):
    rc, out = mpirun(2, tmp_path, "save", "--steps", "2")
    assert rc == 0, out
    assert (tmp_path / "ckpt-rank0.npz").exists()
    assert not (tmp_path / "ckpt-rank1.npz").exists()
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    saved = dict(np.load(tmp_path / "ckpt-rank0.npz"))
    assert_same(saved, ranks(tmp_path, 2)[0], "float64")


@needs_mpi
def test_the_example_trains_on_two_ranks(tmp_path):
    rc, out = launch(2, [HERE.parent / "examples" / "train_distributed.py", "--epochs", "2", "--limit", "256",
                         "--target", "reference"], tmp_path)
    assert rc == 0, out
    assert out.count("final held-out accuracy") == 1, out         # rank 0 alone prints
    assert "2 rank(s); global batch 64 (32/32 rows per rank)" in out
    assert "samples/s on 2 rank(s)" in out


# -- faults: the job ends, with an error, within the timeout --------------------------------

@needs_mpi
def test_an_uncaught_error_on_one_rank_aborts_the_job(tmp_path):
    rc, out = mpirun(2, tmp_path, "raise", "--steps", "6")
    assert rc != 0
    assert "rank 1 fails on purpose" in out and "aborting the MPI job" in out, out
    assert not (tmp_path / "rank0.npz").exists()      # rank 0 did not train on alone


@needs_mpi
def test_a_killed_rank_ends_the_others(tmp_path):
    rc, out = mpirun(3, tmp_path, "kill", "--steps", "6")
    assert rc != 0, out
    assert not any((tmp_path / f"rank{r}.npz").exists() for r in range(3)), out


@needs_mpi
@pytest.mark.parametrize("scenario, broadcast, message", [
    ("shape", False, "variable 'w1' is float64 [5, 4] on rank 0 but float64 [5, 5] on rank 1"),
    ("missing", False, "variable 'b2' exists on rank 0 but not on rank 1"),
    ("shape", True, "broadcast_variables: the ranks of this MPI job build different graphs: variable 'w1'"),
])
def test_ranks_with_different_variables_fail_naming_the_variable(tmp_path, scenario, broadcast, message):
    rc, out = mpirun(2, tmp_path, scenario, *(() if broadcast else ("--no-broadcast",)))
    assert rc != 0
    assert message in out, out
    assert not (tmp_path / "rank0.npz").exists()


# -- one process: no MPI needed ----------------------------------------------------------------

def test_one_process_is_rank_0_of_1():
    assert (dist.rank(), dist.size()) == (0, 1)
    dist.init()


class _Rank1Of2:
    """Stands in for COMM_WORLD as seen by rank 1 (for the rank-0-only writers; no collective runs)."""

    def Get_rank(self):
        return 1

    def Get_size(self):
        return 2


def test_other_ranks_write_no_checkpoint_and_no_events(monkeypatch, tmp_path):
    v = sg.Variable(np.arange(3.0))
    with sg.Session(target="reference") as sess:
        sess.run(sg.global_variables_initializer())
        assert sg.train.Saver().save(sess, tmp_path / "ckpt") == str(tmp_path / "ckpt.npz")
        monkeypatch.setattr(collective, "_job", {"comm": _Rank1Of2()})
        assert dist.rank() == 1
        assert sg.train.Saver().save(sess, tmp_path / "other") == str(tmp_path / "other.npz")
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]
    np.testing.assert_array_equal(np.load(tmp_path / "ckpt.npz")[v.op.name], np.arange(3.0))
    pytest.importorskip("tensorboardX")
    with sg.summary.FileWriter(tmp_path / "logs", graph=sg.get_default_graph()) as writer:
        writer.add_scalar("loss", 1.0, 1)
        assert writer.get_logdir() == str(tmp_path / "logs")
    assert not (tmp_path / "logs").exists()


def test_a_launcher_without_mpi4py_is_an_error(monkeypatch):
    """K processes that cannot talk would each train alone: refuse, saying what to install."""
    monkeypatch.setattr(collective, "_job", {})
    monkeypatch.setenv("PMI_SIZE", "4")
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(ImportError, match=r"started 4 processes, but mpi4py is not installed"):
        dist.size()


def _model(dtypes):
    xs = {dt: sg.placeholder(dt, [None, 3], name=f"x_{dt}") for dt in dtypes}
    ws = [sg.Variable(np.ones((3, 2)), dtype=dt, name=f"w_{dt}") for dt in dtypes]
    bs = [sg.Variable(np.zeros(2), dtype=dt, name=f"b_{dt}") for dt in dtypes]
    losses = [sg.reduce_mean(sg.square(xs[dt] @ w + b)) for dt, w, b in zip(dtypes, ws, bs)]
    loss = losses[0] + sg.cast(losses[1], "float32") if len(losses) > 1 else losses[0]
    return xs, ws + bs, loss


def test_one_allreduce_per_dtype_over_a_flat_buffer():
    xs, variables, loss = _model(["float32", "float64"])
    opt = dist.DistributedOptimizer(sg.train.MomentumOptimizer(0.1, 0.9))
    opt.minimize(loss)
    ops = [op for op in sg.get_default_graph().get_operations() if op.type == "Allreduce"]
    assert sorted(op.inputs[0].dtype.name for op in ops) == ["float32", "float64"]
    for op in ops:
        assert op.inputs[0].shape == (8,)                      # w (3x2) and b (2) in one buffer
        assert op.attrs["op"] == "mean"
        assert [p[0] for p in op.attrs["parts"]] == ["w_float32", "w_float64", "b_float32", "b_float64"]
    assert opt.get_slot_names() == ["momentum"]                # the wrapped optimizer's attributes


def test_apply_gradients_combines_only_what_is_not_combined():
    _, variables, loss = _model(["float32"])
    opt = dist.DistributedOptimizer(sg.train.GradientDescentOptimizer(0.1), op="sum")
    opt.apply_gradients(opt.compute_gradients(loss))
    opt.apply_gradients(zip(sg.gradients(loss, variables), variables))
    ops = [op for op in sg.get_default_graph().get_operations() if op.type == "Allreduce"]
    assert len(ops) == 2 and {op.attrs["op"] for op in ops} == {"sum"}


@pytest.mark.parametrize("target", ["reference", "cpu"])
def test_one_process_distributed_step_is_the_plain_step(target):
    """Size 1: the allreduce is the identity, so the wrapped step gives the plain one's values."""
    results = []
    for wrap in (False, True):
        sg.reset_default_graph()
        xs, variables, loss = _model(["float32"])
        opt = sg.train.AdamOptimizer(0.1)
        step = (dist.DistributedOptimizer(opt) if wrap else opt).minimize(loss)
        with sg.Session(target=target) as sess:
            sess.run(sg.global_variables_initializer())
            x = np.arange(12, dtype=np.float32).reshape(4, 3) / 10
            for _ in range(3):
                sess.run(step, {xs["float32"]: x})
            results.append([sess.get_variable_value(v) for v in variables])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_cpu_step_combines_in_the_fusion_buffer_in_place():
    """The cpu plan: the gradients' kernels write into the fusion buffer (no copy in), the
    allreduce is one host call in place on it, and the variables' parts are pieces of it (no copy
    out)."""
    xs, variables, loss = _model(["float32"])
    step = dist.DistributedOptimizer(sg.train.MomentumOptimizer(0.1, 0.9)).minimize(loss)
    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        plan = sess.compile([step, loss], [xs["float32"]])
        plan(np.ones((4, 3), np.float32))
        exe = plan._exe
        calls = [(c.op.type, c.kernel) for c in exe.base.prog.calls if c.op is not None]
        lay = next(iter(exe.tier.layouts.values()))
    assert [k for t, k in calls if t in ("Concat", "SplitLike", "Allreduce")] == ["allreduce"]
    assert [(o.op.type, i.op.type) for o, i in lay.arena.inplace if o.op.type == "Allreduce"] == [("Allreduce", "Concat")]


def test_cpu_fusion_buffer_with_gradients_that_are_feeds_variables_constants_and_fetched():
    """Gradients that cannot be computed into the fusion buffer (a feed, a variable, a constant,
    one fetched, one twice) are copied in; the rest are pieces of it; cpu agrees with reference."""
    x = sg.placeholder(sg.float32, [2, 3], name="x")
    v = sg.Variable(np.full((2, 3), 0.5, np.float32), name="v")
    a, b, c, d = (sg.Variable(np.ones((2, 3), np.float32) * k, name=n) for k, n in ((1, "a"), (2, "b"), (3, "c"),
                                                                                    (4, "d")))
    w = sg.Variable(np.ones((3, 2), np.float32), name="w")
    loss = (sg.reduce_sum(a * x) + sg.reduce_sum(b * v) + 2.0 * sg.reduce_sum(c) + sg.reduce_sum(sg.square(d))
            + sg.reduce_sum(sg.square(x @ w)))
    opt = dist.DistributedOptimizer(sg.train.MomentumOptimizer(0.05, 0.9))
    pairs = opt.compute_gradients(loss, [a, b, c, d, w])
    raw = sg.gradients(loss, [d])[0]
    step = opt.apply_gradients(pairs)
    xv = np.arange(6, dtype=np.float32).reshape(2, 3) / 6
    out = {}
    for target in ("reference", "cpu"):
        with sg.Session(target=target) as sess:
            sess.run(sg.global_variables_initializer())
            fetched = [sess.run([step, raw], {x: xv})[1] for _ in range(3)]
            out[target] = [sess.get_variable_value(t) for t in (a, b, c, d, w)] + fetched
    for got, want in zip(out["cpu"], out["reference"]):
        np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("op", ["mean", "sum"])
def test_allreduce_gradient_by_finite_differences(op):
    """One process (the identity), first and second order: the rule builds Allreduce ops."""
    sg.check_gradients(lambda x: sg.tanh(sg.ops.all_reduce(x * x, op)) * x, [np.linspace(-1, 1, 6).reshape(2, 3)],
                       order=2)


def test_allreduce_build_errors():
    x = sg.placeholder("float32", [3])
    with pytest.raises(ValueError, match=r"op must be one of mean, sum, got 'max'"):
        sg.ops.all_reduce(x, "max")
    with pytest.raises(TypeError, match=r"floating point"):
        sg.ops.all_reduce(sg.placeholder("int64", [3]))
    with pytest.raises(ValueError, match=r"op must be one of 'mean', 'sum'"):
        dist.DistributedOptimizer(sg.train.GradientDescentOptimizer(0.1), op="max")
    with pytest.raises(TypeError, match=r"wraps a sg.train optimizer"):
        dist.DistributedOptimizer("sgd")


def test_layout_difference_names_the_variable():
    a = (("w", "float32", (2, 3)), ("b", "float32", (3,)))
    assert collective.layout_difference([a, a, a]) == ""
    assert collective.layout_difference([a, a[:1]]) == "variable 'b' exists on rank 0 but not on rank 1"
    assert collective.layout_difference([a, a + (("c", "float64", ()),)]) == \
        "variable 'c' exists on rank 1 but not on rank 0"
    assert collective.layout_difference([a, a, (("w", "float64", (2, 3)), a[1])]) == \
        "variable 'w' is float32 [2, 3] on rank 0 but float64 [2, 3] on rank 2"
    assert collective.layout_difference([a, a[::-1]]) == "rank 1 orders its variables differently from rank 0"


# -- sharding ------------------------------------------------------------------------------------

@pytest.mark.parametrize("n, batch_size, shards, drop_last", [(10, 4, 3, False), (12, 12, 3, True), (7, 2, 3, False)])
def test_shards_together_are_the_unsharded_batches(n, batch_size, shards, drop_last):
    x, y = np.arange(n) * 10, np.arange(n)
    whole = list(sg.datasets.batches(x, y, batch_size=batch_size, shuffle=True, seed=3, epoch=1, drop_last=drop_last))
    parts = [list(sg.datasets.batches(x, y, batch_size=batch_size, shuffle=True, seed=3, epoch=1,
                                      drop_last=drop_last, num_shards=shards, shard_index=k)) for k in range(shards)]
    assert all(len(p) == len(whole) for p in parts)
    for i, (wx, wy) in enumerate(whole):
        sizes = [len(p[i][0]) for p in parts]
        assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)
        np.testing.assert_array_equal(np.concatenate([p[i][0] for p in parts]), wx)   # contiguous, in order
        np.testing.assert_array_equal(np.concatenate([p[i][1] for p in parts]), wy)


def test_shard_arguments_are_checked():
    x = np.arange(6)
    with pytest.raises(ValueError, match=r"num_shards must be an int >= 1"):
        sg.datasets.batches(x, batch_size=2, num_shards=0)
    with pytest.raises(ValueError, match=r"shard_index must be below num_shards=2, got 2"):
        sg.datasets.batches(x, batch_size=2, num_shards=2, shard_index=2)
    with pytest.raises(ValueError, match=r"shard_index must be an int >= 0"):
        sg.datasets.batches(x, batch_size=2, num_shards=2, shard_index=-1)


# -- ranks on one node share its cores -----------------------------------------------------------

def test_ranks_on_one_node_default_to_their_share_of_the_cores(monkeypatch):
    import threadpoolctl
    for var in collective.THREAD_VARS:
        monkeypatch.delenv(var, raising=False)      # restored after the test
    with threadpoolctl.threadpool_limits(limits=None):       # restores the BLAS thread counts on exit
        assert collective.share_cores(1) is None and not any(os.environ.get(v) for v in collective.THREAD_VARS)
        cpus = len(os.sched_getaffinity(0))
        n = collective.share_cores(2)
        assert n == (cpus if cpus < os.cpu_count() else max(1, cpus // 2))
        assert all(os.environ[v] == str(n) for v in collective.THREAD_VARS)
        assert all(lib["num_threads"] <= n for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    monkeypatch.delenv("STATICGRAPH_KERNEL_THREADS")
    assert collective.share_cores(2) is None and "STATICGRAPH_KERNEL_THREADS" not in os.environ   # the user's


THREADS = """
import os, sys
sys.path.insert(0, {root!r})
import threadpoolctl
from staticgraph import distributed as dist
dist.init()
blas = max(lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas")
with open({out!r} + f"/threads{{dist.rank()}}.txt", "w") as f:
    f.write(f"{{os.environ['STATICGRAPH_KERNEL_THREADS']}} {{blas}} {{len(os.sched_getaffinity(0))}} {{os.cpu_count()}}")
"""


@needs_mpi
def test_two_ranks_split_the_cores_under_mpiexec(tmp_path, monkeypatch):
    for var in collective.THREAD_VARS:
        monkeypatch.delenv(var, raising=False)
    script = tmp_path / "threads.py"
    script.write_text(THREADS.format(root=str(HERE.parent), out=str(tmp_path)))
    rc, out = launch(2, [script], tmp_path)
    assert rc == 0, out
    for r in range(2):
        kernel, blas, mine, cpus = map(int, (tmp_path / f"threads{r}.txt").read_text().split())
        want = mine if mine < cpus else max(1, mine // 2)      # a rank the launcher bound keeps its CPUs
        assert kernel == want and blas <= want, (r, kernel, blas, mine, cpus)
