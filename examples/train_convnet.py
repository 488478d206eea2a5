"""Train a LeNet-style convnet on real handwritten digits: the staticgraph demo.

    python examples/train_convnet.py                  # scikit-learn's 8x8 digits, about 12 s on one CPU core
    python examples/train_convnet.py --mnist ROOT     # MNIST 28x28 IDX files in ROOT (slow on CPU today)

The graph is built ONCE: placeholders with an unknown (None) batch size, the
model (``nn.Module``s), the cross-entropy loss, accuracy, and Adam's update
ops from ``minimize``. Two compiled plans run it: one training step (loss,
accuracy, update) and one evaluation (accuracy). The Python loop only feeds
mini-batches from ``sg.datasets.batches`` (shuffled reproducibly per epoch)
and shows a tqdm progress bar with the running loss, accuracy and samples/s.

Data: ``sg.datasets.digits()`` (1,797 images of 8x8, scikit-learn's, no
network) with a fixed 80/20 split into training and held-out samples; or, with
``--mnist ROOT``, MNIST's training and test splits read from IDX files in ROOT
(``--download`` fetches them) and the lecture's LeNet (``lenet_module.Net``).

Run:  python examples/train_convnet.py [--epochs 15] [--mnist ROOT [--download] [--limit N]]
                                       [--target cpu|reference|cuda] [--seed 0] [--blas-threads 1]
"""
import argparse
import os
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

import staticgraph as sg
from staticgraph import nn
from staticgraph.nn import functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lenet_module import Net  # noqa: E402  (the lecture's LeNet, for 28x28 MNIST)


class DigitsNet(nn.Module):
    """A LeNet for 8x8 inputs: two conv 3x3 (padding 1) + max-pool 2 blocks, then two linear layers."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=3, padding=1)      # 16x8x8 -> pool -> 16x4x4
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, padding=1)     # 32x4x4 -> pool -> 32x2x2
        self.fc1 = nn.Linear(128, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), kernel_size=2))
        x = F.relu(F.max_pool2d(self.conv2(x), kernel_size=2))
        x = x.view(-1, 128)
        return self.fc2(F.relu(self.fc1(x)))


def load_data(args):
    """(x_train, y_train, x_held_out, y_held_out, model class, description)."""
    if args.mnist:
        x_train, y_train = sg.datasets.mnist(args.mnist, train=True, download=args.download)
        x_test, y_test = sg.datasets.mnist(args.mnist, train=False)
        if args.limit:
            x_train, y_train = x_train[:args.limit], y_train[:args.limit]
        return x_train, y_train, x_test, y_test, Net, "MNIST 28x28 (IDX files in %s)" % args.mnist
    images, labels = sg.datasets.digits()
    order = np.random.default_rng(args.seed).permutation(len(labels))
    n_train = int(round(0.8 * len(labels)))
    train, held_out = order[:n_train], order[n_train:]
    return (images[train], labels[train], images[held_out], labels[held_out], DigitsNet,
            "scikit-learn digits 8x8, 80/20 split")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam's learning rate")
    parser.add_argument("--seed", type=int, default=0, help="fixes the split, the initial weights, the batches")
    parser.add_argument("--target", default="cpu", choices=["cpu", "reference", "cuda"], help="Session target")
    parser.add_argument("--mnist", metavar="ROOT", help="train on MNIST from the IDX files in ROOT")
    parser.add_argument("--download", action="store_true", help="with --mnist: fetch missing files")
    parser.add_argument("--limit", type=int, default=0, help="with --mnist: use the first N training samples")
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="threads for NumPy's matrix products (default 1; 0: BLAS's own default, "
                             "one per core)")
    parser.add_argument("--logdir", help="write TensorBoard logs (loss, accuracy, the graph) here "
                                         "(needs pip install '.[tensorboard]')")
    args = parser.parse_args()
    # Each step is many small matrix products (an 8x8 image batch gives GEMMs of ~10^5-10^6
    # flops), too small for BLAS threads to pay off; on a shared, loaded 2-core machine BLAS's
    # default 2 threads made steps ~10x slower (threads that wait on each other). 1 is the
    # default that is never bad here; --blas-threads 0 keeps BLAS's own choice. The compiled
    # kernels call SciPy's BLAS (Numba's np.dot), NumPy and the reference interpreter NumPy's:
    # both are loaded before the limit, which applies only to libraries already loaded.
    if args.blas_threads > 0:
        import scipy.linalg.cython_blas  # noqa: F401  (loads the BLAS the compiled kernels call)
        threadpool_limits(limits=args.blas_threads, user_api="blas")

    start = time.perf_counter()
    x_train, y_train, x_test, y_test, model_class, what = load_data(args)
    print("data: %s: %d training, %d held-out samples of %s"
          % (what, len(y_train), len(y_test), "x".join(map(str, x_train.shape[1:]))))

    # ---- the graph, built once ---------------------------------------------------------
    nn.manual_seed(args.seed)
    model = model_class()
    x = sg.placeholder(sg.float32, (None,) + x_train.shape[1:], name="images")
    y = sg.placeholder(sg.int64, [None], name="labels")
    logits = model(x)
    loss = nn.cross_entropy(logits, y)
    hit = sg.cast(sg.equal(sg.argmax(logits, 1), y), sg.float32)
    correct = sg.reduce_sum(hit)
    train_op = sg.train.AdamOptimizer(args.lr).minimize(loss)
    if args.logdir:
        sg.summary.scalar("loss", loss)
        sg.summary.scalar("accuracy", sg.reduce_mean(hit))
    summaries = sg.summary.merge_all() if args.logdir else []
    n_params = sum(int(np.prod(p.shape)) for p in model.parameters())
    print("model: %s, %s parameters, logits %s" % (model_class.__name__, format(n_params, ","), logits.shape))

    with sg.Session(target=args.target) as sess:
        sess.run(sg.global_variables_initializer())
        writer = sg.summary.FileWriter(args.logdir, sess.graph) if args.logdir else None
        step = sess.compile([loss, correct, train_op, summaries], [x, y])
        count_correct = sess.compile(correct, [x, y])

        def held_out_accuracy():
            hits = sum(count_correct(bx, by) for bx, by in sg.datasets.batches(x_test, y_test, batch_size=1000))
            return hits / len(y_test)

        global_step = 0
        for epoch in range(1, args.epochs + 1):
            seen, loss_sum, hits = 0, 0.0, 0.0
            with tqdm(total=len(y_train), desc="epoch %d/%d" % (epoch, args.epochs), unit="sample",
                      file=sys.stderr, leave=False, dynamic_ncols=True) as bar:
                for bx, by in sg.datasets.batches(x_train, y_train, batch_size=args.batch_size,
                                                  shuffle=True, seed=args.seed, epoch=epoch):
                    batch_loss, batch_hits, _, summary = step(bx, by)
                    global_step += 1
                    if writer:
                        writer.add_summary(summary, global_step)
                    seen += len(by)
                    loss_sum += float(batch_loss) * len(by)
                    hits += float(batch_hits)
                    bar.update(len(by))
                    bar.set_postfix(loss="%.4f" % (loss_sum / seen), acc="%.3f" % (hits / seen))
                rate = seen / max(bar.format_dict["elapsed"], 1e-9)
            accuracy = held_out_accuracy()
            print("epoch %2d/%d  loss %.4f  train accuracy %.4f  held-out accuracy %.4f  %.0f samples/s"
                  % (epoch, args.epochs, loss_sum / seen, hits / seen, accuracy, rate), flush=True)
            if writer:
                writer.add_scalar("held_out_accuracy", accuracy, epoch)
        final = held_out_accuracy()
        if writer:
            writer.close()
    print("final held-out accuracy: %.4f (%d/%d)" % (final, round(final * len(y_test)), len(y_test)))
    print("wall time: %.1f s (target %s)" % (time.perf_counter() - start, args.target))


if __name__ == "__main__":
    main()
