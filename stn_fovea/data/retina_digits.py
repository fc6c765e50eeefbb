"""The reference 128x128 "retina" dataset as a pure, batched, seeded generator (whatwhere.md 1.3).

RetinaFill -> WhereShift -> RetinaBackground -> RetinaMask: the 28x28 digit is pasted at the centre of
a zero canvas, the canvas is shifted to a radius (eccentricity) at a uniform angle, the digit is mixed
opaquely over a MotionClouds texture at its contrast, and the whole image is min-max normalised and
masked by a disc of radius 64 px with 0.5 outside.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from stn_fovea.data.mask import retina_mask
from stn_fovea.data.mixing import paste_opaque, sample_contrast
from stn_fovea.data.noise import motion_cloud_noise
from stn_fovea.data.placement import sample_radial_shifts
from stn_fovea.data.recipe import NoisyRecipe, Scene
from stn_fovea.errors import ConfigError

DIGIT_SIZE = 28


@dataclass(frozen=True)
class RetinaDigits(NoisyRecipe):
    """Recipe of the 128x128 dataset. Every field is visible in ``conf/data/mnist128.yaml``.

    Attributes:
        eccentricity_std_px: std of the half-normal radius of the digit centre (the curriculum level).
        eccentricity_max_px: radius clip (40 in the STN study, so the digit stays inside the disc).
        radius_px: a fixed radius with a random angle (the test protocol); None = drawn.
        mask: apply the reference's min-max renormalisation and disc mask (0.5 outside).
        spectral_noise: draw the noise spectrum directly (same statistics, ~3x faster on CPU).
        The other fields are :class:`NoisyRecipe`'s: the STN study's training stages use a contrast
        U(c, 0.7) ("flexible"), its tests a fixed c; the reference keeps float images (no quantize).
    """

    size: int = 128
    contrast: float | tuple[float, float] = 0.7
    quantize: bool = False
    eccentricity_std_px: float = 40.0
    eccentricity_max_px: float = 40.0
    radius_px: float | None = None
    mask: bool = True
    spectral_noise: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.size < DIGIT_SIZE:
            raise ConfigError(f"size must be at least the digit's 28 px, got {self.size}")
        limit = (self.size - DIGIT_SIZE) / 2
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

    def sample(self, keys: Tensor) -> Scene:
        shifts = sample_radial_shifts(
            keys, self.eccentricity_std_px, self.eccentricity_max_px, self.radius_px
        )
        return Scene(keys, shifts, sample_contrast(keys, *self.contrast))

    def render(self, digits: Tensor, scene: Scene) -> Tensor:
        """Paste each digit with its centre at ``scene.shifts`` from the image centre, over its noise."""
        if digits.shape[-2:] != (DIGIT_SIZE, DIGIT_SIZE):
            raise ValueError(f"expected (B, 28, 28) digits, got {tuple(digits.shape)}")
        background = motion_cloud_noise(
            scene.keys, self.size, self.sf_0, self.B_sf, spectral=self.spectral_noise, amplitude=self.noise
        )
        # RetinaFill puts the digit at rows/cols 50:78 of 128; the shift moves that window.
        top_left = scene.shifts.to(background.device) + (self.size - DIGIT_SIZE) // 2
        images = paste_opaque(background, digits, top_left, scene.contrast)
        if self.mask:
            images = retina_mask(images)
        if self.quantize:
            images = torch.floor(images * 255.0) / 255.0
        return images.unsqueeze(1)
