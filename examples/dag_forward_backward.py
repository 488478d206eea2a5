"""The DAG network of lecture 4.1 / 4.2: forward pass, backward pass, weight sharing.

Course idea: a network is any directed acyclic graph of tensor operators; given
each operator and its Jacobians, back-propagation computes the gradient of the
output with respect to every parameter.  Here the DAG is

    x0 = x
    x1 = w1 @ x0                  (phi1, parameter w1)
    x2 = x0 + w2 @ x1             (phi2, parameter w2)
    x3 = w1 @ (x1 + x2)           (phi3, parameter w1 again: weight sharing)
    q  = ||x3||

As in the lecture's TensorFlow version we first *declare* the graph, then ask
``sg.gradients`` for the symbolic gradient (more graph nodes), then run it in a
Session.  Because w1 parametrizes both phi1 and phi3, its gradient is the sum
of the gradients of its two uses; the script shows that explicitly and checks
all gradients against central finite differences in float64.

Run:  python examples/dag_forward_backward.py [--seed 0]
"""
import argparse

import numpy as np

import staticgraph as sg


def build_dag(w1, w2, x):
    """The lecture's DAG on tensors w1, w2 (5x5) and x (5,); returns q = ||x3||."""
    x0 = x
    x1 = w1 @ x0
    x2 = x0 + w2 @ x1
    x3 = w1 @ (x1 + x2)
    return x3.norm()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="seed of the random initial values")
    args = parser.parse_args()
    np.set_printoptions(precision=4, suppress=True)

    # ---- 1. declare the graph (nothing is computed yet) -----------------------------
    w1 = sg.Variable(sg.random_normal([5, 5], seed=args.seed), name="w1")
    w2 = sg.Variable(sg.random_normal([5, 5], seed=args.seed + 1), name="w2")
    x = sg.Variable(sg.random_normal([5], seed=args.seed + 2), name="x")
    q = build_dag(w1, w2, x)
    gw1, gw2 = sg.gradients(q, [w1, w2])        # symbolic backward pass: more graph tensors

    # ---- 2. run it ------------------------------------------------------------------
    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        _q, _gw1, _gw2 = sess.run([q, gw1, gw2])
        w1_val, w2_val, x_val = sess.run([w1, w2, x])
    print("q =", "%.4f" % _q)
    print("dq/dw1 =\n", _gw1)
    print("dq/dw2 =\n", _gw2)

    # ---- 3. weight sharing: dq/dw1 is the sum over the two uses of w1 ----------------
    # Give each use of w1 its own name (an identity of w1) and differentiate
    # with respect to the uses separately.
    g = sg.Graph()
    with g.as_default():
        W1, W2, X = (sg.constant(v) for v in (w1_val, w2_val, x_val))
        w1_in_phi1, w1_in_phi3 = sg.identity(W1), sg.identity(W1)
        x1 = w1_in_phi1 @ X
        x2 = X + W2 @ x1
        q_split = (w1_in_phi3 @ (x1 + x2)).norm()
        g_phi1, g_phi3 = sg.gradients(q_split, [w1_in_phi1, w1_in_phi3])
        with sg.Session(g) as sess:
            _g1, _g3 = sess.run([g_phi1, g_phi3])
    err_share = np.abs((_g1 + _g3) - _gw1).max()
    print("weight sharing: max |dq/dw1 - (grad via phi1 + grad via phi3)| = %.2e" % err_share)

    # ---- 4. check against central finite differences, in float64 ---------------------
    g64 = sg.Graph()
    with g64.as_default():
        W1 = sg.Variable(w1_val.astype(np.float64), dtype=sg.float64, name="w1")
        W2 = sg.Variable(w2_val.astype(np.float64), dtype=sg.float64, name="w2")
        X = sg.Variable(x_val.astype(np.float64), dtype=sg.float64, name="x")
        Q = build_dag(W1, W2, X)
        GW1, GW2 = sg.gradients(Q, [W1, W2])
        with sg.Session(g64) as sess:
            sess.run(sg.global_variables_initializer())
            ag1, ag2 = sess.run([GW1, GW2])
            # A compiled plan of q in which the variables w1 and w2 are *fed*
            # (feeding a tensor overrides its value for that run).
            q_of = sess.compile(Q, [W1, W2])
            eps = 1e-6
            base = [w1_val.astype(np.float64), w2_val.astype(np.float64)]
            max_err = 0.0
            for which, analytic in ((0, ag1), (1, ag2)):
                fd = np.zeros_like(analytic)
                for idx in np.ndindex(*analytic.shape):
                    plus, minus = [b.copy() for b in base], [b.copy() for b in base]
                    plus[which][idx] += eps
                    minus[which][idx] -= eps
                    fd[idx] = (q_of(*plus) - q_of(*minus)) / (2 * eps)
                max_err = max(max_err, np.abs(fd - analytic).max() / max(1.0, np.abs(analytic).max()))
    print("max |autograd - finite differences| (float64, relative) = %.2e" % max_err)
    print("float32 vs float64 gradients agree:",
          bool(np.allclose(_gw1, ag1, rtol=1e-3, atol=1e-3) and np.allclose(_gw2, ag2, rtol=1e-3, atol=1e-3)))
    if max_err > 1e-6 or err_share > 1e-3:
        raise SystemExit("gradient check FAILED")


if __name__ == "__main__":
    main()
