"""Weight sharing: a siamese network (lecture 4.1-4.2, "weight sharing").

Course idea: calling the same module on two inputs uses the SAME Parameters
twice; the network is "siamese" (two copies of one sub-network). Autograd then
gives each Parameter the SUM of the gradients of its uses.

Here an encoder ``f`` embeds two batches ``x1`` and ``x2``, and the loss is the
mean squared distance between the embeddings:

    loss = mean_n |f(x1_n) - f(x2_n)|^2

To see the sum rule, the script builds an encoder ``g`` with the same values
in separate Variables and the untied loss ``|f(x1) - g(x2)|^2``: its gradient
in ``f`` is the contribution of the first use, in ``g`` of the second; their
sum equals the shared gradient.

Run:  python examples/siamese.py
"""
import numpy as np

import staticgraph as sg
from staticgraph import nn


def encoder():
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))


def main():
    nn.manual_seed(0)
    rng = np.random.default_rng(0)
    x1 = sg.constant(rng.standard_normal((5, 4)).astype(np.float32), name="x1")
    x2 = sg.constant(rng.standard_normal((5, 4)).astype(np.float32), name="x2")

    f = encoder()
    n_before = len(sg.trainable_variables())
    shared_loss = ((f(x1) - f(x2)) ** 2).sum(axis=1).mean()          # f called twice
    print("Parameters of f: %d; trainable variables before/after the two calls: %d/%d"
          % (len(list(f.parameters())), n_before, len(sg.trainable_variables())))
    shared = sg.gradients(shared_loss, list(f.parameters()))

    g = encoder()                                                     # same shapes, own Variables
    copy = sg.group(*[pg.assign(pf) for pf, pg in zip(f.parameters(), g.parameters())])
    untied_loss = ((f(x1) - g(x2)) ** 2).sum(axis=1).mean()
    via_first = sg.gradients(untied_loss, list(f.parameters()))       # x1 branch only
    via_second = sg.gradients(untied_loss, list(g.parameters()))      # x2 branch only

    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        sess.run(copy)                                                # g := f
        l1, l2 = sess.run([shared_loss, untied_loss])
        s, a, b = sess.run([shared, via_first, via_second])
    print("shared loss %.6f, untied loss with g = f: %.6f" % (l1, l2))
    worst = 0.0
    for (name, _), gs, ga, gb in zip(f.named_parameters(), s, a, b):
        diff = float(np.abs(gs - (ga + gb)).max())
        worst = max(worst, diff)
        print("%-9s norms: shared grad %.5f, via x1 %.5f, via x2 %.5f; max |shared - (x1 + x2)| = %.1e"
              % (name, np.linalg.norm(gs), np.linalg.norm(ga), np.linalg.norm(gb), diff))
    print("(the last bias is added to both embeddings, so its two contributions cancel exactly)")
    print("max |grad(shared) - (grad via use 1 + grad via use 2)| = %.2e" % worst)


if __name__ == "__main__":
    main()
