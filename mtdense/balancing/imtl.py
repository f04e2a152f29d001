"""IMTL-G (impartial multi-task learning, gradient part): Liu, Li, Kuang, Xue, Chen, Yang,
Liao, Zhang, "Towards Impartial Multi-task Learning", ICLR 2021.

The balancer named ``imtl`` is IMTL-G only: the paper's loss part (IMTL-L, learnable loss
scales) and the hybrid IMTL are not implemented.

Find alpha with sum_t alpha_t = 1 such that the combined gradient g = sum_t alpha_t g_t has
equal projections onto every unit task gradient u_t = g_t / |g_t|:
    alpha_{2:T} = g_1 U^T (D U^T)^{-1},   alpha_1 = 1 - sum alpha_{2:T},
with D rows g_1 - g_t and U rows u_1 - u_t (t = 2..T). Computed from the Gram matrix in
float64; a pseudo-inverse handles (near-)collinear gradients.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mtdense.balancing.gradients import GradientBalancer
from mtdense.registry import BALANCERS


@BALANCERS.register("imtl")
class IMTLG(GradientBalancer):
    def coefficients(self, gram: Tensor) -> Tensor:
        n = gram.shape[0]
        if n == 1:
            return torch.ones(1, dtype=gram.dtype, device=gram.device)
        inv_norms = 1.0 / torch.sqrt(torch.clamp(torch.diagonal(gram), min=1e-20))
        eye = torch.eye(n, dtype=gram.dtype, device=gram.device)
        diff = eye[:1] - eye[1:]  # rows e_1 - e_t: D = diff @ G
        unit_diff = diff * inv_norms  # rows e_1/|g_1| - e_t/|g_t|: U = unit_diff @ G
        g1_u = gram[0] @ unit_diff.T  # g_1 U^T
        d_u = diff @ gram @ unit_diff.T  # D U^T
        rest = g1_u @ torch.linalg.pinv(d_u)
        return torch.cat([(1.0 - rest.sum()).reshape(1), rest])
