"""Linear regression trained by gradient descent (lecture 4.2's training loop).

Course idea: a model is a graph from parameters to a loss; training repeats
"compute the gradient of the loss, step the parameters against it".  The
lecture writes, with row-vector samples (lecture 4.3),

    y_hat = x @ w.t() + b
    loss  = (y_hat - y).pow(2).mean()
    w -= eta * w.grad;  b -= eta * b.grad

In a static graph the loop body is built ONCE: ``minimize`` adds the gradient
ops and the parameter updates to the graph and returns the training op; the
Python loop only runs it (here through a compiled Plan fed with the data).

The data are synthetic: y = x @ w_true.t() + b_true + noise, so the loss
should fall to about the noise variance (0.01) and w, b approach the truth.

Run:  python examples/linear_regression.py [--steps 200] [--lr 0.05] [--seed 0]
"""
import argparse

import numpy as np

import staticgraph as sg


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="gradient steps")
    parser.add_argument("--lr", type=float, default=0.05, help="learning rate eta")
    parser.add_argument("--n", type=int, default=500, help="number of samples")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    # ---- synthetic data: 8 inputs, 3 outputs ----------------------------------------
    rng = np.random.default_rng(args.seed)
    d_in, d_out, noise = 8, 3, 0.1
    w_true = rng.standard_normal((d_out, d_in)).astype(np.float32)
    b_true = rng.standard_normal(d_out).astype(np.float32)
    x_val = rng.standard_normal((args.n, d_in)).astype(np.float32)
    y_val = (x_val @ w_true.T + b_true + noise * rng.standard_normal((args.n, d_out))).astype(np.float32)

    # ---- the graph: model, loss, and the training step -------------------------------
    x = sg.placeholder(sg.float32, shape=(None, d_in), name="x")
    y = sg.placeholder(sg.float32, shape=(None, d_out), name="y")
    w = sg.Variable(sg.random_normal([d_out, d_in], stddev=1e-3, seed=args.seed), name="w")
    b = sg.Variable(sg.random_normal([d_out], stddev=1e-3, seed=args.seed + 1), name="b")
    y_hat = x @ w.t() + b
    loss = (y_hat - y).pow(2).mean()
    train_op = sg.train.GradientDescentOptimizer(args.lr).minimize(loss)
    # (Without sg.train the step would be, equivalently:
    #    gw, gb = sg.gradients(loss, [w, b])
    #    train_op = sg.group(w.assign_sub(lr * gw), b.assign_sub(lr * gb))

    # ---- run: compile the step once, call it in the loop -----------------------------
    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        step = sess.compile([loss, train_op], [x, y])   # fetches the loss *before* the update
        first = None
        for k in range(args.steps + 1):
            current, _ = step(x_val, y_val)
            first = current if first is None else first
            if k % max(1, args.steps // 10) == 0:
                print("step %4d  loss %.6f" % (k, current))
        w_hat, b_hat = sess.run([w, b])
        final = sess.run(loss, {x: x_val, y: y_val})
    print("initial loss %.6f -> final loss %.6f (noise variance %.4f)" % (first, final, noise ** 2))
    print("max |w - w_true| = %.4f, max |b - b_true| = %.4f"
          % (np.abs(w_hat - w_true).max(), np.abs(b_hat - b_true).max()))


if __name__ == "__main__":
    main()
