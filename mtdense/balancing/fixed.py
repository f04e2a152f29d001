"""Fixed loss weights."""
from __future__ import annotations
import torch
from mtdense.balancing.base import Balancer
from mtdense.registry import BALANCERS


@BALANCERS.register("fixed")
class Fixed(Balancer):
    def __init__(self, tasks, weights=None):
        super().__init__(tasks)
        self.weights = {t: 1.0 for t in tasks} | dict(weights or {})

    def backward(self, losses, shared_params):
        total = sum(self.weights.get(k, 1.0) * v for k, v in losses.items())
        total.backward()
        return {k: self.weights.get(k, 1.0) for k in losses}
