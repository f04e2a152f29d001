"""CAGrad (conflict-averse gradient descent): Liu, Liu, Jin, Stone, Liu, "Conflict-Averse
Gradient Descent for Multi-task Learning", NeurIPS 2021 (official code:
github.com/Cranial-XIX/CAGrad).

With g0 the average gradient and c in [0, 1): solve the dual over the simplex
    w* = argmin_w  g_w . g0 + c |g0| |g_w|,   g_w = sum_t w_t g_t,
(scipy SLSQP from the uniform start, as the official code), then
    g = g0 + (c |g0| / |g_w*|) g_w*,
rescaled by 1/(1 + c^2) (``rescale=1``, the official default; 0: none, 2: 1/(1 + c)) and
multiplied by T "to match the sum loss" as the official ``overwrite_grad``. With c = 0,
g is exactly the gradient of the plain sum of the losses (equal weights 1, as "fixed").
All quantities come from the Gram matrix; c = 0.4 is the paper's NYUv2/Cityscapes value.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from mtdense.balancing.gradients import GradientBalancer
from mtdense.registry import BALANCERS
from mtdense.errors import ConfigError


@BALANCERS.register("cagrad")
class CAGrad(GradientBalancer):
    def __init__(self, tasks: list[str], c: float = 0.4, rescale: int = 1):
        super().__init__(tasks)
        if not 0 <= c < 1:
            raise ConfigError(f"{c} must be in [0, 1) (0 = plain sum of the gradients)", key="c")
        if rescale not in (0, 1, 2):
            raise ConfigError(f"{rescale} must be 0 (none), 1 (1/(1+c^2)) or 2 (1/(1+c))", key="rescale")
        self.c = float(c)
        self.rescale = int(rescale)

    def coefficients(self, gram: Tensor) -> Tensor:
        from scipy.optimize import minimize  # imported here: registry imports must stay cheap

        n = gram.shape[0]
        A = gram.cpu().numpy()
        uniform = np.full(n, 1.0 / n)
        c_abs = self.c * float(np.sqrt(A.mean() + 1e-8)) + 1e-8  # c |g0|, |g0|^2 = mean of the Gram

        def objective(w: np.ndarray) -> float:
            return float(w @ A @ uniform + c_abs * np.sqrt(w @ A @ w + 1e-8))

        result = minimize(
            objective,
            uniform,
            bounds=[(0.0, 1.0)] * n,
            constraints={"type": "eq", "fun": lambda w: 1.0 - w.sum()},
        )
        w = torch.as_tensor(result.x, dtype=gram.dtype, device=gram.device)
        lam = c_abs / (torch.sqrt(torch.clamp(w @ gram @ w, min=0.0)) + 1e-8)
        alpha = 1.0 / n + lam * w
        scale = {0: 1.0, 1: 1.0 + self.c**2, 2: 1.0 + self.c}[self.rescale]
        return alpha * (n / scale)
