"""Data-parallel training over MPI: the digits convnet of train_convnet.py on K processes.

    mpirun -n 2 python examples/train_distributed.py            # 2 ranks (pip install -e ".[distributed]")
    python examples/train_distributed.py                        # 1 process: the same training

Every rank builds the same graph; ``sg.distributed.DistributedOptimizer`` wraps Adam so that
each step averages the gradients over the ranks (one allreduce per dtype inside the compiled
step) before the update; ``broadcast_variables`` starts every rank from rank 0's weights; each
rank feeds its contiguous part of every global batch (``batches(..., num_shards, shard_index)``).
With a mean loss and equal parts, K ranks compute the parameters one process computes on the
global batches (up to rounding). Rank 0 alone prints, draws the progress bar and evaluates.

Run:  mpirun -n K python examples/train_distributed.py [--epochs 5] [--batch-size 64]
                                                       [--target cpu|reference] [--seed 0] [--limit N]
"""
import argparse
import os
import sys
import time

import numpy as np
from tqdm import tqdm

import staticgraph as sg
from staticgraph import distributed as dist
from staticgraph import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_convnet import DigitsNet  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64, help="the global batch (all ranks together)")
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam's learning rate")
    parser.add_argument("--seed", type=int, default=0, help="fixes the split, the initial weights, the batches")
    parser.add_argument("--target", default="cpu", choices=["cpu", "reference"], help="Session target")
    parser.add_argument("--limit", type=int, default=0, help="train on the first N training samples only")
    args = parser.parse_args()
    dist.init()
    rank, size = dist.rank(), dist.size()
    say = print if rank == 0 else (lambda *a, **k: None)

    images, labels = sg.datasets.digits()
    order = np.random.default_rng(args.seed).permutation(len(labels))
    n_train = int(round(0.8 * len(labels)))
    x_train, y_train = images[order[:n_train]], labels[order[:n_train]]
    if args.limit:
        x_train, y_train, n_train = x_train[:args.limit], y_train[:args.limit], min(n_train, args.limit)
    x_test, y_test = images[order[n_train:]], labels[order[n_train:]]
    say("%d rank(s); global batch %d (%s rows per rank); %d training samples"
        % (size, args.batch_size, "/".join(str(len(range(k, args.batch_size, size))) for k in range(size)), n_train))

    nn.manual_seed(args.seed + rank)          # different on each rank: broadcast_variables makes them rank 0's
    model = DigitsNet()
    x = sg.placeholder(sg.float32, (None, 1, 8, 8), name="images")
    y = sg.placeholder(sg.int64, [None], name="labels")
    logits = model(x)
    loss = nn.cross_entropy(logits, y)
    correct = sg.reduce_sum(sg.cast(sg.equal(sg.argmax(logits, 1), y), sg.float32))
    train_op = dist.DistributedOptimizer(sg.train.AdamOptimizer(args.lr)).minimize(loss)

    with sg.Session(target=args.target) as sess:
        sess.run(sg.global_variables_initializer())
        dist.broadcast_variables(sess, root=0)
        step = sess.compile([loss, train_op], [x, y])
        count_correct = sess.compile(correct, [x, y])
        rate = 0.0
        for epoch in range(1, args.epochs + 1):
            seen, loss_sum, start = 0, 0.0, time.perf_counter()
            with tqdm(total=n_train, desc="epoch %d/%d" % (epoch, args.epochs), unit="sample", file=sys.stderr,
                      leave=False, disable=rank != 0) as bar:
                for bx, by in sg.datasets.batches(x_train, y_train, batch_size=args.batch_size, shuffle=True,
                                                  seed=args.seed, epoch=epoch, num_shards=size, shard_index=rank):
                    batch_loss, _ = step(bx, by)
                    seen += len(by)
                    loss_sum += float(batch_loss) * len(by)
                    bar.update(len(by) * size)
            rate = seen * size / (time.perf_counter() - start)       # global samples per second
            say("epoch %2d/%d  rank-0 loss %.4f  %.0f samples/s (all ranks)"
                % (epoch, args.epochs, loss_sum / max(seen, 1), rate), flush=True)
        if rank == 0:
            hits = sum(count_correct(bx, by) for bx, by in sg.datasets.batches(x_test, y_test, batch_size=1000))
            say("final held-out accuracy: %.4f (%d/%d); last epoch %.0f samples/s on %d rank(s)"
                % (hits / len(y_test), round(hits), len(y_test), rate, size))


if __name__ == "__main__":
    main()
