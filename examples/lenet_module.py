"""Writing a module: the lecture's LeNet-like ``Net`` (lecture 4.6).

Course idea: subclass ``nn.Module``, create the layers in ``__init__`` and
write the computation in ``forward``; calling the module calls ``forward``.
Here, in a static graph, the call ADDS OPS to the graph (the shapes are known
at once, from shape inference) and a Session runs them. The layers'
Parameters are found by ``parameters()`` in PyTorch's order:

    1x28x28 -conv 5x5-> 32x24x24 -maxpool 3-> 32x8x8 -conv 5x5-> 64x4x4
    -maxpool 2-> 64x2x2 -view-> 256 -fc-> 200 -fc-> 10

for a total of 105,506 parameters (lecture's table).

The lecture then warns that PyTorch does NOT see Parameters kept in plain
lists or dicts (``Buggy``: the Linear in a list is missing) unless they are
wrapped in an ``nn.ModuleList`` (``AnotherNotBuggy``). staticgraph discovers
modules in plain lists, tuples and dicts too, so here BOTH print the Linear's
weight and bias.

Run:  python examples/lenet_module.py
"""
import numpy as np

import staticgraph as sg
from staticgraph import nn
from staticgraph.nn import functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, kernel_size=5)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=5)
        self.fc1 = nn.Linear(256, 200)
        self.fc2 = nn.Linear(200, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), kernel_size=3, stride=3))
        x = F.relu(F.max_pool2d(self.conv2(x), kernel_size=2, stride=2))
        x = x.view(-1, 256)
        x = F.relu(self.fc1(x))
        x = self.fc2(x)
        return x


class Buggy(nn.Module):                 # buggy in PyTorch: the list hides the Linear
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 32, kernel_size=5)
        self.param = nn.Parameter(np.zeros((123, 456), dtype=np.float32))
        self.other_stuff = [nn.Linear(543, 21)]


class AnotherNotBuggy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 32, kernel_size=5)
        self.param = nn.Parameter(np.zeros((123, 456), dtype=np.float32))
        self.other_stuff = nn.ModuleList()
        self.other_stuff.append(nn.Linear(543, 21))


def main():
    nn.manual_seed(0)
    model = Net()
    input = sg.random_normal([12, 1, 28, 28], seed=0)
    output = model(input)
    print("output.shape (inferred when the graph is built):", output.shape)
    with sg.Session() as sess:
        sess.run(sg.global_variables_initializer())
        print("output computed by a Session:", sess.run(output).shape)

    print("\nfor k in model.parameters(): print(k.shape)")
    for k in model.parameters():
        print(k.shape)
    print("\nnamed_parameters():", ", ".join(name for name, _ in model.named_parameters()))
    total = sum(int(np.prod(p.shape)) for p in model.parameters())
    print("total: {:,} parameters".format(total))

    # The same network fed through a placeholder with an unknown batch size:
    x = sg.placeholder(sg.float32, [None, 1, 28, 28], name="x")
    print("\nwith a None batch: model(x).shape =", model(x).shape, "(same Parameters, no new ones:",
          len(sg.trainable_variables()), "trainable variables)")

    print("\nPyTorch would miss the Linear(543, 21) that Buggy keeps in a plain list; staticgraph finds "
          "it in both:")
    for cls in (Buggy, AnotherNotBuggy):
        print("\n%s().parameters():" % cls.__name__)
        for k in cls().parameters():
            print(k.shape)


if __name__ == "__main__":
    main()
