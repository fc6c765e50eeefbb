"""The reference 28x28 noisy-shift dataset as a pure, batched, seeded generator (whatwhere.md 1.2).

A digit is shifted inside its own 28x28 frame (zero fill) by per-axis Gaussian offsets, given a contrast,
and mixed opaquely over a 28x28 MotionClouds texture.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from stn_fovea.data.mixing import opaque_max_mix, sample_contrast
from stn_fovea.data.noise import motion_cloud_noise
from stn_fovea.data.placement import sample_gaussian_shifts, translate
from stn_fovea.data.recipe import NoisyRecipe, Scene
from stn_fovea.errors import ConfigError

DIGIT_SIZE = 28


@dataclass(frozen=True)
class ShiftedDigits(NoisyRecipe):
    """Recipe of the 28x28 dataset. Every field is visible in ``conf/data/mnist28.yaml``.

    Attributes:
        shift_std_px: std of the per-axis Gaussian shift, pixels (the curriculum level).
        shift_max_px: shifts are clipped to +-shift_max_px (25 in the reference code).
        The other fields are :class:`NoisyRecipe`'s; ``size`` must be 28 (the digit's own frame).
    """

    shift_std_px: float = 0.0
    shift_max_px: int = 25

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.size != DIGIT_SIZE:
            raise ConfigError(
                f"the shifted-digit images are the digit's own 28 px frame, got size={self.size}"
            )
        if self.shift_std_px < 0:
            raise ConfigError(
                f"shift_std_px must be >= 0 pixels, got {self.shift_std_px} (check data.shift_std_px "
                "and the curriculum stages)"
            )
        if not 0 <= self.shift_max_px < DIGIT_SIZE:
            raise ConfigError(f"shift_max_px must be in [0, 27] pixels, got {self.shift_max_px}")

    def sample(self, keys: Tensor) -> Scene:
        shifts = sample_gaussian_shifts(keys, self.shift_std_px, self.shift_max_px)
        return Scene(keys, shifts, sample_contrast(keys, *self.contrast))

    def render(self, digits: Tensor, scene: Scene) -> Tensor:
        """Shift each digit by ``scene.shifts`` (zero fill), mix it over its noise at its contrast."""
        digits = digits.to(torch.float32)
        noise = motion_cloud_noise(scene.keys, digits.shape[-1], self.sf_0, self.B_sf)
        images = opaque_max_mix(translate(digits, scene.shifts), noise, scene.contrast, self.noise)
        if self.quantize:
            images = torch.floor(images * 255.0) / 255.0
        return images.unsqueeze(1)
