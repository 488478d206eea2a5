"""Stopping gradients (PyTorch's ``detach()``, lecture 4.2) and one-step training.

Course idea: ``sg.stop_gradient(t)`` is the identity in the forward pass but
passes no gradient back, so a term can use a value without being optimized
through it.  The lecture minimizes, by gradient descent from a = 0.5, b = -0.5,

    l = (a - 1)**2 + (b + 1)**2 + (a - b)**2

which converges to a = 1/3, b = -1/3, printing ``0.333333 -0.333333``.
With ``a.detach()`` (here ``sg.stop_gradient(a)``) in the last term, a only
sees the gradient of (a - 1)**2 and goes to 1, while b minimizes
(b + 1)**2 + (a - b)**2 with a -> 1, i.e. goes to 0 (from below, hence the
sign):  ``1.000000 -0.000000``.

Static-graph style: the update ``a -= eta * ga; b -= eta * gb`` is ONE op
(two ``assign_sub`` grouped).  Within a run every read sees the variables'
old values and all assigns land together at the end, exactly like the
lecture's ``with torch.no_grad()`` block.  It is compiled once into a Plan and
called 100 times.  The lecture leaves ``eta`` unspecified; eta = 0.1 converges
to six decimals in 100 steps (the Hessian's eigenvalues are 2 and 6, so the
error shrinks by a factor of at most 1 - 0.1 * 2 = 0.8 per step).

Run:  python examples/stop_gradient.py [--eta 0.1] [--steps 100]
"""
import argparse

import staticgraph as sg


def descend(detach, eta, steps):
    """Run `steps` gradient steps on the lecture's loss; return the final (a, b)."""
    graph = sg.Graph()
    with graph.as_default():
        a = sg.Variable(0.5, name="a")          # float32 scalars
        b = sg.Variable(-0.5, name="b")
        a_last = sg.stop_gradient(a) if detach else a
        l = (a - 1) ** 2 + (b + 1) ** 2 + (a_last - b) ** 2
        ga, gb = sg.gradients(l, (a, b))
        step = sg.group(a.assign_sub(eta * ga), b.assign_sub(eta * gb))
        with sg.Session(graph) as sess:
            sess.run(sg.global_variables_initializer())
            train_step = sess.compile(step, [])   # compiled once, no feeds
            for _ in range(steps):
                train_step()
            return sess.run([a, b])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eta", type=float, default=0.1, help="learning rate (default 0.1)")
    parser.add_argument("--steps", type=int, default=100, help="number of steps (default 100)")
    args = parser.parse_args()

    print("l = (a - 1)**2 + (b + 1)**2 + (a - b)**2")
    a, b = descend(False, args.eta, args.steps)
    print('%.06f' % a, '%.06f' % b)

    print("l = (a - 1)**2 + (b + 1)**2 + (sg.stop_gradient(a) - b)**2")
    a, b = descend(True, args.eta, args.steps)
    print('%.06f' % a, '%.06f' % b)


if __name__ == "__main__":
    main()
