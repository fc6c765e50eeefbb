"""Band-pass "MotionClouds" background noise, generated in batches with torch FFTs.

Reference: MotionClouds ``envelope_gabor(sf_0, B_sf, B_theta=inf, V_X=V_Y=B_V=0, alpha=0)`` on a single
frame, then ``random_cloud`` and Michelson ``rectif`` (whatwhere.md section 1.1). The envelope is the
isotropic log-Gabor radial band

    E(f) = (1 / f) * exp(-0.5 * ln(f / sf_0)^2 / ln((sf_0 + B_sf) / sf_0)^2),   E(0) = 0,

with f in cycles per pixel. MotionClouds multiplies the envelope by a complex field of Gaussian amplitude
and uniform phase and keeps the real part of the inverse FFT; we filter real white Gaussian noise by the
same envelope, which gives the same power spectrum E(f)^2 (checked against MotionClouds in the tests).
"""

from __future__ import annotations

import torch
from torch import Tensor

from stn_fovea.data.counter_rng import normal_fields

NOISE_STREAM = 3


def radial_frequency(size: int, device: torch.device | str | None = None) -> Tensor:
    """|f| in cycles/pixel on the ``rfft2`` grid of a ``size x size`` image, shape (size, size//2+1)."""
    fy = torch.fft.fftfreq(size, device=device).unsqueeze(1)
    fx = torch.fft.rfftfreq(size, device=device).unsqueeze(0)
    return torch.sqrt(fx**2 + fy**2)


def motion_cloud_envelope(
    size: int, sf_0: float = 0.1, B_sf: float = 0.1, device: torch.device | str | None = None
) -> Tensor:
    """The isotropic log-Gabor amplitude envelope on the ``rfft2`` grid; zero at DC.

    Args:
        size: image side in pixels.
        sf_0: peak spatial frequency in cycles/pixel (must be in (0, 0.5]).
        B_sf: bandwidth in cycles/pixel; the log-width of the band is ln((sf_0 + B_sf) / sf_0).
    """
    if not 0.0 < sf_0 <= 0.5:
        raise ValueError(f"sf_0 must be in (0, 0.5] cycles/pixel, got {sf_0}")
    if B_sf <= 0.0:
        raise ValueError(f"B_sf must be positive, got {B_sf}")
    f = radial_frequency(size, device)
    f_safe = torch.where(f > 0, f, torch.ones_like(f))
    log_width = torch.log(torch.tensor((sf_0 + B_sf) / sf_0))
    envelope = torch.exp(-0.5 * torch.log(f_safe / sf_0) ** 2 / log_width**2) / f_safe
    return torch.where(f > 0, envelope, torch.zeros_like(envelope))


def michelson_rectify(z: Tensor) -> Tensor:
    """Map each image of a batch (B, H, W) to [0, 1]: ``0.5 + 0.5 * (z - mean) / max|z - mean|``."""
    centred = z - z.mean(dim=(-2, -1), keepdim=True)
    peak = centred.abs().amax(dim=(-2, -1), keepdim=True).clamp_min(torch.finfo(z.dtype).tiny)
    return 0.5 + 0.5 * centred / peak


def motion_cloud_noise(keys: Tensor, size: int, sf_0: float = 0.1, B_sf: float = 0.1) -> Tensor:
    """One rectified noise texture per key, shape (B, size, size), values spanning exactly [0, 1].

    Each texture is a deterministic function of its key (see :mod:`stn_fovea.data.counter_rng`).
    """
    white = normal_fields(keys, NOISE_STREAM, (size, size))
    envelope = motion_cloud_envelope(size, sf_0, B_sf, device=white.device)
    texture = torch.fft.irfft2(torch.fft.rfft2(white) * envelope, s=(size, size))
    return michelson_rectify(texture)
