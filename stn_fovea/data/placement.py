"""Integer placement of digits: per-axis Gaussian shifts, radial shifts and batched translation.

Convention: a shift is (rows, cols) in pixels; positive rows move the content down, positive cols move
it right. Offsets are truncated toward zero, as ``int()`` does in the reference code.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from stn_fovea.data.counter_rng import normal, uniform

SHIFT_STREAM = 1
RADIUS_STREAM = 4
ANGLE_STREAM = 5


def sample_gaussian_shifts(keys: Tensor, shift_std_px: float, shift_max_px: int) -> Tensor:
    """Per-axis shifts ``int(clip(N(0, 1) * std, -max, max))``, int64 of shape (B, 2) as (rows, cols)."""
    if shift_std_px < 0:
        raise ValueError(f"shift_std_px must be >= 0, got {shift_std_px}")
    if shift_max_px < 0:
        raise ValueError(f"shift_max_px must be >= 0, got {shift_max_px}")
    offsets = normal(keys, SHIFT_STREAM, 2) * shift_std_px
    return torch.trunc(offsets.clamp(-shift_max_px, shift_max_px)).to(torch.int64)


def sample_radial_shifts(
    keys: Tensor, radius_std_px: float, radius_max_px: float, radius_px: float | None = None
) -> Tensor:
    """Shifts at a radius and a uniform angle (whatwhere.md 1.3), int64 of shape (B, 2) as (rows, cols).

    The radius is ``radius_px`` when given (the test protocol), else ``min(|N(0, 1)| * std, max)``; the
    angle theta is U(0, 2 pi); rows = int(r cos theta), cols = int(r sin theta). Truncation makes the
    realised distance up to sqrt(2) px (about 0.5 px on average) shorter than r, as in the reference.
    """
    if radius_std_px < 0 or radius_max_px < 0:
        raise ValueError(f"radius std and max must be >= 0 px, got {radius_std_px} and {radius_max_px}")
    if radius_px is None:
        radius = (normal(keys, RADIUS_STREAM, 1).squeeze(-1).abs() * radius_std_px).clamp(max=radius_max_px)
    elif radius_px < 0:
        raise ValueError(f"radius_px must be >= 0, got {radius_px}")
    else:
        radius = torch.full(keys.shape, float(radius_px), device=keys.device)
    angle = (2.0 * math.pi) * uniform(keys, ANGLE_STREAM, 1).squeeze(-1)
    offsets = torch.stack((radius * torch.cos(angle), radius * torch.sin(angle)), dim=-1)
    return torch.trunc(offsets).to(torch.int64)


def translate(images: Tensor, shifts: Tensor, fill: float = 0.0) -> Tensor:
    """Translate each image of a batch by an integer shift; uncovered pixels take ``fill``.

    Args:
        images: (B, H, W) tensor.
        shifts: (B, 2) integer tensor of (rows, cols); content at (r, c) moves to (r + rows, c + cols).
        fill: value of the pixels that no source pixel covers (content leaving the frame is lost).
    Returns:
        (B, H, W) tensor of the same dtype and device as ``images``.
    """
    if images.dim() != 3 or shifts.shape != (images.shape[0], 2):
        raise ValueError(
            f"expected images (B, H, W) and shifts (B, 2), got {tuple(images.shape)} and "
            f"{tuple(shifts.shape)}"
        )
    batch, height, width = images.shape
    shifts = shifts.to(device=images.device, dtype=torch.int64)
    rows = torch.arange(height, device=images.device) - shifts[:, :1]
    cols = torch.arange(width, device=images.device) - shifts[:, 1:]
    inside = ((rows >= 0) & (rows < height)).unsqueeze(2) & ((cols >= 0) & (cols < width)).unsqueeze(1)
    gathered = images[
        torch.arange(batch, device=images.device).view(batch, 1, 1),
        rows.clamp(0, height - 1).unsqueeze(2),
        cols.clamp(0, width - 1).unsqueeze(1),
    ]
    return torch.where(inside, gathered, torch.full_like(gathered, fill))
