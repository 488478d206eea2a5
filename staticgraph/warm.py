"""The kernel library that ``python -m staticgraph cache warm`` compiles ahead of time.

Concretely, "the kernel library" is the set of kernel wrappers (``compiler/backends/cpu/native.py``:
one compiled ``cfunc`` per kernel and operand dtypes, shared by every plan) that the cpu backend's
base tier runs for these representative plans, all float32 with int64 labels, built at the static
shapes people run them with (a conv's kernel family depends on them):

- ``convnet``: the README demo, ``examples/train_convnet.py``'s DigitsNet on 1x8x8 digits (two
  conv 3x3 + max-pool 2 blocks, two linear layers): its Adam training step and its evaluation;
- ``lenet``: the lecture's LeNet (``examples/lenet_module.py``) on 1x28x28 MNIST: the same two plans;
- ``mlp``: a 784-256-10 ReLU MLP trained by plain SGD and by momentum, with an MSE variant;
- ``common``: cheap elementwise ops, reductions, matmul and softmax as a user's first graphs use them.

The set is found by lowering these graphs (milliseconds, nothing compiled), so it is always what
this version of the compiler runs; ``tests/test_cache_warm.py`` checks that it covers the demo's
plans. Fused elementwise groups are not part of it (the fused tier is opt-in and its kernels are
per graph). Compiles run in ``native.compile_in_workers``'s worker processes.
"""
from __future__ import annotations

import time
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from . import nn
from .graph import Graph
from .nn import functional as F

Key = Tuple[str, Tuple[str, ...], str]     # (kernel, operand dtypes, fused group source or "")


def _training(model: nn.Module, image_shape: Sequence[int], optimizer) -> list:
    """The two plans of a classifier: a training step (loss, hits, update) and an evaluation."""
    from . import cast, equal, argmax, placeholder, reduce_sum, float32, int64
    x = placeholder(float32, (None, *image_shape), name="x")
    y = placeholder(int64, [None], name="y")
    logits = model(x)
    loss = nn.cross_entropy(logits, y)
    hits = reduce_sum(cast(equal(argmax(logits, 1), y), float32))
    return [([loss, hits, optimizer.minimize(loss)], [x, y]), ([hits], [x, y])]


def _convnet() -> list:
    from .train import AdamOptimizer

    class DigitsNet(nn.Module):     # examples/train_convnet.py's model
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 16, kernel_size=3, padding=1)
            self.conv2 = nn.Conv2d(16, 32, kernel_size=3, padding=1)
            self.fc1, self.fc2 = nn.Linear(128, 64), nn.Linear(64, 10)

        def forward(self, x):
            x = F.relu(F.max_pool2d(self.conv1(x), kernel_size=2))
            x = F.relu(F.max_pool2d(self.conv2(x), kernel_size=2))
            return self.fc2(F.relu(self.fc1(x.view(-1, 128))))
    return _training(DigitsNet(), (1, 8, 8), AdamOptimizer(2e-3))


def _lenet() -> list:
    from .train import AdamOptimizer

    class Net(nn.Module):           # examples/lenet_module.py's model
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 32, kernel_size=5)
            self.conv2 = nn.Conv2d(32, 64, kernel_size=5)
            self.fc1, self.fc2 = nn.Linear(256, 200), nn.Linear(200, 10)

        def forward(self, x):
            x = F.relu(F.max_pool2d(self.conv1(x), kernel_size=3, stride=3))
            x = F.relu(F.max_pool2d(self.conv2(x), kernel_size=2, stride=2))
            return self.fc2(F.relu(self.fc1(x.view(-1, 256))))
    return _training(Net(), (1, 28, 28), AdamOptimizer(1e-3))


def _mlp() -> list:
    from . import float32, placeholder
    from .train import GradientDescentOptimizer, MomentumOptimizer

    def model():
        return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    plans = _training(model(), (784,), GradientDescentOptimizer(0.1))
    plans += _training(model(), (784,), MomentumOptimizer(0.1, 0.9))[:1]
    x, t = placeholder(float32, (None, 784), name="x"), placeholder(float32, (None, 10), name="t")
    loss = nn.mse_loss(model()(x), t)
    return plans + [([loss, GradientDescentOptimizer(0.1).minimize(loss)], [x, t])]


def _common() -> list:
    import staticgraph as sg
    a, b = sg.placeholder(sg.float32, (None, 16), name="a"), sg.placeholder(sg.float32, (None, 16), name="b")
    w = sg.placeholder(sg.float32, (16, 8), name="w")
    outs = [a + b, a - b, a * b, a / b, sg.maximum(a, b), sg.minimum(a, b), -a, sg.abs(a), sg.exp(a),
            sg.log(a), sg.sqrt(a), sg.square(a), sg.tanh(a), sg.sigmoid(a), sg.relu(a), a @ w,
            sg.reduce_sum(a), sg.reduce_mean(a, 1), sg.reduce_max(a, 0), F.softmax(a, 1)]
    return [(outs, [a, b, w])]


PLANS: Dict[str, Callable[[], list]] = {"convnet": _convnet, "lenet": _lenet, "mlp": _mlp, "common": _common}


def library_keys(plans: Iterable[str] = tuple(PLANS), only: Optional[Sequence[str]] = None) -> List[Key]:
    """The wrapper keys of the named representative plans (each built in a graph of its own),
    sorted, once each; ``only``: keep the keys of these kernel names."""
    from compiler.backends.cpu.executable import base_wrapper_keys
    from compiler.backends.cpu.library import EW_OP
    from compiler.schedule import schedule
    from .tensor import Tensor
    keys = set()
    for name in plans:
        with Graph().as_default():
            for fetches, feeds in PLANS[name]():
                tensors = [f for f in fetches if isinstance(f, Tensor)]
                targets = [f for f in fetches if not isinstance(f, Tensor)]
                keys.update(base_wrapper_keys(schedule(tensors, targets, feeds)))
    if only is not None:        # an elementwise op's name selects its family's kernel too (library.family_kernel)
        only = set(only) | {EW_OP[n[3:]][0] for n in only if n.startswith("ew_") and n[3:] in EW_OP}
    return sorted(k for k in keys if only is None or k[0] in only)


def title(key: Key) -> str:
    """``kernel(dtypes)`` as ``plan.explain()`` lists a wrapper."""
    return f"{key[0]}({', '.join(key[1])})"


def warm(keys: Sequence[Key], jobs: int, bar: Optional[Callable[..., object]] = None) -> dict:
    """Compile the wrappers of ``keys`` (and the step loop) that the disk cache lacks, in ``jobs``
    worker processes; ``bar(total=n)`` makes a progress bar (``tqdm``) that gets ``update(k)`` as
    kernels land. Returns {"kernels", "cached", "compiled", "failed": [titles], "seconds"}."""
    from compiler.backends.cpu import library, native
    t0 = time.perf_counter()
    library.load()
    sources = {native.wrapper_source(*k): k for k in keys}
    todo = native.missing(list(sources))
    left: List[str] = []
    if todo or not native.runtime_on_disk():
        progress = bar(total=len(todo)) if bar is not None else None
        try:
            left = native.compile_in_workers(todo, jobs, getattr(progress, "update", None))
        finally:
            getattr(progress, "close", lambda: None)()
    return {"kernels": len(sources), "cached": len(sources) - len(todo), "compiled": len(todo) - len(left),
            "failed": [title(sources[s]) for s in left], "seconds": time.perf_counter() - t0}


def is_cached(key: Key) -> bool:
    """True when the wrapper of ``key`` is compiled in the disk cache."""
    from compiler.backends.cpu import native
    return not native.missing([native.wrapper_source(*key)])
