"""Build-time errors of every sg.nn builder (functional ops and the layers that call them) name the
builder and carry the user's ``(at file:line)``, the one mechanism op inference errors use
(``graph.located``); an error located by an inner op is not relabelled or located twice."""
import re

import numpy as np
import pytest

import staticgraph as sg
import staticgraph.nn.functional as F
from staticgraph import nn


def x4():
    return sg.placeholder(sg.float32, (4, 3, 8, 8), name="x")


def mat():
    return sg.placeholder(sg.float32, (4, 5), name="m")


# (builder label, a call that must fail while building, start of the message after the label)
CASES = [
    ("linear", lambda: F.linear(x4(), sg.placeholder(sg.float32, (2, 5), name="w")),
     "the last dimension of input 'x:0'"),
    ("linear", lambda: nn.Linear(5, 2)(x4()), "the last dimension of input 'x:0'"),
    ("linear", lambda: nn.Sequential(nn.Linear(5, 3), nn.Linear(4, 2))(mat()), "the last dimension of input"),
    ("linear", lambda: F.linear(mat(), sg.placeholder(sg.float32, (5,), name="v")), "weight 'v:0' must have"),
    ("conv2d", lambda: F.conv2d(x4(), np.zeros((2, 3, 3), np.float32)), "weight 'const:0' of shape (2, 3, 3)"),
    ("conv2d", lambda: nn.Conv2d(5, 2, 3)(x4()), "input 'x:0' of shape (4, 3, 8, 8) has 3 channels"),
    ("conv1d", lambda: F.conv1d(mat(), np.zeros((2, 4, 1), np.float32), stride=(1, 1)), "stride must be"),
    ("max_pool2d", lambda: F.max_pool2d(x4(), (2, 2, 2)), "kernel_size must be an int or a tuple of 2 ints"),
    ("max_pool2d", lambda: nn.MaxPool2d(20)(x4()), "input 'x:0' of shape (4, 3, 8, 8): spatial size"),
    ("avg_pool3d", lambda: F.avg_pool3d(x4(), 2, stride=(1, 2)), "stride must be an int or a tuple of 3"),
    ("softmax", lambda: F.softmax(mat(), 2), "axis 2 is out of range"),
    ("log_softmax", lambda: nn.LogSoftmax(dim=-3)(mat()), "axis -3 is out of range"),
    ("mse_loss", lambda: F.mse_loss(mat(), mat(), reduction="avg"), "reduction must be one of"),
    ("nll_loss", lambda: F.nll_loss(mat(), sg.placeholder(sg.int64, (3,), name="y")),
     "labels 'y:0' of shape (3,) do not fit log-probabilities 'm:0' of shape (4, 5)"),
    ("cross_entropy", lambda: nn.CrossEntropyLoss()(mat(), sg.placeholder(sg.int64, (4, 1), name="y")),
     "labels 'y:0' of shape (4, 1) do not fit logits 'm:0' of shape (4, 5)"),
    ("flatten", lambda: nn.Flatten(2, 1)(x4()), "start_dim 2 comes after end_dim 1"),
]


@pytest.mark.parametrize("label, call, start", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_builder_errors_name_the_builder_and_the_user_line(label, call, start):
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    message = str(info.value)
    line = call.__code__.co_firstlineno               # the user's line: the lambda in this file
    assert message.startswith(f"{label}: {start}"), message
    assert message.endswith(f"  (at {__file__}:{line})"), message
    assert message.count("(at ") == 1 and message.count(f"{label}:") == 1, message


def test_inner_op_errors_keep_their_own_label_and_location():
    # conv2d's channel check runs in the Conv op's inference; the builder must not wrap it again
    with pytest.raises(ValueError) as info:
        F.conv2d(x4(), np.zeros((2, 5, 3, 3), np.float32), name="myconv")
    assert re.fullmatch(r"myconv: input 'x:0' .* expects 5 \(weight.shape\[1\] = 5 x groups = 1\)  "
                        r"\(at .*test_nn_build_errors.py:\d+\)", str(info.value))
