"""Numerical gradient checking: ``sg.check_gradients``.

Compares the symbolic gradients built by ``sg.gradients`` (evaluated by a
Session, the NumPy reference interpreter by default) with central finite
differences computed in float64, for first and higher orders.

For a function ``f = build(*xs)`` with a non-scalar output, the checked scalar
is a fixed random projection ``sum(f(x) * r)`` (and the sum of such
projections when ``build`` returns several tensors): checking the gradient of
every projection checks the whole Jacobian-vector product. For ``order=k`` the
gradient of order ``j < k`` is projected the same way, ``f_j = sum_i
sum(grad_j[i] * r_ji)``, and differentiated again; every order ``1..k`` is
compared with finite differences of the order below it.

Example::

    sg.check_gradients(lambda a, b: sg.tanh(a @ b), [np.random.rand(3, 4), np.random.rand(4, 2)])
    sg.check_gradients(lambda x: x.sin().sum(), [np.random.rand(5)], order=3)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import dtypes
from .tensor import Tensor

__all__ = ["check_gradients", "GradCheckRecord"]

BuildOutput = Union[Tensor, Sequence[Tensor]]
Shape = Optional[Tuple[Optional[int], ...]]


@dataclass(frozen=True)
class GradCheckRecord:
    """The outcome of one (order, input) comparison."""
    order: int
    index: int
    name: str
    max_abs_err: float
    max_rel_err: float  # max of |analytic - numeric| / max(|analytic|, |numeric|, atol / rtol)
    connected: bool  # False when sg.gradients returned None (compared as zeros)


def check_gradients(build: Callable[..., BuildOutput], inputs: Union[np.ndarray, Sequence],
                    *, wrt: Optional[Sequence[int]] = None, eps: float = 1e-6, rtol: float = 1e-5,
                    atol: float = 1e-6, order: int = 1, seed: int = 0,
                    shapes: Optional[Sequence[Shape]] = None, names: Optional[Sequence[str]] = None,
                    as_variables: bool = False, target: str = "reference") -> List[GradCheckRecord]:
    """Check ``sg.gradients`` of ``build(*tensors)`` against central finite differences.

    Args:
        build: called once with one tensor per entry of ``inputs`` (float64 for floating inputs,
            the input's own dtype otherwise); returns a floating tensor of any shape, or a list of
            them (their projections are summed). It must build everything it uses itself (it runs
            inside a private graph).
        inputs: NumPy arrays (or array-likes); floating ones are converted to float64.
        wrt: indices of the inputs to differentiate with respect to (default: every floating input).
        eps: finite-difference step (central differences, ``(f(x+eps) - f(x-eps)) / (2 eps)``).
        rtol, atol: an element passes when ``|analytic - numeric| <= atol + rtol * |numeric|``.
        order: highest derivative order checked; all orders ``1..order`` are checked.
        seed: seed of the random projection vectors.
        shapes: optional static shapes of the placeholders (``None`` entries for unknown dims, or
            ``None`` for a fully unknown shape), to check gradients of partly unknown static shapes.
            The fed values still have the shapes of ``inputs``.
        names: optional names of the inputs (for the graph and the report).
        as_variables: hold the floating inputs in float64 ``sg.Variable``\\ s instead of placeholders.
        target: Session target that evaluates the graph (default: the reference interpreter).

    Returns:
        one ``GradCheckRecord`` per checked (order, input), when every check passes.

    Raises:
        AssertionError: a readable report naming the order, the input, its worst element, the
            analytic and numerical values, and the tolerance, for every failing input.
        TypeError / ValueError: bad arguments (e.g. ``wrt`` naming a non-floating input, a
            non-floating output of ``build``).
    """
    from .graph import Graph
    from .gradients import gradients
    from .ops import constant, placeholder, reduce_sum
    from .session import Session
    from .variables import Variable, variables_initializer

    if isinstance(inputs, np.ndarray) or np.isscalar(inputs):
        inputs = [inputs]
    values = []
    for v in inputs:
        arr = np.asarray(v)
        if arr.dtype.kind == "f":
            arr = arr.astype(np.float64)
        elif arr.dtype.kind not in "biu":
            raise TypeError(f"check_gradients: unsupported input {v!r} (dtype {arr.dtype})")
        values.append(arr)
    n = len(values)
    if n == 0:
        raise ValueError("check_gradients needs at least one input")
    if order < 1:
        raise ValueError(f"check_gradients: order must be >= 1, got {order}")
    if shapes is not None and len(shapes) != n:
        raise ValueError(f"check_gradients: {len(shapes)} shapes for {n} inputs")
    if names is not None and len(names) != n:
        raise ValueError(f"check_gradients: {len(names)} names for {n} inputs")
    names = list(names) if names is not None else [f"x{i}" for i in range(n)]
    if wrt is None:
        wrt = [i for i, v in enumerate(values) if v.dtype.kind == "f"]
    wrt = [int(i) for i in wrt]
    for i in wrt:
        if not 0 <= i < n:
            raise ValueError(f"check_gradients: wrt index {i} out of range for {n} inputs")
        if values[i].dtype.kind != "f":
            raise TypeError(f"check_gradients: input {i} '{names[i]}' has dtype {values[i].dtype}; only "
                            f"floating point inputs can be differentiated")
    if not wrt:
        raise ValueError("check_gradients: no floating point input to differentiate")

    rng = np.random.default_rng(seed)
    graph = Graph()
    with graph.as_default():
        tensors: List[Tensor] = []
        for i, v in enumerate(values):
            if as_variables and v.dtype.kind == "f":
                tensors.append(Variable(v, dtype=dtypes.float64, name=names[i]))
            else:
                shape = v.shape if shapes is None else shapes[i]
                tensors.append(placeholder(v.dtype, shape, name=names[i]))
        out = build(*tensors)
        ys = list(out) if isinstance(out, (list, tuple)) else [out]
        for y in ys:
            if not isinstance(y, Tensor):
                raise TypeError(f"check_gradients: build must return Tensors, got {type(y).__name__}")
            if not dtypes.is_floating(y.dtype):
                raise TypeError(f"check_gradients: build returned '{y.name}' of dtype {y.dtype.name}; "
                                f"only floating point outputs can be differentiated")

    sess = Session(graph, target=target)
    try:
        fed = [t for t in tensors if not isinstance(t, Variable)]
        fed_values = [values[i] for i, t in enumerate(tensors) if not isinstance(t, Variable)]
        variables = [t for t in tensors if isinstance(t, Variable)]
        if variables:
            sess.run(variables_initializer(variables))
        y_values = sess.compile(ys, fed)(*fed_values)

        with graph.as_default():
            parts = []
            for y, yv in zip(ys, y_values):
                yv = np.asarray(yv)
                if yv.ndim == 0 and y.shape == ():
                    parts.append(y)
                else:
                    r = rng.standard_normal(yv.shape)
                    parts.append(reduce_sum(y * constant(r.astype(y.dtype), dtype=y.dtype)))
            f = _sum(parts)

        xs = [tensors[i] for i in wrt]
        all_feeds = list(tensors)  # variables are fed too when perturbed
        base = list(values)
        records: List[GradCheckRecord] = []
        failures: List[str] = []
        for k in range(1, order + 1):
            with graph.as_default():
                grads = [None] * len(xs) if f is None else gradients(f, xs)
            for g, x in zip(grads, xs):
                if g is not None and g.dtype != x.dtype:
                    failures.append(f"order {k}: the gradient for '{x.name}' has dtype {g.dtype.name}, "
                                    f"expected {x.dtype.name}")
            if failures:
                break
            live = [g for g in grads if g is not None]
            analytic = dict(zip([id(g) for g in live], sess.compile(live, fed)(*fed_values))) if live else {}
            f_eval = None if f is None else sess.compile(f, all_feeds)
            for i, g in zip(wrt, grads):
                a = np.zeros_like(values[i]) if g is None else np.asarray(analytic[id(g)])
                if a.shape != values[i].shape:
                    failures.append(f"order {k}: the gradient for input {i} '{names[i]}' has shape {a.shape}, "
                                    f"expected {values[i].shape}")
                    continue
                num = _numeric(f_eval, base, i, eps)
                rec, msg = _compare(k, i, names[i], a, num, g is not None, rtol, atol)
                records.append(rec)
                if msg:
                    failures.append(msg)
            if failures or k == order:
                break
            with graph.as_default():
                parts = []
                for i, g in zip(wrt, grads):
                    if g is not None:
                        r = rng.standard_normal(values[i].shape)
                        parts.append(reduce_sum(g * constant(r, dtype=g.dtype)))
                f = _sum(parts)
        if failures:
            head = (f"gradient check failed (eps={eps:g}, rtol={rtol:g}, atol={atol:g}; an order-k gradient is "
                    f"compared with finite differences of the projected order-(k-1) gradient):")
            raise AssertionError(head + "\n" + "\n".join("  " + m.replace("\n", "\n  ") for m in failures))
        return records
    finally:
        sess.close()


def _sum(parts: List[Tensor]) -> Optional[Tensor]:
    if not parts:
        return None
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    return total


def _numeric(f_eval, base: List[np.ndarray], i: int, eps: float) -> np.ndarray:
    """Central differences of the scalar ``f_eval`` along every element of input ``i``."""
    x = base[i]
    out = np.zeros(x.shape, dtype=np.float64)
    if f_eval is None:
        return out
    args = list(base)
    flat_out = out.reshape(-1)
    for j in range(x.size):
        xp = x.copy().reshape(-1)
        xp[j] += eps
        args[i] = xp.reshape(x.shape)
        fp = float(f_eval(*args))
        xp[j] -= 2 * eps
        args[i] = xp.reshape(x.shape)
        fm = float(f_eval(*args))
        flat_out[j] = (fp - fm) / (2 * eps)
    return out


def _rel_floor(rtol: float, atol: float) -> float:
    """The magnitude below which ``max_rel_err`` measures against a constant: ``atol / rtol``, where
    the absolute tolerance starts to dominate the relative one (so a gradient of 0 gives a finite,
    meaningful relative error)."""
    floor = atol / rtol if rtol > 0 else atol
    return max(floor, np.finfo(np.float64).tiny)


def _compare(k: int, i: int, name: str, a: np.ndarray, num: np.ndarray, connected: bool,
             rtol: float, atol: float) -> Tuple[GradCheckRecord, str]:
    a = a.astype(np.float64)
    err = np.abs(a - num)
    allowed = atol + rtol * np.abs(num)
    bad = ~(err <= allowed)  # NaN counts as bad
    rel = err / np.maximum(np.maximum(np.abs(a), np.abs(num)), _rel_floor(rtol, atol))
    rec = GradCheckRecord(k, i, name, float(np.nanmax(err)) if err.size else 0.0,
                          float(np.nanmax(rel)) if err.size else 0.0, connected)
    if not bad.any():
        return rec, ""
    score = np.where(np.isnan(err), np.inf, err - allowed)
    worst = np.unravel_index(int(np.argmax(score)), a.shape) if a.ndim else ()
    idx = "[" + ", ".join(str(int(w)) for w in worst) + "]" if a.ndim else "(scalar)"
    lines = [f"order {k}, input {i} '{name}' (shape {a.shape}): {int(bad.sum())} of {a.size} elements out of "
             f"tolerance; max abs err {rec.max_abs_err:.3e}",
             f"worst element {idx}: analytic {float(a[worst])!r}, numeric {float(num[worst])!r}, abs err "
             f"{err[worst]:.3e} > allowed {allowed[worst]:.3e}"]
    if not connected:
        lines.append("sg.gradients returned None for this input (treated as zeros), but the finite "
                     "differences are not zero")
    if a.size <= 24:
        lines.append("analytic: " + np.array2string(a, precision=6, separator=", ").replace("\n", " "))
        lines.append("numeric:  " + np.array2string(num, precision=6, separator=", ").replace("\n", " "))
    return rec, "\n".join(lines)
