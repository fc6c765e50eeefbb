"""Differentiable glimpse sampling with ``affine_grid`` + ``grid_sample``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PADDING_MODES = ("zeros", "border", "reflection")


class AffineSampler(nn.Module):
    """Sample an ``output_size`` glimpse from an image through an affine theta.

    Args:
        output_size: (height, width) of the glimpse in pixels; None keeps the input size.
        align_corners: passed to both affine_grid and grid_sample (they must agree).
        padding_mode: value outside the image: "zeros" (the reference), "border" or "reflection".
        mode: "bilinear" (the reference) or "nearest".
    """

    def __init__(
        self,
        output_size: Sequence[int] | None = None,
        align_corners: bool = False,
        padding_mode: str = "zeros",
        mode: str = "bilinear",
    ) -> None:
        super().__init__()
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
        if mode not in ("bilinear", "nearest"):
            raise ValueError(f"mode must be 'bilinear' or 'nearest', got {mode!r}")
        self.output_size = tuple(output_size) if output_size is not None else None
        self.align_corners, self.padding_mode, self.mode = align_corners, padding_mode, mode

    def forward(self, image: Tensor, theta: Tensor, output_size: Sequence[int] | None = None) -> Tensor:
        """image (B, C, H, W), theta (B, 2, 3) -> glimpse (B, C, *output_size); ``output_size`` here
        replaces the sampler's own for this call."""
        height, width = output_size or self.output_size or image.shape[-2:]
        grid = F.affine_grid(
            theta, [image.shape[0], image.shape[1], height, width], align_corners=self.align_corners
        )
        return F.grid_sample(
            image,
            grid,
            mode=self.mode,
            padding_mode=self.padding_mode,
            align_corners=self.align_corners,
        )


def glimpse_corners(theta: Tensor, image_size: Sequence[int], align_corners: bool = False) -> Tensor:
    """Where a glimpse comes from: the input-pixel coordinates of its four corners.

    Args:
        theta: (B, 2, 3) affine matrices (output -> input normalised coordinates).
        image_size: (height, width) of the input image in pixels.
        align_corners: the sampler's setting (it fixes where the normalised -1 and 1 lie).
    Returns:
        (B, 4, 2) float tensor of (x = column, y = row) pixel coordinates, in the order top-left,
        top-right, bottom-right, bottom-left of the glimpse; with align_corners=False they are the
        outer edges of the glimpse's corner pixels.
    """
    height, width = image_size
    corners = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]], device=theta.device)
    source = corners @ theta[:, :, :2].transpose(1, 2) + theta[:, :, 2].unsqueeze(1)
    size = torch.tensor([width, height], device=theta.device, dtype=source.dtype)
    if align_corners:
        return (source + 1.0) / 2.0 * (size - 1.0)
    return ((source + 1.0) * size - 1.0) / 2.0


def on_image(windows: Tensor, image_size: Sequence[int]) -> Tensor:
    """Whether each window (..., 4, 2) of :func:`glimpse_corners` reads any of the image. Bilinear
    sampling reads pixel 0 from any point above -1 and the last pixel from any point below ``side``
    (pixel centres at 0 .. side - 1), so a window whose bounding box lies wholly beyond those reads
    only the padding: no image, and with zero (or border) padding no gradient for its pose. The test
    is on the bounding box: a window called off the image is wholly off it."""
    height, width = image_size
    low, high = windows.amin(dim=-2), windows.amax(dim=-2)
    x_on = (high[..., 0] > -1.0) & (low[..., 0] < width)
    y_on = (high[..., 1] > -1.0) & (low[..., 1] < height)
    return x_on & y_on
