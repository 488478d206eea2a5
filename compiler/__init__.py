"""staticgraph's compiler: autodiff pass, scheduling, backends and plans.

Reads the IR in ``staticgraph`` (graph, ops, tensors); the IR never imports it.
"""
