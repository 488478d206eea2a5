"""Buffer sizes never wrap (compiler/sizes.py, issue 27): a shape beyond int64 elements is an
``InvalidArgumentError``, one beyond this machine's memory a ``ResourceExhaustedError``, both
naming the op and the shape, on every target. The shapes run in a subprocess: before the fix one
of them crashed the process (a wrapped size, then kernels writing past a 16-element buffer)."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import staticgraph as sg
from compiler import sizes
from compiler.state import SessionState

WORKTREE = Path(__file__).resolve().parent.parent
SCRIPT = textwrap.dedent("""\
    import json, sys
    import numpy as np
    import staticgraph as sg
    labels = sg.placeholder(sg.int64, [None], name="labels")
    x = sg.placeholder(sg.float32, [1, 1, 2, 2], name="x")
    cases = {
        "one_hot 2**62": sg.argmax(sg.one_hot(labels, 2**62, name="hot62"), 1),
        "zeros beyond int64": sg.reduce_sum(sg.zeros((2**32 + 1, 2**32 - 1), name="big")),
        "conv padding 2**31": sg.reduce_sum(sg.nn.functional.conv2d(x, sg.ones((1, 1, 1, 1)), padding=2**31,
                                                                    name="padded")),
        "one_hot beyond memory": sg.argmax(sg.one_hot(labels, 2**32, name="hot32"), 1),
    }
    feed = {labels: np.zeros(1024, np.int64), x: np.ones((1, 1, 2, 2), np.float32)}
    out = {}
    with sg.Session(target=sys.argv[1]) as sess:
        for name, t in cases.items():
            try:
                sess.run(t, feed)
                out[name] = ["no error", ""]
            except Exception as exc:
                out[name] = [type(exc).__name__, str(exc)]
    print(json.dumps(out))
    """)


@pytest.mark.parametrize("target", ["reference", "cpu"])
def test_overflowing_shapes_are_named_errors_not_crashes(target):
    env = dict(os.environ, PYTHONPATH=str(WORKTREE), STATICGRAPH_WARMUP="wait")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, target], capture_output=True, text=True, env=env,
                          cwd=WORKTREE, timeout=600)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    out = json.loads(proc.stdout.splitlines()[-1])
    kind, message = out["zeros beyond int64"]
    assert kind == "InvalidArgumentError" and "'big'" in message and "(4294967297, 4294967295)" in message
    assert "more than an int64 can count" in message
    kind, message = out["conv padding 2**31"]
    assert kind == "InvalidArgumentError" and "'padded'" in message and "4294967298" in message
    kind, message = out["one_hot 2**62"]
    assert kind == "InvalidArgumentError" and "'hot62'" in message
    kind, message = out["one_hot beyond memory"]       # 1024 x 2**32 float32: 16 TiB
    assert kind == "ResourceExhaustedError" and "'hot32'" in message
    if target == "cpu":             # the run-time shape is known there before any buffer is sized
        assert "(1024, 4294967296)" in message and "(1024, 4611686018427387904)" in out["one_hot 2**62"][1]


def test_num_elements_is_exact_and_refuses_what_int64_cannot_count():
    assert sizes.num_elements((2**31, 2**31), "t") == 2**62
    assert sizes.num_elements((), "t") == 1
    with pytest.raises(sg.errors.InvalidArgumentError, match=r"tensor 'q' of shape \(0, 4294967296, "
                                                             r"4294967296\) would have 18446744073709551616"):
        sizes.num_elements((0, 2**32, 2**32), "tensor 'q'")       # empty, but its records would wrap
    with pytest.raises(sg.errors.ResourceExhaustedError, match=r"'w' of shape \(1048576, 1048576, 16\) \(float64\)"):
        sizes.checked_size((2**20, 2**20, 16), np.float64, "'w'")  # 128 TiB


def test_a_variable_beyond_memory_is_refused_before_its_storage_is_allocated():
    v = sg.Variable(sg.zeros((2,)), name="small")
    huge = sg.get_variable("huge", shape=(2**20, 2**20, 64), initializer=sg.zeros_initializer())
    state = SessionState()
    with pytest.raises(sg.errors.ResourceExhaustedError, match=r"variable 'huge' of shape \(1048576, 1048576, "
                                                               r"64\) \(float32\)"):
        state.values.ensure_slots([v.op, huge.op])
    assert not state.values.storage                 # nothing was laid out
