"""Autograd basics of lecture 4.2, with a static graph.

Course idea: the gradient of any quantity with respect to any tensor it depends
on is derived automatically from the graph of operations that computed it.
PyTorch builds that graph on the fly; staticgraph builds it explicitly:
``sg.gradients(ys, xs)`` adds the backward ops to the graph and returns them as
ordinary tensors that a Session then computes.  The lecture's examples:

  1. ``a = t.pow(2).sum() + u.log().sum()``  ->  (tensor([2., 4., 8.]), tensor([0.1000, 0.0500]))
  2. ``u = x.pow(3).sum()`` for x = [-3, 2, 5]  ->  tensor([27., 12., 75.])
  3. weight sharing in a loop: ``blah(k, x)`` applies tanh(w[i] @ x) for i < k,
     q = blah(1, x_a).dot(blah(3, x_b)); w[0] is used by both branches, so its
     gradient is a sum of two contributions (checked with finite differences)
  4. the autograd graph of ``x.abs().sum()``: which ops the gradient pass adds

Run:  python examples/autograd_basics.py [--seed 0]
"""
import argparse

import numpy as np

import staticgraph as sg
from _lecture_format import torch_style


def example_sum_of_gradients():
    t = sg.Variable([1., 2., 4.], name="t")
    u = sg.Variable([10., 20.], name="u")
    a = t.pow(2).sum() + u.log().sum()
    grads = sg.gradients(a, (t, u))              # a list aligned with (t, u)
    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        gt, gu = sess.run(grads)
    print(">>> a = t.pow(2).sum() + u.log().sum(); sg.gradients(a, (t, u))")
    print("(%s, %s)" % (torch_style(gt), torch_style(gu)))


def example_cube():
    x = sg.Variable([-3., 2., 5.], name="x")
    u = x.pow(3).sum()
    gx, = sg.gradients(u, x)                     # a single x still gives a one-element list
    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        print(">>> u = x.pow(3).sum(); gradient wrt x")
        print(torch_style(sess.run(gx)))


def blah(w, k, x):
    """Apply k layers x <- tanh(w[i] @ x): the loop unrolls into k graph nodes that share w."""
    for i in range(k):
        x = sg.tanh(w[i] @ x)
    return x


def example_blah(seed):
    rng = np.random.default_rng(seed)
    w_val, xa_val, xb_val = rng.random((3, 10, 10)), rng.random(10), rng.random(10)
    # float64 so that finite differences are accurate
    w = sg.Variable(w_val, dtype=sg.float64, name="w")
    x_a = sg.constant(xa_val, dtype=sg.float64)
    x_b = sg.constant(xb_val, dtype=sg.float64)
    u = blah(w, 1, x_a)
    v = blah(w, 3, x_b)
    q = u.dot(v)
    gw, = sg.gradients(q, w)
    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        _q, _gw = sess.run([q, gw])
        q_of_w = sess.compile(q, [w])            # q as a function of a fed value of w
        eps = 1e-6
        fd = np.zeros_like(w_val)
        for idx in np.ndindex(*w_val.shape):
            wp, wm = w_val.copy(), w_val.copy()
            wp[idx] += eps
            wm[idx] -= eps
            fd[idx] = (q_of_w(wp) - q_of_w(wm)) / (2 * eps)
    print(">>> q = blah(1, x_a).dot(blah(3, x_b)); gradient wrt w (3 x 10 x 10)")
    print("q = %.4f" % _q)
    for i in range(3):
        print("  |dq/dw[%d]| = %.3e" % (i, np.linalg.norm(_gw[i])))
    # w[0] gets contributions from both u and v (weight sharing); w[1] and w[2]
    # only from v, through saturated tanh units, hence their small gradients.
    err = np.abs(_gw - fd).max()
    print("max |autograd - finite differences| (float64) = %.2e" % err)
    return err


def example_abs_sum():
    x = sg.Variable([1.0, -2.0, 3.0, -4.0], name="x")
    a = x.abs()
    s = a.sum()
    g = sg.get_default_graph()
    before = len(g.get_operations())
    gx, = sg.gradients(s, x)
    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        print(">>> s = x.abs().sum()")
        print(torch_style(sess.run(s)))
        print(">>> gradient wrt x")
        print(torch_style(sess.run(gx)))
    # The forward chain, walked back from s (PyTorch's grad_fn.next_functions):
    chain, op = [], s.op
    while op.inputs:
        chain.append("%s (%s)" % (op.name, op.type))
        op = op.inputs[0].op
    chain.append("%s (%s)" % (op.name, op.type))
    print("forward chain from s:", " <- ".join(chain))
    # The backward ops sg.gradients appended to the graph (PyTorch's AbsBackward, SumBackward0):
    added = [op for op in g.get_operations()[before:] if op.is_gradient]
    print("ops added by sg.gradients:", ", ".join(sorted({op.type for op in added})))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    example_sum_of_gradients()
    sg.reset_default_graph()
    example_cube()
    sg.reset_default_graph()
    err = example_blah(args.seed)
    sg.reset_default_graph()
    example_abs_sum()
    if err > 1e-6:
        raise SystemExit("gradient check FAILED")


if __name__ == "__main__":
    main()
