"""Contrast and the reference's opaque ("max") mixing of a digit with background noise.

Reference (whatwhere.md section 1.1): the digit is min-max normalised to u in [0, 1] and mapped to
v = 0.5 + c * (u - 0.5); pixels with v <= 0.5 are transparent. The noise n in [0, 1] is mapped to
0.5 + amplitude * (n - 0.5). The image is the pixel-wise max of both, clipped to [0, 1].
"""

from __future__ import annotations

import torch
from torch import Tensor

from stn_fovea.data.counter_rng import uniform

CONTRAST_STREAM = 2


def sample_contrast(keys: Tensor, low: float, high: float) -> Tensor:
    """Per-sample contrast drawn from U(low, high) (fixed when low == high), shape (B,)."""
    if not (0.0 < low <= high <= 1.0):
        raise ValueError(f"contrast range must satisfy 0 < low <= high <= 1, got ({low}, {high})")
    return low + (high - low) * uniform(keys, CONTRAST_STREAM, 1).squeeze(-1)


def minmax_normalise(images: Tensor) -> Tensor:
    """Scale each image of a (B, H, W) batch to [0, 1]; a constant image becomes all zeros."""
    low = images.amin(dim=(-2, -1), keepdim=True)
    span = images.amax(dim=(-2, -1), keepdim=True) - low
    return (images - low) / span.clamp_min(torch.finfo(images.dtype).eps)


def opaque_max_mix(digits: Tensor, noise: Tensor, contrast: Tensor, noise_amplitude: float) -> Tensor:
    """Mix digits over noise with the reference's opaque max rule.

    Args:
        digits: (B, H, W) float digit images, any range (min-max normalised here).
        noise: (B, H, W) noise textures in [0, 1].
        contrast: (B,) contrast c in (0, 1]; the brightest stroke becomes 0.5 + c / 2.
        noise_amplitude: the noise spans [0.5 - a / 2, 0.5 + a / 2].
    Returns:
        (B, H, W) images in [0, 1].
    """
    strokes = 0.5 + contrast.view(-1, 1, 1) * (minmax_normalise(digits) - 0.5)
    strokes = torch.where(strokes > 0.5, strokes, torch.full_like(strokes, float("-inf")))
    background = 0.5 + noise_amplitude * (noise - 0.5)
    return torch.maximum(strokes, background).clamp(0.0, 1.0)
