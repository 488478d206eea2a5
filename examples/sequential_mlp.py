"""A Sequential MLP trained on a toy problem (lecture 4.6, "Creating a module").

Course idea: ``nn.Sequential`` chains modules, each applied to the output of
the previous one. The lecture's MLP has a 10-dimensional input, two hidden
layers of 100 and 50 units with ReLU, and a 2-dimensional output:

    model = nn.Sequential(
        nn.Linear(10, 100), nn.ReLU(),
        nn.Linear(100, 50), nn.ReLU(),
        nn.Linear(50, 2)
    )

Toy problem: is a 10-d Gaussian point outside the sphere holding half of them
(|x|^2 > 9.34, the median of a chi-square with 10 degrees of freedom)? A
linear model cannot separate it; the MLP learns it. The graph (model, loss,
Adam step) is built once; the loop runs it on shuffled mini-batches from
``sg.datasets.batches``.

Run:  python examples/sequential_mlp.py [--epochs 20] [--seed 0]
"""
import argparse

import numpy as np

import staticgraph as sg
from staticgraph import nn


def toy_data(rng, n):
    x = rng.standard_normal((n, 10)).astype(np.float32)
    return x, (np.sum(x ** 2, axis=1) > 9.34).astype(np.int64)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    x_train, y_train = toy_data(rng, 4000)
    x_test, y_test = toy_data(rng, 1000)

    nn.manual_seed(args.seed)
    model = nn.Sequential(
        nn.Linear(10, 100), nn.ReLU(),
        nn.Linear(100, 50), nn.ReLU(),
        nn.Linear(50, 2)
    )
    print(model)
    print("parameters:", [(name, p.shape) for name, p in model.named_parameters()])

    x = sg.placeholder(sg.float32, [None, 10], name="x")
    y = sg.placeholder(sg.int64, [None], name="y")
    logits = model(x)
    loss = nn.cross_entropy(logits, y)
    accuracy = sg.reduce_mean(sg.cast(sg.equal(sg.argmax(logits, 1), y), sg.float32))
    train_op = sg.train.AdamOptimizer(0.002).minimize(loss)

    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        step = sess.compile([loss, train_op], [x, y])
        evaluate = sess.compile([loss, accuracy], [x, y])
        print("before training: test loss %.4f  test accuracy %.3f" % tuple(evaluate(x_test, y_test)))
        for epoch in range(1, args.epochs + 1):
            losses = [step(bx, by)[0]
                      for bx, by in sg.datasets.batches(x_train, y_train, batch_size=100, shuffle=True,
                                                        seed=args.seed, epoch=epoch)]
            if epoch % max(1, args.epochs // 6) == 0 or epoch == args.epochs:
                print("epoch %3d  train loss %.4f  test accuracy %.3f"
                      % (epoch, np.mean(losses), evaluate(x_test, y_test)[1]))
        final_loss, final_acc = evaluate(x_test, y_test)
    print("final test loss %.4f, test accuracy %.3f (chance: 0.5)" % (final_loss, final_acc))


if __name__ == "__main__":
    main()
