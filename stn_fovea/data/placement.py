"""Integer placement of digits: per-axis Gaussian shifts and batched translation.

Convention: a shift is (rows, cols) in pixels; positive rows move the content down, positive cols move
it right. Offsets are truncated toward zero, as ``int()`` does in the reference code.
"""

from __future__ import annotations

import torch
from torch import Tensor

from stn_fovea.data.counter_rng import normal

SHIFT_STREAM = 1


def sample_gaussian_shifts(keys: Tensor, shift_std_px: float, shift_max_px: int) -> Tensor:
    """Per-axis shifts ``int(clip(N(0, 1) * std, -max, max))``, int64 of shape (B, 2) as (rows, cols)."""
    if shift_std_px < 0:
        raise ValueError(f"shift_std_px must be >= 0, got {shift_std_px}")
    if shift_max_px < 0:
        raise ValueError(f"shift_max_px must be >= 0, got {shift_max_px}")
    offsets = normal(keys, SHIFT_STREAM, 2) * shift_std_px
    return torch.trunc(offsets.clamp(-shift_max_px, shift_max_px)).to(torch.int64)


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
