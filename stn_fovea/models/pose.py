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


def scaled_translation(scale: Tensor, tx: Tensor, ty: Tensor) -> Tensor:
    """(B,) scales and translations -> (B, 2, 3) thetas [[s, 0, tx], [0, s, ty]]."""
    zero = torch.zeros_like(tx)
    return torch.stack((scale, zero, tx, zero, scale, ty), dim=-1).view(-1, 2, 3)


class AttentionPose(nn.Module):
    """ATN's attention parametrisation (whatwhere.md 5.1): (s, tx, ty) -> [[s, 0, tx], [0, s, ty]].

    A glimpse of side 2s in normalised units: s * W pixels of a W-pixel image (28/128 = 0.219 reads
    one image pixel per glimpse pixel for a 28-px glimpse of a 128-px image).

    Args:
        initial_scale: s at initialisation (0.2 in the reference code).
    """

    num_params = 3

    def __init__(self, initial_scale: float = 0.2) -> None:
        super().__init__()
        if initial_scale <= 0:
            raise ValueError(f"initial_scale must be positive, got {initial_scale}")
        self.initial_scale = initial_scale

    def initial_params(self) -> Tensor:
        return torch.tensor([self.initial_scale, 0.0, 0.0])

    def forward(self, params: Tensor) -> Tensor:
        return scaled_translation(*params.unbind(-1))


class TranslationPose(nn.Module):
    """POLO-ATN's parametrisation: a fixed scale and a learned (tx, ty), starting at the centre.

    Args:
        scale: the fixed, non-trainable s of [[s, 0, tx], [0, s, ty]] (0.2 in the reference).
        max_shift: None (the reference): tx and ty are the head's outputs, unbounded. A number m:
            each is m * tanh(output), so that the window's centre stays within m of the image's (in
            normalised units; 1 - scale keeps the whole window on the image). A window wholly off the
            image reads only the padding (zeros, or the repeated border) and gets no gradient: a
            localisation that sends every glimpse there never brings it back (our peripheral ATN did
            so at epoch 3 under SGD, docs/results/anchors.md).
    """

    num_params = 2

    def __init__(self, scale: float = 0.2, max_shift: float | None = None) -> None:
        super().__init__()
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        if max_shift is not None and not max_shift > 0:  # NaN too
            raise ValueError(f"max_shift must be positive (or null for an unbounded shift), got {max_shift}")
        self.scale, self.max_shift = scale, max_shift

    def initial_params(self) -> Tensor:
        return torch.zeros(2)

    def forward(self, params: Tensor) -> Tensor:
        if self.max_shift is not None:
            params = self.max_shift * torch.tanh(params)
        tx, ty = params.unbind(-1)
        return scaled_translation(torch.full_like(tx, self.scale), tx, ty)
