"""Train the demo convnet, export it to ONNX, and run the exported file in ONNX Runtime.

    pip install -e ".[onnx]"            # the onnx and onnxruntime packages
    python examples/export_onnx.py      # a few epochs on scikit-learn's 8x8 digits

The model and the data split are ``examples/train_convnet.py``'s (``DigitsNet``, 80/20 split of
``sg.datasets.digits()``). After training, ``sg.onnx.export`` writes the forward graph from the
images to the logits, with the trained weights as initializers and the batch size left symbolic;
ONNX Runtime then classifies the held-out digits from that file alone, and both accuracies are
printed (they agree: the logits match to float32 rounding).

Run:  python examples/export_onnx.py [--epochs 3] [--out digits_convnet.onnx] [--target cpu|reference]
"""
import argparse
import os
import sys

import numpy as np

import staticgraph as sg
from staticgraph import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_convnet import DigitsNet, load_data  # noqa: E402  (the demo's model and data split)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam's learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", default="cpu", choices=["cpu", "reference"], help="Session target")
    parser.add_argument("--out", default="digits_convnet.onnx", help="the ONNX file to write")
    args = parser.parse_args()
    import onnxruntime

    x_train, y_train, x_test, y_test, _, what = load_data(argparse.Namespace(mnist=None, seed=args.seed))
    print("data: %s: %d training, %d held-out samples" % (what, len(y_train), len(y_test)))
    nn.manual_seed(args.seed)
    model = DigitsNet()
    x = sg.placeholder(sg.float32, (None,) + x_train.shape[1:], name="images")
    y = sg.placeholder(sg.int64, [None], name="labels")
    logits = model(x)
    loss = nn.cross_entropy(logits, y)
    train_op = sg.train.AdamOptimizer(args.lr).minimize(loss)

    with sg.Session(target=args.target) as sess:
        sess.run(sg.global_variables_initializer())
        step = sess.compile([loss, train_op], [x, y])
        for epoch in range(1, args.epochs + 1):
            losses = [float(step(bx, by)[0]) for bx, by in sg.datasets.batches(
                x_train, y_train, batch_size=args.batch_size, shuffle=True, seed=args.seed, epoch=epoch)]
            print("epoch %d/%d  mean loss %.4f" % (epoch, args.epochs, np.mean(losses)))
        ours = sess.run(logits, {x: x_test})
        sg.onnx.export(sess, logits, [x], args.out)
    print("exported %s (%d bytes)" % (args.out, os.path.getsize(args.out)))

    runtime = onnxruntime.InferenceSession(args.out, providers=["CPUExecutionProvider"])
    theirs = runtime.run(None, {"images": x_test})[0]
    print("largest logit difference: %.3g" % np.max(np.abs(theirs - ours)))
    print("staticgraph held-out accuracy:  %.4f" % np.mean(np.argmax(ours, 1) == y_test))
    print("ONNX Runtime held-out accuracy: %.4f" % np.mean(np.argmax(theirs, 1) == y_test))


if __name__ == "__main__":
    main()
