"""sg.nn Modules: discovery (every container kind), names and order (the lecture's examples),
initialisation, weight sharing and its gradient, repr, train/eval, containers, and module outputs
against the functional computation run in a Session.

Tests named ``test_convpool_*`` need ``sg.nn.conv*d`` / ``*_pool*d`` (ops/conv.py, ops/pool.py):
they fail with NotImplementedError until those ops land.
"""
import math

import numpy as np
import pytest
import scipy.special

import staticgraph as sg
import staticgraph.nn.functional as F
from staticgraph import nn
from helpers import run


def initialized_values(tensors, feed=None):
    """Run the initializers, then fetch ``tensors`` (Parameters hold their initial values)."""
    with sg.Session(target="reference") as sess:
        sess.run(sg.global_variables_initializer())
        return sess.run(tensors, feed)


# -- the lecture's models ---------------------------------------------------------------------------

class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        self.conv1 = nn.Conv2d(1, 32, kernel_size=5)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=5)
        self.fc1 = nn.Linear(256, 200)
        self.fc2 = nn.Linear(200, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), kernel_size=3, stride=3))
        x = F.relu(F.max_pool2d(self.conv2(x), kernel_size=2, stride=2))
        x = x.view(-1, 256)
        x = F.relu(self.fc1(x))
        x = self.fc2(x)
        return x


class Buggy(nn.Module):
    def __init__(self):
        super(Buggy, self).__init__()
        self.conv = nn.Conv2d(1, 32, kernel_size=5)
        self.param = nn.Parameter(sg.zeros((123, 456)))
        self.other_stuff = [nn.Linear(543, 21)]


class AnotherNotBuggy(nn.Module):
    def __init__(self):
        super(AnotherNotBuggy, self).__init__()
        self.conv = nn.Conv2d(1, 32, kernel_size=5)
        self.param = nn.Parameter(sg.zeros((123, 456)))
        self.other_stuff = nn.ModuleList()
        self.other_stuff.append(nn.Linear(543, 21))


def test_net_parameters_in_lecture_order():
    model = Net()
    sizes = [k.size() for k in model.parameters()]
    assert sizes == [(32, 1, 5, 5), (32,), (64, 32, 5, 5), (64,), (200, 256), (200,), (10, 200), (10,)]
    assert sum(math.prod(s) for s in sizes) == 105506
    assert [n for n, _ in model.named_parameters()] == [
        "conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias",
        "fc2.weight", "fc2.bias"]


def test_convpool_net_output_shape_and_values(rng):
    model = Net()
    x = sg.placeholder(sg.float32, (12, 1, 28, 28))
    out = model(x)
    assert out.shape == (12, 10)
    # the same computation written with the functional ops and the module's own Parameters
    p = dict(model.named_parameters())
    h = F.relu(F.max_pool2d(F.conv2d(x, p["conv1.weight"], p["conv1.bias"]), 3, 3))
    h = F.relu(F.max_pool2d(F.conv2d(h, p["conv2.weight"], p["conv2.bias"]), 2, 2))
    h = F.relu(F.linear(sg.reshape(h, (12, 256)), p["fc1.weight"], p["fc1.bias"]))
    ref = F.linear(h, p["fc2.weight"], p["fc2.bias"])
    a, b = initialized_values([out, ref], {x: rng.random((12, 1, 28, 28), dtype=np.float32)})
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert np.abs(a).max() > 0


def test_buggy_is_not_buggy_here():
    sizes = [k.size() for k in Buggy().parameters()]
    expected = [(123, 456), (32, 1, 5, 5), (32,), (21, 543), (21,)]
    assert sizes == expected
    assert [k.size() for k in AnotherNotBuggy().parameters()] == expected
    assert [n for n, _ in Buggy().named_parameters()] == [
        "param", "conv.weight", "conv.bias", "other_stuff.0.weight", "other_stuff.0.bias"]


# -- discovery --------------------------------------------------------------------------------------

class Everything(nn.Module):
    def __init__(self):
        super().__init__()
        self.attr = nn.Linear(2, 3)
        self.own = nn.Parameter(np.ones(4))
        self.mlist = nn.ModuleList([nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 1, bias=False)])
        self.seq = nn.Sequential(nn.Linear(1, 2), nn.Tanh())
        self.plain = [nn.Linear(2, 2), "not a module", 7]
        self.tup = (nn.Parameter(np.zeros(2)), nn.Linear(2, 1))
        self.dct = {"enc": nn.Linear(5, 4), "extra": [nn.Parameter(np.zeros(3))]}
        self.nested = [{"a": (nn.Linear(1, 1),)}]
        self.second = nn.Parameter(np.zeros(5))
        self.alias = self.attr                      # a module held twice is seen once
        self.shared = [self.own]                    # a Parameter held twice is yielded once


def test_discovery_in_every_container_kind():
    m = Everything()
    names = [n for n, _ in m.named_parameters()]
    assert names == [
        "own", "second",
        "attr.weight", "attr.bias",
        "mlist.0.weight", "mlist.0.bias", "mlist.2.weight",
        "seq.0.weight", "seq.0.bias",
        "plain.0.weight", "plain.0.bias",
        "tup.0", "tup.1.weight", "tup.1.bias",
        "dct.enc.weight", "dct.enc.bias", "dct.extra.0",
        "nested.0.a.0.weight", "nested.0.a.0.bias",
    ]
    params = list(m.parameters())
    assert len({id(p) for p in params}) == len(params) == len(names)
    assert all(isinstance(p, nn.Parameter) for p in params)
    assert [id(p) for p in params] == [id(p) for _, p in m.named_parameters()]
    assert {id(p) for p in params} == {id(v) for v in sg.trainable_variables()}
    assert m.mlist[0].weight is dict(m.named_parameters())["mlist.0.weight"]


def test_children_and_modules():
    m = Everything()
    kids = list(m.named_children())
    assert [n for n, _ in kids] == ["attr", "mlist", "seq", "plain.0", "tup.1", "dct.enc", "nested.0.a.0"]
    assert [c for _, c in kids] == list(m.children())
    mods = list(m.named_modules())
    assert mods[0] == ("", m) and list(m.modules())[0] is m
    assert [n for n, _ in mods] == ["", "attr", "mlist", "mlist.0", "mlist.1", "mlist.2", "seq", "seq.0", "seq.1",
                                    "plain.0", "tup.1", "dct.enc", "nested.0.a.0"]
    assert len({id(x) for _, x in mods}) == len(mods)


def test_parameter_is_a_trainable_variable():
    p = nn.Parameter(np.arange(6.0).reshape(2, 3))
    assert isinstance(p, sg.Variable) and p.dtype == sg.float32 and p.shape == (2, 3)
    assert p in sg.trainable_variables() and p.requires_grad
    frozen = nn.Parameter(np.zeros(2), requires_grad=False)
    assert frozen not in sg.trainable_variables() and frozen in sg.global_variables()
    with pytest.raises(TypeError, match="only floating point tensors can require gradients"):
        nn.Parameter(np.arange(3))
    np.testing.assert_array_equal(initialized_values(p), np.arange(6.0).reshape(2, 3))


def test_missing_forward():
    with pytest.raises(NotImplementedError, match=r"Module \[Bare\] is missing the required \"forward\""):
        type("Bare", (nn.Module,), {})()(1)


# -- initialisation --------------------------------------------------------------------------------

def _check_uniform(values, bound):
    """All values in [-bound, bound], spread over it like a uniform sample."""
    v = np.asarray(values, np.float64).ravel()
    assert np.all(np.abs(v) <= bound * (1 + 1e-6))
    n = v.size
    # P(max below bound * (1 - 40/n)) = (1 - 20/n)**n ~ exp(-20) per side: never flaky
    assert v.max() > bound * (1 - 40 / n) and v.min() < -bound * (1 - 40 / n)
    assert abs(v.mean()) < 5 * bound / math.sqrt(3 * n)                         # mean 0
    assert abs(v.std() - bound / math.sqrt(3)) < 5 * bound / math.sqrt(n)       # std of U(-b, b)


@pytest.mark.parametrize("layer,fan_in", [
    (lambda: nn.Linear(50, 40), 50),
    (lambda: nn.Linear(7, 300), 7),
    (lambda: nn.Conv1d(4, 30, 5), 20),
    (lambda: nn.Conv2d(6, 40, (3, 2), groups=2), 18),
    (lambda: nn.Conv3d(2, 20, 3, stride=2), 54),
])
def test_default_initialisation_bounds(rng, layer, fan_in):
    nn.manual_seed(int(rng.integers(2 ** 31)))
    m = layer()
    w, b = initialized_values([m.weight, m.bias])
    assert w.dtype == np.float32 and b.dtype == np.float32
    bound = 1 / math.sqrt(fan_in)
    _check_uniform(w, bound)
    assert np.all(np.abs(b) <= bound * (1 + 1e-6)) and np.ptp(b) > 0.5 * bound


def test_manual_seed_makes_models_reproducible(rng):
    seed = int(rng.integers(2 ** 31))
    nn.manual_seed(seed)
    a = nn.Linear(6, 5)
    nn.manual_seed(seed)
    b = nn.Linear(6, 5)
    c = nn.Linear(6, 5)
    wa, wb, wc = initialized_values([a.weight, b.weight, c.weight])
    np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(wa, wc)


def test_layer_dtype_and_bias_false():
    m = nn.Linear(3, 2, bias=False, dtype=sg.float64)
    assert m.weight.dtype == sg.float64 and m.bias is None
    assert [n for n, _ in m.named_parameters()] == ["weight"]
    c = nn.Conv2d(2, 4, 3, bias=False, dtype="float64")
    assert c.weight.dtype == sg.float64 and [n for n, _ in c.named_parameters()] == ["weight"]
    with pytest.raises(TypeError, match="must be floating point"):
        nn.Linear(2, 2, dtype=sg.int32)
    with pytest.raises(ValueError, match=r"in_channels \(3\) and out_channels \(4\) must both be divisible by "
                                         r"groups \(2\)"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="Conv2d kernel_size must be an int or a tuple of 2 ints"):
        nn.Conv2d(1, 1, (3, 3, 3))


# -- modules compute what the functional ops compute -------------------------------------------------

@pytest.mark.parametrize("shape", [(523, 10), (4, 3, 10), (10,)])
def test_linear_module_against_numpy(rng, target, shape):
    f = nn.Linear(in_features=10, out_features=4)
    assert [(n, p.size()) for n, p in f.named_parameters()] == [("weight", (4, 10)), ("bias", (4,))]
    x = sg.placeholder(sg.float32, (None,) + shape[1:] if len(shape) > 1 else shape)
    y = f(x)
    assert y.shape == x.shape[:-1] + (4,)
    a = rng.standard_normal(shape).astype(np.float32)
    with (sg.Session() if target == "default" else sg.Session(target=target)) as sess:
        sess.run(sg.global_variables_initializer())
        out, w, b = sess.run([y, f.weight, f.bias], {x: a})
    np.testing.assert_allclose(out, a.astype(np.float64) @ w.T.astype(np.float64) + b, rtol=1e-5, atol=1e-5)


def test_sequential_mlp_of_the_slides(rng):
    model = nn.Sequential(
        nn.Linear(10, 100), nn.ReLU(),
        nn.Linear(100, 50), nn.ReLU(),
        nn.Linear(50, 2)
    )
    assert len(model) == 5 and isinstance(model[1], nn.ReLU) and model[-1] is model[4]
    assert [type(m).__name__ for m in model] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias",
                                                       "4.weight", "4.bias"]
    x = sg.placeholder(sg.float32, (None, 10))
    y = model(x)
    assert y.shape == (None, 2)
    a = rng.standard_normal((9, 10)).astype(np.float32)
    out, *ps = initialized_values([y] + list(model.parameters()), {x: a})
    h = a.astype(np.float64)
    for i in range(0, 6, 2):
        h = h @ ps[i].T + ps[i + 1]
        if i < 4:
            h = np.maximum(h, 0)
    np.testing.assert_allclose(out, h, rtol=1e-5, atol=1e-5)
    head = model[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[0] is model[0]


def test_sequential_second_order_gradient(rng):
    def build(x, w1, b1, w2):
        mlp = nn.Sequential(nn.Linear(3, 4, dtype=sg.float64), nn.Tanh(), nn.Linear(4, 2, bias=False, dtype=sg.float64),
                            nn.Sigmoid())
        # check_gradients differentiates with respect to its inputs: use them as the layers' weights
        mlp[0].weight, mlp[0].bias, mlp[2].weight = w1, b1, w2
        return mlp(x)
    args = [rng.standard_normal(s) for s in [(2, 3), (4, 3), (4,), (2, 4)]]
    sg.check_gradients(build, args, order=2)


def test_activation_softmax_flatten_and_identity_modules(rng):
    a = rng.standard_normal((3, 4, 2, 2))
    x = sg.placeholder(sg.float64, (None, 4, 2, 2))
    flat = nn.Flatten()(x)
    assert flat.shape == (None, 16)
    outs = run("reference", [nn.ReLU()(x), nn.Tanh()(x), nn.Sigmoid()(x), flat, nn.Flatten(0, 1)(x),
                             nn.Identity(7, k=1)(x), nn.Softmax(dim=1)(x), nn.LogSoftmax(1)(x)], {x: a})
    expected = [np.maximum(a, 0), np.tanh(a), scipy.special.expit(a), a.reshape(3, 16), a.reshape(12, 2, 2), a,
                scipy.special.softmax(a, axis=1), scipy.special.log_softmax(a, axis=1)]
    for o, e in zip(outs, expected):
        np.testing.assert_allclose(o, e, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="several unknown dimensions"):
        nn.Flatten(1)(sg.placeholder(sg.float32, (None, 3, None)))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_loss_modules(rng, reduction):
    logits, labels = rng.standard_normal((5, 3)), rng.integers(0, 3, 5)
    x, y, t = sg.placeholder(sg.float64, (5, 3)), sg.placeholder(sg.int64, (5,)), sg.placeholder(sg.float64, (5, 3))
    target_values = rng.standard_normal((5, 3))
    ce, mse, nll = run("reference", [nn.CrossEntropyLoss(reduction=reduction)(x, y),
                                     nn.MSELoss(reduction)(x, t), nn.NLLLoss(reduction)(x, y)],
                       {x: logits, y: labels, t: target_values})
    per = -scipy.special.log_softmax(logits, axis=1)[np.arange(5), labels]
    sq = (logits - target_values) ** 2
    red = {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction]
    np.testing.assert_allclose(ce, red(per), rtol=1e-12)
    np.testing.assert_allclose(mse, red(sq), rtol=1e-12)
    np.testing.assert_allclose(nll, red(-logits[np.arange(5), labels]), rtol=1e-12)
    with pytest.raises(ValueError, match="reduction must be 'mean', 'sum' or 'none', got 'max'"):
        nn.MSELoss(reduction="max")


@pytest.mark.parametrize("n", [1, 2, 3])
def test_convpool_modules_match_functional(rng, n):
    conv = getattr(nn, f"Conv{n}d")(4, 6, 3, stride=2, padding=1, dilation=1, groups=2, dtype=sg.float64)
    mpool = getattr(nn, f"MaxPool{n}d")(2, ceil_mode=True)
    apool = getattr(nn, f"AvgPool{n}d")(2, stride=1, padding=1, count_include_pad=False)
    spatial = (5, 6, 4)[:n]
    x = sg.placeholder(sg.float64, (None, 4) + spatial)
    a = rng.standard_normal((2, 4) + spatial)
    y = conv(x)
    ref = getattr(F, f"conv{n}d")(x, conv.weight, conv.bias, stride=2, padding=1, groups=2)
    mp, ap = mpool(y), apool(y)
    mp_ref = getattr(F, f"max_pool{n}d")(y, 2, ceil_mode=True)
    ap_ref = getattr(F, f"avg_pool{n}d")(y, 2, 1, 1, count_include_pad=False)
    vals = initialized_values([y, ref, mp, mp_ref, ap, ap_ref], {x: a})
    assert vals[0].shape == (2, 6) + tuple((s + 2 - 3) // 2 + 1 for s in spatial)
    for got, want in zip(vals[::2], vals[1::2]):
        np.testing.assert_array_equal(got, want)
    values, indices = getattr(nn, f"MaxPool{n}d")(2, return_indices=True)(y)
    assert values.shape == indices.shape


# -- weight sharing --------------------------------------------------------------------------------

def test_weight_sharing_gradient_is_the_sum_over_uses(rng):
    nn.manual_seed(int(rng.integers(2 ** 31)))
    shared = nn.Linear(3, 2, dtype=sg.float64)
    x1, x2 = sg.placeholder(sg.float64, (4, 3)), sg.placeholder(sg.float64, (4, 3))
    loss = (sg.tanh(shared(x1)) * shared(x2)).sum()
    assert len(list(shared.parameters())) == 2 and len(sg.trainable_variables()) == 2
    gw, gb = sg.gradients(loss, [shared.weight, shared.bias])
    a1, a2 = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))

    # an explicit two-copy computation: separate Variables holding the same values
    w1 = sg.Variable(shared.weight.initial_value)
    b1 = sg.Variable(shared.bias.initial_value)
    w2 = sg.Variable(shared.weight.initial_value)
    b2 = sg.Variable(shared.bias.initial_value)
    loss2 = (sg.tanh(F.linear(x1, w1, b1)) * F.linear(x2, w2, b2)).sum()
    copies = sg.gradients(loss2, [w1, b1, w2, b2])

    feed = {x1: a1, x2: a2}
    with sg.Session(target="reference") as sess:
        sess.run(sg.global_variables_initializer())
        g_w, g_b, c1w, c1b, c2w, c2b, w, b = sess.run([gw, gb] + copies + [shared.weight, shared.bias], feed)
        np.testing.assert_allclose(g_w, c1w + c2w, rtol=1e-12)
        np.testing.assert_allclose(g_b, c1b + c2b, rtol=1e-12)
        assert np.abs(c1w).max() > 0 and np.abs(c2w).max() > 0
        # central finite differences on the shared weight (fed in place of the Parameter)
        eps, num = 1e-6, np.zeros_like(w)
        for idx in np.ndindex(*w.shape):
            wp, wm = w.copy(), w.copy()
            wp[idx] += eps
            wm[idx] -= eps
            up, down = sess.run(loss, {**feed, shared.weight: wp}), sess.run(loss, {**feed, shared.weight: wm})
            num[idx] = (up - down) / (2 * eps)
    np.testing.assert_allclose(g_w, num, rtol=1e-6, atol=1e-8)


def test_siamese_training_step_updates_shared_parameters(rng):
    enc = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    x1, x2 = sg.placeholder(sg.float32, (None, 4)), sg.placeholder(sg.float32, (None, 4))
    target = sg.placeholder(sg.float32, (None,))
    dist = ((enc(x1) - enc(x2)) ** 2).sum(axis=1)
    loss = F.mse_loss(dist, target)
    step = sg.train.GradientDescentOptimizer(0.05).minimize(loss, var_list=enc.parameters())
    feed = {x1: rng.standard_normal((16, 4)).astype(np.float32), x2: rng.standard_normal((16, 4)).astype(np.float32),
            target: np.zeros(16, np.float32)}
    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        before = sess.run(loss, feed)
        for _ in range(20):
            sess.run(step, feed)
        assert sess.run(loss, feed) < before


# -- printing, modes, containers ---------------------------------------------------------------------

def test_repr_like_pytorch():
    assert repr(Net()) == (
        "Net(\n"
        "  (conv1): Conv2d(1, 32, kernel_size=(5, 5), stride=(1, 1))\n"
        "  (conv2): Conv2d(32, 64, kernel_size=(5, 5), stride=(1, 1))\n"
        "  (fc1): Linear(in_features=256, out_features=200, bias=True)\n"
        "  (fc2): Linear(in_features=200, out_features=10, bias=True)\n"
        ")")
    assert repr(nn.MaxPool2d(kernel_size=3, stride=3)) == \
        "MaxPool2d(kernel_size=3, stride=3, padding=0, dilation=1, ceil_mode=False)"
    assert repr(nn.MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
    assert repr(nn.AvgPool2d(2)) == "AvgPool2d(kernel_size=2, stride=2, padding=0)"
    assert repr(nn.AvgPool1d(3)) == "AvgPool1d(kernel_size=(3,), stride=(3,), padding=(0,))"
    assert repr(nn.Conv1d(1, 2, 3)) == "Conv1d(1, 2, kernel_size=(3,), stride=(1,))"
    assert repr(nn.Conv2d(4, 8, 3, stride=2, padding=1, dilation=2, groups=2, bias=False)) == \
        "Conv2d(4, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(2, 2), groups=2, bias=False)"
    assert repr(nn.Flatten()) == "Flatten(start_dim=1, end_dim=-1)"
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss()"
    outer = nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.ReLU(), nn.Linear(3, 1, bias=False)))
    assert repr(outer) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "  (1): Sequential(\n"
        "    (0): ReLU()\n"
        "    (1): Linear(in_features=3, out_features=1, bias=False)\n"
        "  )\n"
        ")")
    assert "(other_stuff.0): Linear(in_features=543, out_features=21, bias=True)" in repr(Buggy())


def test_module_holding_its_parent_terminates():
    parent = nn.Sequential(nn.Linear(2, 2))
    child = nn.Identity()
    child.owner = parent
    parent.append(child)
    assert [n for n, _ in parent.named_modules()] == ["", "0", "1"]
    assert len(list(parent.parameters())) == 2
    assert "(owner): <cycle: Sequential>" in repr(parent)


def test_train_and_eval_reach_every_module():
    m = Everything()
    assert m.training and all(x.training for x in m.modules())
    assert m.eval() is m
    assert not any(x.training for x in m.modules())
    m.seq.train()
    assert m.seq.training and m.seq[0].training and not m.training
    assert m.train() is m and all(x.training for x in m.modules())


def test_module_list_operations():
    ml = nn.ModuleList()
    assert len(ml) == 0 and list(ml) == []
    a, b, c = nn.Linear(1, 1), nn.ReLU(), nn.Linear(1, 2)
    assert ml.append(a) is ml
    ml.extend([b, c])
    assert len(ml) == 3 and ml[0] is a and ml[-1] is c and list(ml) == [a, b, c]
    assert [n for n, _ in ml.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert isinstance(ml[1:], nn.ModuleList) and list(ml[1:]) == [b, c]
    ml[1] = nn.Tanh()
    assert isinstance(ml[1], nn.Tanh)
    with pytest.raises(IndexError, match="index 3 is out of range for ModuleList of length 3"):
        ml[3]
    with pytest.raises(TypeError, match="ModuleList.append takes Modules, got int"):
        ml.append(3)
    with pytest.raises(NotImplementedError, match="ModuleList has no forward"):
        ml(sg.constant(1.0))
    assert list(nn.ModuleList([a, c]).parameters()) == [a.weight, a.bias, c.weight, c.bias]


def test_parameter_names_in_graph_are_unique_and_scoped():
    m1, m2 = nn.Linear(2, 2), nn.Linear(2, 2)
    names = [p.name for p in list(m1.parameters()) + list(m2.parameters())]
    assert len(set(names)) == 4 and names[0].startswith("linear") and names[0].endswith("weight:0")


def test_sg_nn_exports_the_api_names():
    for name in ["Module", "Parameter", "Linear", "Conv1d", "Conv2d", "Conv3d", "MaxPool1d", "MaxPool2d",
                 "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d", "ReLU", "Tanh", "Sigmoid", "Flatten",
                 "Sequential", "ModuleList", "MSELoss", "CrossEntropyLoss", "manual_seed", "functional"]:
        assert name in nn.__all__ and hasattr(nn, name)
    import staticgraph.nn.functional as functional_module
    assert nn.functional is functional_module
