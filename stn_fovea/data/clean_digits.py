"""Clean MNIST, 28x28 (the PyTorch STN tutorial's setting), with optional random-affine jitter.

No noise and no shift: the digit as MNIST stores it, scaled to [0, 1], optionally jittered by a random
affine transform per sample (STN_challenge's training augmentation, torchvision's ``RandomAffine``
drawn per sample), then optionally standardised (the tutorial's ``Normalize(0.1307, 0.3081)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from stn_fovea.data.augment import sample_affine, scale_range, warp_affine
from stn_fovea.data.recipe import Recipe, Scene
from stn_fovea.errors import ConfigError

DIGIT_SIZE = 28


@dataclass(frozen=True)
class CleanDigits(Recipe):
    """Recipe of clean MNIST. Every field is visible in ``conf/data/mnist.yaml``.

    Attributes:
        augment: jitter every image by its own random affine transform (nearest reads, 0 outside, as
            ``RandomAffine`` on a PIL image); the data config turns it off for validation and test.
        degrees: rotation drawn from U(-degrees, degrees).
        translate: translation drawn from U(-t, t) x 28 px on each axis, rounded to pixels.
        scale: (low, high) of the uniform scale draw.
        shear_deg: x shear drawn from U(-shear_deg, shear_deg) degrees (STN_challenge passes 0.15,
            which torchvision reads as degrees).
        mean, std: standardise the images, ``(image - mean) / std``; std null leaves them in [0, 1].
    """

    augment: bool = False
    degrees: float = 15.0
    translate: float = 0.1
    scale: tuple[float, float] = (0.85, 1.15)
    shear_deg: float = 0.15
    mean: float = 0.1307
    std: float | None = 0.3081

    def __post_init__(self) -> None:
        if self.size != DIGIT_SIZE:
            raise ConfigError(f"clean MNIST images are the digit's own 28 px frame, got size={self.size}")
        object.__setattr__(self, "scale", scale_range(self.scale))
        if self.degrees < 0 or self.shear_deg < 0 or not 0 <= self.translate <= 1:
            raise ConfigError(
                f"need degrees >= 0, shear_deg >= 0 and 0 <= translate <= 1, got degrees={self.degrees}, "
                f"shear_deg={self.shear_deg}, translate={self.translate}"
            )
        if self.std is not None and self.std <= 0:
            raise ConfigError(f"std must be > 0 (or null for images in [0, 1]), got {self.std}")

    def sample(self, keys: Tensor) -> Scene:
        """The scene: no offset (an affine jitter's translation is reported as the offset, rows and
        cols), and full contrast."""
        shifts = torch.zeros(len(keys), 2, dtype=torch.int64, device=keys.device)
        if self.augment:
            params = sample_affine(keys, self.size, self.degrees, self.translate, self.scale, self.shear_deg)
            shifts = params.translate.flip(-1).to(torch.int64)
        return Scene(keys, shifts, torch.ones(len(keys), device=keys.device))

    def render(self, digits: Tensor, scene: Scene) -> Tensor:
        """The images of ``scene.keys``; the jitter is drawn again from the keys, so a scene whose
        shifts were replaced renders as drawn (clean MNIST has no shift evaluator)."""
        images = digits.to(torch.float32).unsqueeze(1) / 255.0
        if self.augment:
            params = sample_affine(
                scene.keys, self.size, self.degrees, self.translate, self.scale, self.shear_deg
            )
            images = warp_affine(images, params)
        if self.std is not None:
            images = (images - self.mean) / self.std
        return images
