"""Kernels that split their work in phases (``lowerings.PHASES``) instead of a ``prange`` inside:
the kernel sources hold no ``prange`` (the step loop's ``native.run_group`` holds the one), and
the Winograd F(4x4, 3x3) and ``red_Dot`` calls of a plan become share calls (one per share of
``threads.shares()``, the group flag in share 0's record) that agree with the reference for 1, 2
and 3 workers; ``red_Dot`` sums the same parts in the same order for every worker count."""
import re
from pathlib import Path

import numpy as np
import pytest

import compiler.backends.cpu.nn_winograd as nn_winograd
import staticgraph as sg
from compiler.backends.cpu import library, native, threads
from compiler.backends.cpu.lowerings import DOT_SUM_SHARE
from helpers import run_cpu_and_reference

KERNEL_FILES = [Path(library.__file__).parent / f for f in library.KERNEL_FILES]
PRANGE = re.compile(r"\bprange\s*\(|^\s*from numba import[^\n]*\bprange\b", re.M)     # a call or an import
# kernels that still split their own work with a prange (to move to phases like the others)
STILL_INSIDE = {"gemm.py"}


def test_no_kernel_splits_its_work_with_a_prange():
    holders = {path.name for path in KERNEL_FILES if PRANGE.search(path.read_text())}
    assert holders == STILL_INSIDE
    assert not PRANGE.search(library.SOURCE)       # the generated module (elementwise, Winograd)
    assert not PRANGE.search(nn_winograd.SOURCE)
    assert PRANGE.search(native.RUNTIME_SOURCE)    # the step loop's worker groups


def _records(plan, kernel):
    """(call, its record) of every call of ``kernel`` in the plan's native tier."""
    lay = next(iter(plan._exe.tier.layouts.values()))
    return [(c, [int(v) for v in lay.M[c.pos:c.pos + c.size]]) for c in plan._exe.tier.prog.all_calls
            if c.kernel == kernel]


def _check_shares(plan, kernel, workers_of, share_at: int):
    """``kernel``'s calls come in groups of G = threads.shares() shares 0..G-1; share 0's group flag
    is set where the record's workers (``workers_of(record)``) are 2 or more and the layout has workers."""
    g = threads.shares()
    calls = _records(plan, kernel)
    assert calls and len(calls) % g == 0, (kernel, len(calls), g)
    for i in range(0, len(calls), g):
        group = calls[i:i + g]
        assert [rec[share_at] for _, rec in group] == list(range(g))
        assert [c.share for c, _ in group] == ([(t, g) for t in range(g)] if g > 1 else [()] * g)
        first = group[0][1]
        want = int(g > 1 and threads.kernel_threads() > 1 and workers_of(first) >= 2)
        assert first[-1] == want and all(rec[-1] == 0 for _, rec in group[1:])


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_dot_shares_sum_fixed_parts(workers, rng, monkeypatch):
    """sum(a * b) over 3 x 200 x 300 products: G shares of the 16 parts' partial sums, then their
    sum in order; the same float64 bits for 1, 2 and 3 workers, close to the reference."""
    a, b = rng.normal(size=(3, 200, 300)), rng.normal(size=(3, 200, 300))
    results = []
    for w in (workers, 1):
        monkeypatch.setenv("STATICGRAPH_KERNEL_THREADS", str(w))
        sg.reset_default_graph()
        A, B = sg.placeholder(sg.float64, a.shape), sg.placeholder(sg.float64, a.shape)
        dot = sg.reduce_sum(A * B)
        with sg.Session() as sess:
            plan = sess.compile([dot], [A, B])
            results.append(plan(a, b)[0])
        _check_shares(plan, "dot_parts", lambda rec: rec[DOT_SUM_SHARE.at.workers], DOT_SUM_SHARE.at.share)
        assert _records(plan, "dot_parts")[0][1][DOT_SUM_SHARE.at.workers] == min(w, threads.kernel_threads())
    assert results[0].tobytes() == results[1].tobytes()
    np.testing.assert_allclose(results[0], np.sum(a * b), rtol=1e-12)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_winograd_calls_run_as_shares(workers, rng, monkeypatch):
    """A conv and both gradients on Winograd (5 samples, blocks of one sample): wino_fwd and
    wino_bwd as G shares each after their prep phase, wino_bwd_sum after; results vs the reference."""
    monkeypatch.setenv("STATICGRAPH_KERNEL_THREADS", str(workers))
    monkeypatch.setattr(nn_winograd, "BLOCK_TILES", 9)
    k = nn_winograd.MIN_CHANNELS
    x, wt = rng.standard_normal((5, k, 7, 8)), rng.standard_normal((k + 1, k, 3, 3))
    X, W = sg.placeholder(sg.float64, x.shape), sg.placeholder(sg.float64, wt.shape)
    y = sg.nn.conv2d(X, W, padding=1)
    fetches = [y] + sg.gradients(sg.reduce_sum(y * y), [X, W])
    with sg.Session() as sess:
        plan = sess.compile(fetches, [X, W])
        plan(x, wt)
    kernels = [c.kernel for c in plan._exe.tier.prog.all_calls if c.kernel.startswith("wino_")]
    g = threads.shares()
    assert kernels == ["wino_prep"] + ["wino_fwd"] * g + ["wino_bwd_prep"] + ["wino_bwd"] * g + ["wino_bwd_sum"]
    _check_shares(plan, "wino_fwd", nn_winograd._workers, nn_winograd.WINO.size)
    _check_shares(plan, "wino_bwd", nn_winograd._workers, nn_winograd.WINO_BWD.size)
    assert {nn_winograd._workers(rec) for _, rec in _records(plan, "wino_bwd")} == {min(workers, threads.kernel_threads())}
    cpu, ref = run_cpu_and_reference(fetches, {X: x, W: wt})
    for got, want in zip(cpu, ref):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10 * np.abs(want).max())


def test_more_workers_after_lowering_keep_to_the_lowered_shares(rng, monkeypatch):
    """A plan lowered for 2 shares, run at a new batch size after ``STATICGRAPH_KERNEL_THREADS``
    went up to 3: its Winograd and red_Dot records keep T at most 2 (no work for a share that
    does not exist), and the results still match the reference."""
    monkeypatch.setenv("STATICGRAPH_KERNEL_THREADS", "2")
    k = nn_winograd.MIN_CHANNELS
    X, W = sg.placeholder(sg.float64, (None, k, 6, 8)), sg.placeholder(sg.float64, (k, k, 3, 3))
    y = sg.nn.conv2d(X, W, padding=1)
    fetches = [sg.reduce_sum(y * y)] + sg.gradients(sg.reduce_sum(y * y), [X, W])
    wt = rng.standard_normal((k, k, 3, 3))
    with sg.Session() as sess:
        plan = sess.compile(fetches, [X, W])
        plan(rng.standard_normal((3, k, 6, 8)), wt)
        monkeypatch.setenv("STATICGRAPH_KERNEL_THREADS", "3")
        x = rng.standard_normal((5, k, 6, 8))
        got = plan(x, wt)
        assert len(plan._exe.tier.layouts) == 2
        for lay in plan._exe.tier.layouts.values():
            for c in plan._exe.tier.prog.all_calls:
                rec = [int(v) for v in lay.M[c.pos:c.pos + c.size]]
                if c.kernel == "wino_bwd":
                    assert nn_winograd._workers(rec) <= 2
                if c.kernel == "dot_parts":
                    assert rec[DOT_SUM_SHARE.at.shares] == 2 and rec[DOT_SUM_SHARE.at.workers] <= 2
    with sg.Session(target="reference") as ref:
        want = ref.run(fetches, {X: x, W: wt})
    for g_, w_ in zip(got, want):
        np.testing.assert_allclose(g_, w_, rtol=1e-10, atol=1e-10 * np.abs(w_).max())
