"""What every dataset recipe shares: the batch it returns, contrast settings, stage changes.

A recipe is a frozen dataclass whose fields are the dataset's parameters and whose ``__call__`` renders
a batch from raw digits and per-sample keys. ``level`` names the draw: it enters every sample's key, so
two curriculum stages never share samples.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, TypeVar

from torch import Tensor

from stn_fovea.errors import ConfigError

R = TypeVar("R")


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


def with_level(recipe: R, **changes: Any) -> R:
    """A copy of a recipe with some fields changed (a curriculum stage); unknown names are a ConfigError."""
    known = {field.name for field in dataclasses.fields(recipe)}  # type: ignore[arg-type]
    unknown = sorted(set(changes) - known)
    if unknown:
        raise ConfigError(f"unknown dataset parameter(s) {unknown}; known: {sorted(known)}")
    return dataclasses.replace(recipe, **changes)  # type: ignore[type-var]
