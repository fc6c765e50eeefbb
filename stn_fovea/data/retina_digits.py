"""The reference 128x128 "retina" dataset as a pure, batched, seeded generator (whatwhere.md 1.3).

RetinaFill -> WhereShift -> RetinaBackground -> RetinaMask: the 28x28 digit is pasted at the centre of
a zero canvas, the canvas is shifted to a radius (eccentricity) at a uniform angle, the digit is mixed
opaquely over a MotionClouds texture at its contrast, and the whole image is min-max normalised and
masked by a disc of radius 64 px with 0.5 outside.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from stn_fovea.data.mask import retina_mask
from stn_fovea.data.mixing import paste_opaque, sample_contrast
from stn_fovea.data.noise import motion_cloud_noise
from stn_fovea.data.placement import sample_radial_shifts
from stn_fovea.data.recipe import NoisyBatch, check_noise, contrast_range, with_level
from stn_fovea.errors import ConfigError

FIXED_RADIUS_NONE = -1.0  # key code of "radius drawn", distinct from every fixed radius


@dataclass(frozen=True)
class RetinaDigits:
    """Recipe of the 128x128 dataset. Every field is visible in ``conf/data/mnist128.yaml``.

    Attributes:
        size: image side in pixels (128).
        eccentricity_std_px: std of the half-normal radius of the digit centre (the curriculum level).
        eccentricity_max_px: radius clip (40 in the STN study, so the digit stays inside the disc).
        radius_px: a fixed radius with a random angle (the test protocol); None = drawn.
        contrast: (low, high) of the uniform contrast draw; the STN study's training stages use
            U(c, 0.7) ("flexible"), its tests a fixed c.
        noise: noise amplitude (0.75 in the STN study).
        sf_0, B_sf: MotionClouds envelope, cycles/pixel.
        mask: apply the reference's min-max renormalisation and disc mask (0.5 outside).
        quantize: round down to 1/255 steps (the reference keeps float images: off).
        spectral_noise: draw the noise spectrum directly (same statistics, ~3x faster on CPU).
    """

    size: int = 128
    eccentricity_std_px: float = 40.0
    eccentricity_max_px: float = 40.0
    radius_px: float | None = None
    contrast: float | tuple[float, float] = 0.7  # normalised to (low, high)
    noise: float = 0.75
    sf_0: float = 0.1
    B_sf: float = 0.1
    mask: bool = True
    quantize: bool = False
    spectral_noise: bool = True

    def __post_init__(self) -> None:
        if self.size < 28:
            raise ConfigError(f"size must be at least the digit's 28 px, got {self.size}")
        limit = (self.size - 28) / 2
        if self.eccentricity_std_px < 0:
            raise ConfigError(
                f"eccentricity_std_px must be >= 0 pixels, got {self.eccentricity_std_px} (check "
                "data.eccentricity_std_px and the curriculum stages)"
            )
        for name in ("eccentricity_max_px", "radius_px"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= limit:
                raise ConfigError(
                    f"{name} must be in [0, {limit:g}] px so that the digit stays in the {self.size} px "
                    f"image, got {value}"
                )
        object.__setattr__(self, "contrast", contrast_range(self.contrast))
        check_noise(self.noise, self.sf_0, self.B_sf)

    @property
    def image_size(self) -> int:
        """Side of the rendered images in pixels."""
        return self.size

    @property
    def level(self) -> tuple[float, ...]:
        """The parameters that identify a draw (they enter every sample's key)."""
        radius = FIXED_RADIUS_NONE if self.radius_px is None else float(self.radius_px)
        low, high = self.contrast  # type: ignore[misc]
        return (float(self.eccentricity_std_px), radius, low, high)

    def with_level(self, **changes: Any) -> RetinaDigits:
        """A copy with some fields changed (a curriculum stage); unknown names are a ConfigError."""
        return with_level(self, **changes)

    def __call__(self, digits: Tensor, keys: Tensor, shifts: Tensor | None = None) -> NoisyBatch:
        """Render a batch.

        Args:
            digits: (B, 28, 28) MNIST digits, uint8 or float.
            keys: (B,) int64 sample keys (see ``counter_rng.sample_keys``).
            shifts: optional (B, 2) fixed (rows, cols) offsets of the digit centre from the image
                centre; drawn from the recipe when omitted.
        Returns:
            images (B, 1, size, size); ``shifts`` are the digit centre's offsets in pixels.
        """
        if digits.shape[-2:] != (28, 28):
            raise ValueError(f"expected (B, 28, 28) digits, got {tuple(digits.shape)}")
        if shifts is None:
            shifts = sample_radial_shifts(
                keys, self.eccentricity_std_px, self.eccentricity_max_px, self.radius_px
            )
        contrast = sample_contrast(keys, *self.contrast)
        background = motion_cloud_noise(
            keys, self.size, self.sf_0, self.B_sf, spectral=self.spectral_noise, amplitude=self.noise
        )
        # RetinaFill puts the digit at rows/cols 50:78 of 128; the shift moves that window.
        top_left = shifts.to(background.device) + (self.size - 28) // 2
        images = paste_opaque(background, digits, top_left, contrast)
        if self.mask:
            images = retina_mask(images)
        if self.quantize:
            images = torch.floor(images * 255.0) / 255.0
        return NoisyBatch(images.unsqueeze(1), shifts, contrast)
