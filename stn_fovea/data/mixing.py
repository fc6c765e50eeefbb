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


def minmax_normalise(images: Tensor, include_zero: bool = False) -> Tensor:
    """Scale each image of a (B, H, W) batch to [0, 1]; a constant image becomes all zeros.

    ``include_zero``: normalise as if each image also held a 0 pixel (a digit on a larger zero canvas).
    """
    low = images.amin(dim=(-2, -1), keepdim=True)
    high = images.amax(dim=(-2, -1), keepdim=True)
    if include_zero:
        low, high = low.clamp(max=0.0), high.clamp(min=0.0)
    span = high - low
    return (images - low) / span.clamp_min(torch.finfo(images.dtype).eps)


def stroke_values(digits: Tensor, contrast: Tensor, on_zero_canvas: bool = False) -> Tensor:
    """Digit intensities ``0.5 + c * (u - 0.5)``, with -inf where they would not cover the background.

    ``on_zero_canvas``: the digit sits on a larger zero canvas whose zeros join its min-max.
    """
    strokes = 0.5 + contrast.view(-1, 1, 1) * (minmax_normalise(digits, on_zero_canvas) - 0.5)
    return torch.where(strokes > 0.5, strokes, torch.full_like(strokes, float("-inf")))


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
    return torch.maximum(stroke_values(digits, contrast), 0.5 + noise_amplitude * (noise - 0.5)).clamp(
        0.0, 1.0
    )


def paste_opaque(background: Tensor, digits: Tensor, top_left: Tensor, contrast: Tensor) -> Tensor:
    """``opaque_max_mix`` of small digits into a large background at integer positions, in place.

    Equivalent to mixing each digit pasted on a zero canvas of the background's size (the reference's
    RetinaFill), but it only touches the digit's window.

    Args:
        background: (B, H, W) background intensities (noise already mapped to 0.5 + a (n - 0.5)); modified.
        digits: (B, h, w) digits; they are min-max normalised together with the canvas's zeros.
        top_left: (B, 2) int64 (row, col) of each digit's first pixel; the window must lie inside.
        contrast: (B,) contrasts.
    Returns:
        ``background``, clipped to [0, 1].
    """
    batch, height, width = digits.shape
    strokes = stroke_values(digits.to(background.dtype), contrast, on_zero_canvas=True)
    top_left = top_left.to(device=background.device, dtype=torch.int64)
    rows = (top_left[:, :1] + torch.arange(height, device=background.device)).unsqueeze(2)
    cols = (top_left[:, 1:] + torch.arange(width, device=background.device)).unsqueeze(1)
    sample = torch.arange(batch, device=background.device).view(batch, 1, 1)
    background[sample, rows, cols] = torch.maximum(strokes, background[sample, rows, cols])
    return background.clamp_(0.0, 1.0)
