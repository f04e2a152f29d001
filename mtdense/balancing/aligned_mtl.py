"""Aligned-MTL: Senushkin, Patakin, Kuznetsov, Konushin, "Independent Component Alignment
for Multi-Task Learning", CVPR 2023.

Makes the task gradients orthogonal and of equal magnitude: with the Gram matrix
M = G G^T = V diag(lambda) V^T (rank r, eigenvalues below the numerical tolerance dropped),
the aligned gradients are G^T B with B = sqrt(lambda_min) V diag(lambda)^{-1/2} V^T
("min" scale mode, the paper's default), and the shared gradient is their sum,
i.e. coefficients alpha = B 1.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mtdense.balancing.gradients import GradientBalancer
from mtdense.registry import BALANCERS


@BALANCERS.register("aligned_mtl")
class AlignedMTL(GradientBalancer):
    def coefficients(self, gram: Tensor) -> Tensor:
        eigenvalues, vectors = torch.linalg.eigh(gram)
        tol = eigenvalues.max() * gram.shape[0] * torch.finfo(torch.float32).eps
        keep = eigenvalues > tol
        if not bool(keep.any()):  # every task gradient is zero
            return torch.zeros(gram.shape[0], dtype=gram.dtype, device=gram.device)
        eigenvalues, vectors = eigenvalues[keep], vectors[:, keep]
        basis = vectors * (torch.sqrt(eigenvalues.min()) / torch.sqrt(eigenvalues))
        return (basis @ vectors.T).sum(dim=0)
