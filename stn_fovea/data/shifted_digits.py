"""The reference 28x28 noisy-shift dataset as a pure, batched, seeded generator (whatwhere.md 1.2).

A digit is shifted inside its own 28x28 frame (zero fill) by per-axis Gaussian offsets, given a contrast,
and mixed opaquely over a 28x28 MotionClouds texture.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor

from stn_fovea.data.mixing import opaque_max_mix, sample_contrast
from stn_fovea.data.noise import motion_cloud_noise
from stn_fovea.data.placement import sample_gaussian_shifts, translate
from stn_fovea.errors import ConfigError


class NoisyBatch(NamedTuple):
    """Generated images (B, 1, H, W) in [0, 1], the integer shifts (B, 2) and contrasts (B,) used."""

    images: Tensor
    shifts: Tensor
    contrast: Tensor


def contrast_range(contrast: float | tuple[float, float] | list[float]) -> tuple[float, float]:
    """Read a contrast setting: a number means fixed, a pair [low, high] means U(low, high)."""
    if isinstance(contrast, (int, float)):
        low = high = float(contrast)
    else:
        values = [float(value) for value in contrast]
        if len(values) != 2:
            raise ConfigError(f"contrast must be a number or a pair [low, high], got {contrast}")
        low, high = values
    if not (0.0 < low <= 1.0 and 0.0 < high <= 1.0):
        raise ConfigError(
            f"contrast must lie in (0, 1], got {contrast}. Use e.g. data.contrast=0.7 (fixed) or "
            "data.contrast=[0.3,0.7] (drawn uniformly)."
        )
    if low > high:
        raise ConfigError(f"contrast range [low, high] needs low <= high, got {contrast}")
    return low, high


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
        if self.noise < 0:
            raise ConfigError(f"noise amplitude must be >= 0, got {self.noise}")
        if not 0 < self.sf_0 <= 0.5 or self.B_sf <= 0:
            raise ConfigError(f"need 0 < sf_0 <= 0.5 and B_sf > 0, got sf_0={self.sf_0}, B_sf={self.B_sf}")

    @property
    def level(self) -> float:
        """The curriculum level that identifies a draw (it enters every sample's key)."""
        return float(self.shift_std_px)

    def with_level(self, **changes: Any) -> ShiftedDigits:
        """A copy with some fields changed (a curriculum stage); unknown names are a ConfigError."""
        known = {field.name for field in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ConfigError(f"unknown dataset parameter(s) {unknown}; known: {sorted(known)}")
        return dataclasses.replace(self, **changes)

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
