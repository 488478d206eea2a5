"""Higher-order derivatives (lecture 4.2): differentiate a gradient again.

Course idea: the gradient computation is itself a graph of operations, so it
can be differentiated in turn.  PyTorch needs ``create_graph=True`` for this;
in staticgraph the result of ``sg.gradients`` is *always* a graph tensor, so
it can be used in further ops and passed to ``sg.gradients`` again.

    x   = [1, 2, 3]
    phi = x.pow(2).sum()              g1 = dphi/dx = 2x = [2, 4, 6]
    psi = g1[0].exp() - g1[2].exp()   g2 = dpsi/dx = [2 e^2, 0, -2 e^6]

The lecture prints  tensor([2., 4., 6.])  and  tensor([ 14.7781,    0.0000, -806.8576]).
Everything is float32 as in the lecture; the reference backend rounds exp(6)
correctly to float32, so the printout matches the lecture to the last digit.

Run:  python examples/higher_order.py
"""
import numpy as np

import staticgraph as sg
from _lecture_format import torch_style


def main():
    x = sg.Variable([1., 2., 3.], name="x")
    phi = x.pow(2).sum()
    g1, = sg.gradients(phi, x)           # a graph tensor: no create_graph flag needed
    psi = g1[0].exp() - g1[2].exp()      # ... so it can feed further ops
    g2, = sg.gradients(psi, x)           # ... and be differentiated again

    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        _g1, _g2 = sess.run([g1, g2])
    print(">>> g1 = sg.gradients(phi, x)[0]")
    print(torch_style(_g1))
    print(">>> g2 = sg.gradients(psi, x)[0]")
    print(torch_style(_g2))
    expected = np.array([2 * np.exp(2.0), 0.0, -2 * np.exp(6.0)])
    print("closed form [2 e^2, 0, -2 e^6] =", torch_style(expected))


if __name__ == "__main__":
    main()
