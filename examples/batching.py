"""Batch processing (lecture 4.3): one matrix product for N samples vs N products.

Course idea: modules process a *batch* of samples stored as the rows of an
N x D tensor.  With row vectors, a fully connected layer w (D_out x D) applied
to every sample is the single product  x @ w.t()  (s_n = x_n w^T), which
equals stacking the per-sample products  w @ x[n].  The batched form reads the
parameters once per batch instead of once per sample and avoids a Python
loop, hence the speed-up.

Here the batched graph is  y = x @ w.t()  with x a placeholder of shape
(None, D) (the batch size is unknown when the graph is built), and the
per-sample graph is  y_k = w @ x_k  with x_k a (D,) placeholder, run once per
sample from a Python loop, as in the lecture's ``timing`` function.  Both are
compiled once into Plans, so the timing measures execution, not graph work.

The lecture uses N = 2500, D = 1000, D_out = 1500 and reports a CPU speed-up
of 4.6 (PyTorch); the defaults here are smaller so that the script runs in a
few seconds.

Run:  python examples/batching.py [--n 500] [--d 1000] [--d-out 1500] [--repeats 5]
"""
import argparse
import time

import numpy as np

import staticgraph as sg


def median_time(fn, repeats):
    """Median wall-clock time of `repeats` calls of fn()."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="number of samples (lecture: 2500)")
    parser.add_argument("--d", type=int, default=1000, help="input dimension (lecture: 1000)")
    parser.add_argument("--d-out", type=int, default=1500, help="output dimension (lecture: 1500)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs; the median is kept")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    x_val = rng.standard_normal((args.n, args.d)).astype(np.float32)

    w = sg.Variable(sg.random_normal([args.d_out, args.d], seed=args.seed), name="w")
    x = sg.placeholder(sg.float32, shape=(None, args.d), name="x")      # a batch of row vectors
    y_batch = x @ w.t()                                                  # (N, D_out)
    x_k = sg.placeholder(sg.float32, shape=(args.d,), name="x_k")       # one sample
    y_k = w @ x_k                                                        # (D_out,)

    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        batch = sess.compile(y_batch, [x])
        single = sess.compile(y_k, [x_k])

        def per_sample():
            return np.stack([single(x_val[k]) for k in range(args.n)])

        def batched():
            return batch(x_val)

        y1, y2 = per_sample(), batched()
        assert y1.shape == y2.shape == (args.n, args.d_out)
        assert np.allclose(y1, y2, rtol=1e-4, atol=1e-3), "batched and per-sample results differ"
        print("batched x @ w.t() equals stacked per-sample w @ x[k]: max |diff| = %.2e"
              % np.abs(y1 - y2).max())

        t_single = median_time(per_sample, args.repeats)
        t_batch = median_time(batched, args.repeats)
    print("N=%d, D=%d, D_out=%d: per-sample %.2f ms, batched %.2f ms"
          % (args.n, args.d, args.d_out, 1e3 * t_single, 1e3 * t_batch))
    print("Batch-processing speed-up on CPU %.1f" % (t_single / t_batch))


if __name__ == "__main__":
    main()
