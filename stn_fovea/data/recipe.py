"""What every dataset recipe shares: the scene it samples, the batch it returns, stage changes.

A recipe is a frozen dataclass whose fields are the dataset's parameters. It works in two steps:
``sample(keys)`` draws a :class:`Scene` (where each digit goes, its contrast, the noise key) from
per-sample keys, and ``render(digits, scene)`` turns a scene into images. Calling the recipe does
both. Splitting them lets an evaluation render the same scene with one draw changed (a fixed shift, a
new gaze) without touching the others. ``level`` names the draw: it enters every sample's key, so two
curriculum stages never share samples.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, TypeVar

from torch import Tensor

from stn_fovea.errors import ConfigError

R = TypeVar("R", bound="Recipe")
NONE_CODE = -1.0  # key code of a field set to None (e.g. "radius drawn")


class Scene(NamedTuple):
    """The random draws of a batch: sample keys (B,) int64 (they also seed the noise field), the digit
    offsets (B, 2) int64 as (rows, cols) in pixels, and the contrasts (B,)."""

    keys: Tensor
    shifts: Tensor
    contrast: Tensor


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


def check_noise(noise: float, sf_0: float, B_sf: float) -> None:
    """Raise a ConfigError for a negative amplitude or an impossible MotionClouds envelope."""
    if noise < 0:
        raise ConfigError(f"noise amplitude must be >= 0, got {noise}")
    if not 0 < sf_0 <= 0.5 or B_sf <= 0:
        raise ConfigError(f"need 0 < sf_0 <= 0.5 and B_sf > 0, got sf_0={sf_0}, B_sf={B_sf}")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Base of every recipe: the image size, the level of a draw, and the two steps.

    Attributes:
        size: image side in pixels.

    A recipe without noise (clean MNIST) reads as noise amplitude 0 and contrast 1 through the
    ``noise`` and ``contrast`` attributes that :class:`NoisyRecipe` makes fields.
    """

    size: int = 28

    @property
    def noise(self) -> float:
        return 0.0

    @property
    def contrast(self) -> tuple[float, float]:
        return (1.0, 1.0)

    @property
    def image_size(self) -> int:
        """Side of the rendered images in pixels."""
        return self.size

    @property
    def level(self) -> tuple[float, ...]:
        """Every field's value, as the numbers that identify a draw (they enter every sample's key):
        two recipes that differ in any field (a curriculum stage that changes only the contrast or the
        noise) never share samples. A field set to None is coded -1."""
        parts: list[float] = []
        for field in dataclasses.fields(self):
            if not field.metadata.get("level", True):
                continue  # not a parameter of the draw (a bound pool of images)
            value = getattr(self, field.name)
            if value is None:
                parts.append(NONE_CODE)
            elif isinstance(value, tuple):
                parts.extend(float(item) for item in value)
            else:
                parts.append(float(value))
        return tuple(parts)

    def with_level(self: R, **changes: Any) -> R:
        """A copy with some fields changed (a curriculum stage); unknown names are a ConfigError."""
        known = {field.name for field in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ConfigError(f"unknown dataset parameter(s) {unknown}; known: {sorted(known)}")
        return dataclasses.replace(self, **changes)

    def bind(self: R, pool: Tensor) -> R:
        """This recipe with the MNIST training digits (N, 28, 28) at hand, for a recipe that draws from
        them (clutter); the datamodule binds every recipe when it loads MNIST."""
        return self

    def sample(self, keys: Tensor) -> Scene:
        """Draw the scene of every sample from its key (B,)."""
        raise NotImplementedError

    def render(self, digits: Tensor, scene: Scene) -> Tensor:
        """Images (B, 1, size, size) of (B, 28, 28) digits (uint8 or float) placed as ``scene`` says."""
        raise NotImplementedError

    def __call__(self, digits: Tensor, keys: Tensor) -> NoisyBatch:
        """Sample and render a batch from (B, 28, 28) digits and (B,) int64 sample keys."""
        scene = self.sample(keys)
        return NoisyBatch(self.render(digits, scene), scene.shifts, scene.contrast)


@dataclasses.dataclass(frozen=True)
class NoisyRecipe(Recipe):
    """Base of the noisy-digit recipes: a digit at a contrast over band-pass MotionClouds noise.

    Attributes:
        contrast: (low, high) of the uniform contrast draw; equal values give a fixed contrast (a
            number in the config means fixed).
        noise: noise amplitude (0.75 in the STN study, 1.0 in the What/Where paper).
        sf_0, B_sf: MotionClouds envelope, cycles/pixel.
        quantize: round down to 1/255 steps, as a uint8 image would be.
    """

    contrast: float | tuple[float, float] = (0.3, 0.7)  # type: ignore[assignment]  # normalised to (low, high)
    noise: float = 0.75  # type: ignore[assignment]
    sf_0: float = 0.1
    B_sf: float = 0.1
    quantize: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "contrast", contrast_range(self.contrast))
        check_noise(self.noise, self.sf_0, self.B_sf)
