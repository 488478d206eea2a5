"""TensorFlow 1.x's softmax-regression tutorial ("MNIST for ML beginners"), ported by renaming
the import: ``import staticgraph as tf``. It trains on scikit-learn's 8x8 handwritten digits
(1797 images, the first 1500 for training) and prints the test accuracy.

Run: python examples/tf1_tutorial.py [--steps 2000] [--logdir runs/tf1]
(with --logdir, view the loss curve and the graph with: tensorboard --logdir runs/tf1)
"""
import argparse

import numpy as np

import staticgraph as tf


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--logdir", default=None, help="write TensorBoard summaries and the graph here")
    args = parser.parse_args()

    images, labels = tf.datasets.digits()
    flat = images.reshape(len(images), -1)                 # 64 pixels per image
    one_hot = np.eye(10, dtype=np.float32)[labels]
    train_x, train_y, test_x, test_y = flat[:1500], one_hot[:1500], flat[1500:], one_hot[1500:]

    # The model: y = softmax(x W + b)
    x = tf.placeholder(tf.float32, [None, 64])
    W = tf.Variable(tf.zeros([64, 10]))
    b = tf.Variable(tf.zeros([10]))
    y = tf.nn.softmax(tf.matmul(x, W) + b)

    # Training: cross entropy, gradient descent
    y_ = tf.placeholder(tf.float32, [None, 10])
    cross_entropy = tf.reduce_mean(-tf.reduce_sum(y_ * tf.log(y), axis=1))
    train_step = tf.train.GradientDescentOptimizer(0.5).minimize(cross_entropy)

    correct_prediction = tf.equal(tf.argmax(y, 1), tf.argmax(y_, 1))
    accuracy = tf.reduce_mean(tf.cast(correct_prediction, tf.float32))

    writer = merged = None
    if args.logdir:
        tf.summary.scalar("cross_entropy", cross_entropy)
        tf.summary.histogram("weights", W)
        merged = tf.summary.merge_all()
        writer = tf.summary.FileWriter(args.logdir, tf.get_default_graph())

    sess = tf.InteractiveSession()
    tf.global_variables_initializer().run()
    rng = np.random.default_rng(0)
    for step in range(args.steps):
        batch = rng.choice(len(train_x), args.batch, replace=False)
        feed = {x: train_x[batch], y_: train_y[batch]}
        if writer is not None and step % 10 == 0:
            summary, _ = sess.run([merged, train_step], feed_dict=feed)
            writer.add_summary(summary, step)
        else:
            train_step.run(feed_dict=feed)

    print("test accuracy:", accuracy.eval(feed_dict={x: test_x, y_: test_y}))
    if writer is not None:
        writer.close()
    sess.close()


if __name__ == "__main__":
    main()
