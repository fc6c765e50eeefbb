"""Pose parametrisations: a vector of predicted parameters -> a (B, 2, 3) affine matrix theta.

theta follows ``torch.nn.functional.affine_grid``: it maps OUTPUT normalised coordinates (x, y in
[-1, 1], x to the right, y down) to INPUT normalised coordinates. A translation tx therefore moves the
sampled window by tx * W / 2 input pixels to the right, i.e. it shows content that lies to the right.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class AffinePose(nn.Module):
    """Six free parameters, the rows of theta; identity at initialisation."""

    num_params = 6

    def initial_params(self) -> Tensor:
        return torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])

    def forward(self, params: Tensor) -> Tensor:
        return params.view(-1, 2, 3)
