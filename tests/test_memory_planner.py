"""The memory planner (compiler/memory.py, compiler/first_fit.py) against brute force and the old planner.

Thousands of random request sets, shaped like a step (each call defines one buffer and reads
earlier ones; constants pinned; in-place candidates where a call reads an input of its output's
size), and free-form interval sets (ties, several dtypes, zero sizes). Every plan is checked by
brute force: no two buffers live at one call share memory unless they are a legal in-place
pair; and its placement and peak are the old planner's (kept below as the oracle: the quadratic
scan of every live buffer that ``plan_memory`` replaced).
"""
from __future__ import annotations

import random
from typing import Dict, List, Tuple

import numpy as np
import pytest

from compiler.first_fit import UNBOUNDED, FreeBlocks
from compiler.memory import Buffer, _aligned, group_inplace, plan_memory

DTYPES = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int64))


def old_plan_memory(buffers, inplace=()):
    """The planner before issue 29 (884578d): for each buffer, filter and sort every live one (its
    in-place grouping, unchanged since, is the planner's own ``group_inplace``)."""
    by_key = {b.key: b for b in buffers}
    span, members, taken = group_inplace(buffers, inplace)
    offsets, sizes = {}, {}
    order = {b.key: i for i, b in enumerate(buffers)}
    leaders = sorted(span, key=lambda k: (span[k][0], order[k]))
    live: Dict[np.dtype, list] = {}
    for lead in leaders:
        b = by_key[lead]
        start, end = span[lead]
        size = _aligned(max(by_key[k].size for k in members[lead]))
        active = sorted(iv for iv in live.get(b.dtype, []) if iv[2] >= start)
        off = 0
        for o, n, _ in active:
            if off + size <= o:
                break
            off = max(off, o + n)
        active.append((off, size, end))
        live[b.dtype] = active
        sizes[b.dtype] = max(sizes.get(b.dtype, 0), off + size)
        for k in members[lead]:
            offsets[k] = off
    return offsets, sizes, taken


def step_like(rng: random.Random) -> Tuple[List[Buffer], List[Tuple[int, int, int]]]:
    """A random step: constants (pinned, start 0), then calls 1..T each defining one buffer."""
    n_const, n_calls = rng.randint(0, 6), rng.randint(1, 40)
    sizes = [rng.choice((1, 7, 16, 17, 64, 100)) for _ in range(n_const + n_calls)]
    dtypes = [rng.choice(DTYPES[:2]) for _ in sizes]
    last_use = {k: (0 if k < n_const else k - n_const + 1) for k in range(len(sizes))}
    candidates = []
    for call in range(1, n_calls + 1):
        out = n_const + call - 1
        for src in rng.sample(range(out), min(out, rng.randint(0, 3))):
            last_use[src] = max(last_use[src], call)
            if sizes[src] == sizes[out] and rng.random() < 0.7:
                candidates.append((out, src, call))
    fetched = {k for k in range(n_const, len(sizes)) if rng.random() < 0.1}
    buffers = [Buffer(k, dtypes[k], sizes[k], 0 if k < n_const else k - n_const + 1,
                      n_calls + 1 if k in fetched else last_use[k], k < n_const)
               for k in range(len(sizes))]
    rng.shuffle(buffers)
    return buffers, candidates


def free_form(rng: random.Random) -> List[Buffer]:
    """Arbitrary intervals: ties in start and end, zero sizes, pinned ones, three dtypes."""
    out = []
    for k in range(rng.randint(1, 60)):
        start = rng.randint(0, 30)
        out.append(Buffer(f"b{k}", rng.choice(DTYPES), rng.choice((0, 1, 16, 33, 200, 1000)), start,
                          start + rng.randint(0, 12), rng.random() < 0.1))
    return out


def brute_force_check(buffers: List[Buffer], arena) -> None:
    """Every pair of buffers checked from the requests themselves: at each call, live buffers of
    one dtype share no memory unless the later one took the earlier one's memory in place, legally
    (recorded, same dtype and size, neither pinned, the input's last use the output's first call)."""
    taken = set(arena.inplace)
    by_key = {b.key: b for b in buffers}
    for dt, used in arena.sizes.items():
        assert used % 16 == 0
    for b in buffers:
        off = arena.offsets[b.key]
        assert off % 16 == 0 and off + b.size <= arena.sizes[b.dtype]
    for out_key, in_key in taken:
        out, src = by_key[out_key], by_key[in_key]
        assert out.dtype == src.dtype and out.size == src.size and not (out.pinned or src.pinned)
        assert arena.offsets[out_key] == arena.offsets[in_key]
    life = {b.key: ((-1, 1 << 62) if b.pinned else (b.start, b.end)) for b in buffers}
    for i, a in enumerate(buffers):
        for b in buffers[i + 1:]:
            if a.dtype != b.dtype or a.size == 0 or b.size == 0:
                continue
            (s1, e1), (s2, e2) = life[a.key], life[b.key]
            o1, o2 = arena.offsets[a.key], arena.offsets[b.key]
            if s1 <= e2 and s2 <= e1 and o1 < o2 + b.size and o2 < o1 + a.size:
                pair = (a.key, b.key) if (a.key, b.key) in taken else (b.key, a.key)
                assert pair in taken, f"{a} and {b} share memory while both live"
                out, src = by_key[pair[0]], by_key[pair[1]]
                assert src.end == out.start, f"{out} took {src}'s memory before its last use"


@pytest.mark.parametrize("shape", ["step", "free"])
def test_planner_matches_brute_force_and_old_peak(shape):
    rng = random.Random(29)
    peaks = 0
    for _ in range(2000):
        if shape == "step":
            buffers, candidates = step_like(rng)
        else:
            buffers, candidates = free_form(rng), []
        arena = plan_memory(buffers, candidates)
        brute_force_check(buffers, arena)
        arena.check()
        offsets, sizes, taken = old_plan_memory(buffers, candidates)
        assert arena.sizes == sizes          # peak per dtype: the old planner's, not more
        assert arena.offsets == offsets      # the same first-fit placement: plans run as before
        assert arena.inplace == taken
        peaks += sum(sizes.values())
    assert peaks > 0


def test_in_place_taken_only_when_legal():
    f32 = DTYPES[0]
    buffers = [Buffer("a", f32, 64, 1, 2), Buffer("b", f32, 64, 2, 3), Buffer("c", f32, 64, 3, 5),
               Buffer("d", f32, 64, 4, 5), Buffer("k", f32, 64, 0, 9, pinned=True),
               Buffer("e", f32, 32, 5, 6)]
    arena = plan_memory(buffers, [("b", "a", 2),      # a dies at 2 where b starts: taken
                                  ("c", "b", 2),      # c starts at 3, not at the call: refused
                                  ("d", "c", 4),      # c lives to 5, past the call: refused
                                  ("e", "d", 5),      # sizes differ: refused
                                  ("c", "k", 3)])     # a pinned constant: refused
    assert arena.inplace == [("b", "a")]
    brute_force_check(buffers, arena)


def test_free_blocks_first_fit_against_a_list():
    """``FreeBlocks`` answers as a scan of a plain sorted list of maximal free blocks."""
    rng = random.Random(7)
    for _ in range(300):
        fb, used, blocks = FreeBlocks(), [], [(0, UNBOUNDED)]
        for _ in range(rng.randint(1, 80)):
            if used and rng.random() < 0.45:
                off, size = used.pop(rng.randrange(len(used)))
                fb.give(off, size)
                blocks = _merged(blocks + [(off, size)])
            else:
                size = rng.choice((16, 32, 48, 160))
                i = next(i for i, (_, n) in enumerate(blocks) if n >= size)
                start, n = blocks[i]
                blocks[i:i + 1] = [(start + size, n - size)] if n > size else []
                assert fb.take(size) == start
                used.append((start, size))
            assert fb.blocks() == blocks


def _merged(blocks):
    out = []
    for s, n in sorted(blocks):
        if out and out[-1][0] + out[-1][1] == s:
            out[-1] = (out[-1][0], out[-1][1] + n)
        else:
            out.append((s, n))
    return out


def test_planner_scales_to_many_pinned_and_live_buffers():
    """A long chain beside thousands of pinned constants and long-lived buffers (a deep network's
    activations kept for its backward pass): packed, constants at the bottom, the kept buffers
    above them, the chain reusing two slots above those."""
    f32 = DTYPES[0]
    n = 3000
    buffers = [Buffer(("k", i), f32, 16, 0, 0, pinned=True) for i in range(n)]
    buffers += [Buffer(("keep", i), f32, 16, i + 1, 2 * n) for i in range(n)]
    buffers += [Buffer(("t", i), f32, 32, n + i, n + i + 1) for i in range(n)]
    arena = plan_memory(buffers)
    assert arena.sizes[f32] == 16 * n + 16 * n + 2 * 32
    assert arena.offsets[("t", 0)] == 32 * n and arena.offsets[("t", 1)] == 32 * n + 32
    assert arena.offsets[("t", 2)] == 32 * n
