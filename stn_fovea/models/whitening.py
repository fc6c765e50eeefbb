"""SLIP pre-whitening of the What/Where retina (whatwhere.md 3.1, exactly as 9.2).

An Olshausen-style filter in Fourier space, ``K(f) = f^alpha * exp(-(f / f_0)^steepness)`` normalised to
mean 1 over all bins, flattens the 1/f spectrum of natural images (and of MotionClouds) before the
log-polar retina encodes the image.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def whitening_filter(size: int = 128, alpha: float = 1.4, f_0: float = 0.4, steepness: float = 4.0) -> Tensor:
    """The (size, size) float64 filter, centred (DC at [size // 2, size // 2], as after fftshift).

    The frequency grid is SLIP's ``mgrid[-size/2:size/2, -size/2:size/2] / size`` (f_x along rows), with
    the DC radius set to 1e-6 so that K(DC) is tiny but not 0; K is divided by its mean over all bins.
    """
    if size < 2 or size % 2:
        raise ValueError(f"the whitening filter needs an even image size, got {size}")
    axis = torch.arange(-size // 2, size // 2, dtype=torch.float64) / size
    f_x, f_y = torch.meshgrid(axis, axis, indexing="ij")
    radius = torch.sqrt(f_x**2 + f_y**2)
    radius[size // 2, size // 2] = 1e-6
    kernel = radius**alpha * torch.exp(-((radius / f_0) ** steepness))
    return kernel / kernel.mean()


class Whitening(nn.Module):
    """Whiten (B, C, size, size) images: ``real(ifft2(fft2(image) * K))``.

    ``recentre=True`` adds 0.5 and clips to [0, 1], as the Where data (``RetinaWhiten``) does; the
    multi-saccade re-encoding of the reference (``Retina.retina``) whitens without it.

    Args:
        size: the image size in pixels (even).
        alpha, f_0, steepness: SLIP's white_alpha, white_f_0, white_steepness.
    """

    def __init__(self, size: int = 128, alpha: float = 1.4, f_0: float = 0.4, steepness: float = 4.0) -> None:
        super().__init__()
        self.size = size
        # stored in fft2 order: fftshift, multiply by the centred K, ifftshift == multiply by ifftshift(K)
        kernel = torch.fft.ifftshift(whitening_filter(size, alpha, f_0, steepness))
        self.register_buffer("kernel", kernel, persistent=False)

    def forward(self, image: Tensor, recentre: bool = True) -> Tensor:
        if image.shape[-2:] != (self.size, self.size):
            got = tuple(image.shape[-2:])
            raise ValueError(f"Whitening expects {self.size}x{self.size} images, got {got}")
        kernel = self.kernel.to(torch.float64 if image.dtype == torch.float64 else torch.float32)
        white = torch.fft.ifft2(torch.fft.fft2(image) * kernel).real
        return (white + 0.5).clamp(0.0, 1.0) if recentre else white
