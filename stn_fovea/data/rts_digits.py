"""Rotated, translated and scaled MNIST (RTS; Jaderberg et al. 2015, section 4.1).

Each digit is rotated by U(-45, 45) degrees and scaled by U(0.7, 1.2) about its centre, and placed at a
random position of a 42x42 black canvas where the scaled 28x28 frame stays inside.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from stn_fovea.data.augment import AffineParams, scale_range, warp_affine
from stn_fovea.data.counter_rng import uniform
from stn_fovea.data.recipe import Recipe, Scene
from stn_fovea.errors import ConfigError

DIGIT_SIZE = 28
RTS_STREAM = 12


@dataclass(frozen=True)
class RotatedScaledDigits(Recipe):
    """Recipe of RTS MNIST. Every field is visible in ``conf/data/rts.yaml``.

    Attributes:
        size: canvas side (42 in the paper).
        degrees: rotation drawn from U(-degrees, degrees).
        scale: (low, high) of the uniform scale draw.
    """

    size: int = 42
    degrees: float = 45.0
    scale: tuple[float, float] = (0.7, 1.2)

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", scale_range(self.scale))
        if self.size < DIGIT_SIZE * self.scale[1] or (self.size - DIGIT_SIZE) % 2:
            raise ConfigError(
                f"size={self.size} must hold the digit's frame at the largest scale ({DIGIT_SIZE} x "
                f"{self.scale[1]} px) and exceed 28 by an even number of pixels"
            )
        if self.degrees < 0:
            raise ConfigError(f"degrees must be >= 0, got {self.degrees}")

    def params(self, keys: Tensor) -> AffineParams:
        """Each sample's rotation, scale and translation (x, y) in pixels, the scaled frame inside."""
        u = uniform(keys, RTS_STREAM, 4)
        low, high = self.scale
        scale = low + (high - low) * u[:, 1]
        room = (self.size - DIGIT_SIZE * scale) / 2  # how far the frame's centre can move either way
        return AffineParams(
            angle=(2.0 * u[:, 0] - 1.0) * self.degrees,
            translate=(2.0 * u[:, 2:4] - 1.0) * room.unsqueeze(1),
            scale=scale,
            shear=torch.zeros(len(keys), 2, device=keys.device),
        )

    def sample(self, keys: Tensor) -> Scene:
        """The digit's offset from the canvas centre, rounded to pixels (rows, cols); full contrast."""
        shifts = torch.round(self.params(keys).translate.flip(-1)).to(torch.int64)
        return Scene(keys, shifts, torch.ones(len(keys), device=keys.device))

    def render(self, digits: Tensor, scene: Scene) -> Tensor:
        pad = (self.size - DIGIT_SIZE) // 2
        canvas = F.pad(digits.to(torch.float32).unsqueeze(1) / 255.0, (pad, pad, pad, pad))
        return warp_affine(canvas, self.params(scene.keys), mode="bilinear").clamp(0.0, 1.0)
