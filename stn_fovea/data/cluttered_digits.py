"""Translated cluttered MNIST (Jaderberg et al. 2015, section 4.1): a digit at a random place of a 60x60
black canvas, with clutter: 6x6 crops of other MNIST digits added at random places (sums clipped at 1).

The clutter is cut from the MNIST training digits, as in luuf/stn-placement, whatever the split of the
digit: the datamodule binds them to the recipe (``Recipe.bind``). Which digit, which crop and where it
goes are drawn from the sample's key, so a test image is the same in every run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from stn_fovea.data.counter_rng import uniform
from stn_fovea.data.placement import translate
from stn_fovea.data.recipe import Recipe, Scene
from stn_fovea.errors import ConfigError

DIGIT_SIZE = 28
PLACE_STREAM = 13
CLUTTER_STREAM = 14


@dataclass(frozen=True)
class ClutteredDigits(Recipe):
    """Recipe of translated cluttered MNIST. Every field is visible in ``conf/data/cluttered60.yaml``.

    Attributes:
        size: canvas side (60 in the paper); the digit's 28x28 frame lies wholly inside it.
        pieces: clutter pieces per image.
        piece_size: side of each square clutter crop in pixels.
        pool: the digits the clutter is cut from (N, 28, 28) uint8, bound by the datamodule.
    """

    size: int = 60
    pieces: int = 6
    piece_size: int = 6
    pool: Tensor | None = dataclasses.field(
        default=None,
        repr=False,
        compare=False,
        metadata={"level": False},  # not a parameter of the draw
    )

    def __post_init__(self) -> None:
        if self.size < DIGIT_SIZE or (self.size - DIGIT_SIZE) % 2:
            raise ConfigError(f"size={self.size} must be >= 28 and exceed 28 by an even number of pixels")
        if self.pieces < 0 or not 0 < self.piece_size <= DIGIT_SIZE:
            raise ConfigError(
                f"need pieces >= 0 and 0 < piece_size <= 28, got pieces={self.pieces}, "
                f"piece_size={self.piece_size}"
            )

    def bind(self, pool: Tensor) -> ClutteredDigits:
        return dataclasses.replace(self, pool=pool)

    def sample(self, keys: Tensor) -> Scene:
        """The digit's offset from the canvas centre (rows, cols), uniform over the places where its
        frame fits; full contrast."""
        room = (self.size - DIGIT_SIZE) // 2
        u = uniform(keys, PLACE_STREAM, 2)
        shifts = torch.floor(u * (2 * room + 1)).to(torch.int64) - room
        return Scene(keys, shifts, torch.ones(len(keys), device=keys.device))

    def render(self, digits: Tensor, scene: Scene) -> Tensor:
        pad = (self.size - DIGIT_SIZE) // 2
        canvas = translate(F.pad(digits.to(torch.float32) / 255.0, (pad, pad, pad, pad)), scene.shifts)
        if self.pieces:
            canvas = (canvas + self.clutter(scene.keys)).clamp(max=1.0)
        return canvas.unsqueeze(1)

    def clutter(self, keys: Tensor) -> Tensor:
        """(B, size, size): the sum of every sample's clutter pieces."""
        if self.pool is None:
            raise ConfigError("the cluttered recipe has no digits to cut clutter from: bind it (Recipe.bind)")
        batch, side, crop = len(keys), self.size, self.piece_size
        u = uniform(keys, CLUTTER_STREAM, 5 * self.pieces).view(batch, self.pieces, 5).cpu()
        source = torch.floor(u[..., 0] * len(self.pool)).long()  # which digit
        corner = torch.floor(u[..., 1:3] * (DIGIT_SIZE - crop + 1)).long()  # where in it
        place = torch.floor(u[..., 3:5] * (side - crop + 1)).long()  # where on the canvas
        steps = torch.arange(crop)
        rows = (corner[..., :1] + steps).unsqueeze(-1)  # (B, P, crop, 1)
        cols = (corner[..., 1:] + steps).unsqueeze(-2)  # (B, P, 1, crop)
        crops = self.pool[source.unsqueeze(-1).unsqueeze(-1), rows, cols].to(torch.float32) / 255.0
        canvas = torch.zeros(batch, side, side)
        index = torch.arange(batch).view(batch, 1, 1, 1)
        canvas.index_put_(
            (index, (place[..., :1] + steps).unsqueeze(-1), (place[..., 1:] + steps).unsqueeze(-2)),
            crops,
            accumulate=True,
        )
        return canvas.to(keys.device)
