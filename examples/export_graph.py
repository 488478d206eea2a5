"""Draw a small static graph together with the gradient subgraph built for it.

This is the 5x5 DAG of the lecture:

    x1 = w1 @ x
    x2 = x + w2 @ x1
    x3 = w1 @ (x1 + x2)
    q  = ||x3||

and ``sg.gradients(q, [w1, w2])`` adds the backward pass to the *same* graph
(ops named ``gradients/<forward op>/...``, drawn dashed red and grouped in
``gradients`` boxes: every name scope becomes a box).

Run it with:

    python examples/export_graph.py                 # writes dag.dot and dag_gradients.svg
    python examples/export_graph.py docs/dag_gradients.svg

``dag.dot`` is plain Graphviz text (open it in any Graphviz viewer). The SVG
needs the Graphviz ``dot`` program (``apt-get install graphviz``,
``brew install graphviz``); without it the script just says so.
"""
import shutil
import sys

import staticgraph as sg


def build_dag():
    """Build the forward DAG and its gradients; return (q, [dq/dw1, dq/dw2])."""
    # Variables hold the state; their shapes are fixed when the graph is built.
    w1 = sg.Variable(sg.random_normal((5, 5)), name="w1")
    w2 = sg.Variable(sg.random_normal((5, 5)), name="w2")
    x = sg.Variable(sg.random_normal((5, 1)), name="x")

    # The forward computation: these lines only *add ops* to the graph (nothing
    # is computed yet). Naming ops makes the picture easier to read.
    x1 = sg.matmul(w1, x, name="x1")
    x2 = sg.add(x, sg.matmul(w2, x1), name="x2")
    x3 = sg.matmul(w1, x1 + x2, name="x3")
    q = sg.norm(x3, name="q")

    # Reverse-mode differentiation adds the backward ops to the same graph.
    gw1, gw2 = sg.gradients(q, [w1, w2])
    return q, [gw1, gw2]


def main(svg_path="dag_gradients.svg"):
    q, grads = build_dag()
    # Only what q and the gradients need is drawn (not the variables' initializers).
    targets = [q] + grads
    print("wrote", sg.write_graph(targets, "dag.dot"))
    if shutil.which("dot") is None:
        print("Graphviz 'dot' is not installed: skipping", svg_path)
        return
    print("wrote", sg.write_graph(targets, svg_path))


if __name__ == "__main__":
    main(*sys.argv[1:2])
