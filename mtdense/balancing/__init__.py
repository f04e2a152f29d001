"""Loss weighting and gradient combination for multi-task training.

One file per method, each registered in ``mtdense.registry.BALANCERS``; the interface and
the trainer's calling sequence are documented in ``mtdense.balancing.base``.
"""
