"""The reference 28x28 noisy-shift dataset as a pure, batched, seeded generator (whatwhere.md 1.2).

A digit is shifted inside its own 28x28 frame (zero fill) by per-axis Gaussian offsets, given a contrast,
and mixed opaquely over a 28x28 MotionClouds texture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from stn_fovea.data.mixing import opaque_max_mix, sample_contrast
from stn_fovea.data.noise import motion_cloud_noise
from stn_fovea.data.placement import sample_gaussian_shifts, translate
from stn_fovea.data.recipe import NoisyBatch, check_noise, contrast_range, with_level
from stn_fovea.errors import ConfigError


@dataclass(frozen=True)
class ShiftedDigits:
    """Recipe of the 28x28 dataset. Every field is visible in ``conf/data/mnist28.yaml``.

    Attributes:
        shift_std_px: std of the per-axis Gaussian shift, pixels (the curriculum level).
        shift_max_px: shifts are clipped to +-shift_max_px (25 in the reference code).
        contrast: (low, high) of the uniform contrast draw; equal values give a fixed contrast.
        noise: noise amplitude (0.75 in the STN study, 1.0 in the What/Where paper).
        sf_0, B_sf: MotionClouds envelope, cycles/pixel.
        quantize: round down to 1/255 steps as the reference's uint8 conversion does.
    """

    shift_std_px: float = 0.0
    shift_max_px: int = 25
    contrast: float | tuple[float, float] = (0.3, 0.7)  # normalised to (low, high)
    noise: float = 0.75
    sf_0: float = 0.1
    B_sf: float = 0.1
    quantize: bool = True

    def __post_init__(self) -> None:
        if self.shift_std_px < 0:
            raise ConfigError(
                f"shift_std_px must be >= 0 pixels, got {self.shift_std_px} (check data.shift_std_px "
                "and the curriculum stages)"
            )
        if not 0 <= self.shift_max_px < 28:
            raise ConfigError(f"shift_max_px must be in [0, 27] pixels, got {self.shift_max_px}")
        object.__setattr__(self, "contrast", contrast_range(self.contrast))
        check_noise(self.noise, self.sf_0, self.B_sf)

    @property
    def image_size(self) -> int:
        """Side of the rendered images in pixels."""
        return 28

    @property
    def level(self) -> tuple[float, ...]:
        """The curriculum level that identifies a draw (it enters every sample's key)."""
        return (float(self.shift_std_px),)

    def with_level(self, **changes: Any) -> ShiftedDigits:
        """A copy with some fields changed (a curriculum stage); unknown names are a ConfigError."""
        return with_level(self, **changes)

    def __call__(self, digits: Tensor, keys: Tensor, shifts: Tensor | None = None) -> NoisyBatch:
        """Render a batch.

        Args:
            digits: (B, 28, 28) MNIST digits, uint8 or float.
            keys: (B,) int64 sample keys (see ``counter_rng.sample_keys``).
            shifts: optional (B, 2) fixed (rows, cols) shifts; drawn from the recipe when omitted.
        """
        digits = digits.to(torch.float32)
        if shifts is None:
            shifts = sample_gaussian_shifts(keys, self.shift_std_px, self.shift_max_px)
        contrast = sample_contrast(keys, *self.contrast)
        noise = motion_cloud_noise(keys, digits.shape[-1], self.sf_0, self.B_sf)
        images = opaque_max_mix(translate(digits, shifts), noise, contrast, self.noise)
        if self.quantize:
            images = torch.floor(images * 255.0) / 255.0
        return NoisyBatch(images.unsqueeze(1), shifts, contrast)
