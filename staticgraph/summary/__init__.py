"""``sg.summary``: TF1's summaries and ``FileWriter``, for TensorBoard.

::

    tf.summary.scalar("loss", loss)
    tf.summary.histogram("weights", w)
    merged = tf.summary.merge_all()
    writer = tf.summary.FileWriter(logdir, sess.graph)
    for step in range(n):
        summary, _ = sess.run([merged, train_op], feed_dict)
        writer.add_summary(summary, step)
    writer.close()

Building summaries needs nothing extra; writing event files needs the optional ``tensorboardX``
package (``pip install "staticgraph[tensorboard]"``).
"""
from .graph_def import graph_def  # noqa: F401
from .ops import SUMMARIES, Summary, SummaryKey, histogram, merge, merge_all, scalar, to_proto  # noqa: F401
from .writer import FileWriter  # noqa: F401
