"""The cells of the STN study's benchmark grid (fixed eccentricities x fixed contrasts) and the
accuracy and gaze a model measures in them; :mod:`eccentricity_grid` writes them out."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from rich.progress import Progress
from torch import Tensor

from stn_fovea.data.counter_rng import sample_keys
from stn_fovea.data.mnist import Digits, spread_subset
from stn_fovea.data.recipe import Recipe
from stn_fovea.evaluation.evaluator import Reading, read_batch, read_saccades
from stn_fovea.models.module import GlimpseModule


def grid_eccentricities(count: int = 9, max_px: float = 40.0) -> list[float]:
    """The reference grid of radii: max * k / count for k = 1..count (4.44, 8.89, ..., 40 px)."""
    return [max_px * k / count for k in range(1, count + 1)]


class GridResult(NamedTuple):
    """(len(contrasts), len(eccentricities)) float64 tensors on the CPU; row = contrast.

    Attributes:
        accuracy: the fraction of digits named right.
        gaze_error_px: mean distance from the centre of the last glimpse's window to the digit's centre
            (NaN for a model whose glimpse is not a window).
        gaze_toward: mean of how far the glimpse went towards the digit: the projection of its offset
            from the image centre on the digit's offset, over the digit's radius squared; 0 = it stayed
            at the centre, 1 = on the digit (NaN at radius 0 or without windows).
    """

    accuracy: Tensor
    gaze_error_px: Tensor
    gaze_toward: Tensor


@dataclass
class GazeSums:
    """Running sums of where a model looked, over the batches of one grid cell (see :class:`GridResult`)."""

    error: float = 0.0
    toward: float = 0.0
    digits: int = 0
    off_centre: int = 0  # digits not at the centre: the ones with a direction to go

    def add(self, reading: Reading) -> None:
        if reading.gaze is None:
            return  # the model's glimpse is not a window
        self.error += float((reading.gaze - reading.digit).norm(dim=1).sum())
        squared = (reading.digit**2).sum(dim=1)
        moved = squared > 0
        self.toward += float(((reading.gaze * reading.digit).sum(dim=1)[moved] / squared[moved]).sum())
        self.digits += len(reading.digit)
        self.off_centre += int(moved.sum())

    def means(self) -> tuple[float, float]:
        """(mean gaze error in px, mean share of the way towards the digit); NaN where undefined."""
        error = self.error / self.digits if self.digits else math.nan
        toward = self.toward / self.off_centre if self.off_centre else math.nan
        return error, toward


# (cell recipe, digit index, the cell's noise keys, the digits' own draw keys) -> readings
Reader = Callable[[Recipe, Tensor, Tensor, Tensor], list[Reading]]


@dataclass(frozen=True)
class GridCells:
    """The images of the STN study's benchmark grid (whatwhere.md 5.4): cell (c, e) renders
    ``digits_per_cell`` test digits (all when None; a subset drawn with the seed from the whole set, the
    same for every cell) at the fixed radius e with a random angle and the fixed contrast c, in batches
    of ``batch_size``. As in the reference (whatwhere.md 5.3, 9.6), a test digit keeps its angle in every
    cell: its draws are keyed by (seed, "test", "grid", index), and each cell's noise by (seed, "test",
    "grid", c, e, index). The cells are the same for every model and run."""

    recipe: Recipe
    digits: Digits
    seed: int
    eccentricities_px: Sequence[float]
    contrasts: Sequence[float]
    digits_per_cell: int | None = None
    batch_size: int = 500


def _grid(read: Reader, readings: int, cells: GridCells, progress: Progress | None) -> list[GridResult]:
    """The grid loop: ``readings`` results (one per reading ``read`` returns for each batch)."""
    total = len(cells.digits.labels)
    count = total if cells.digits_per_cell is None else min(cells.digits_per_cell, total)
    chosen = spread_subset(total, count, cells.seed)
    shape = (readings, len(cells.contrasts), len(cells.eccentricities_px))
    accuracy = torch.zeros(shape, dtype=torch.float64)
    gaze_error = torch.full(shape, float("nan"), dtype=torch.float64)
    gaze_toward = torch.full(shape, float("nan"), dtype=torch.float64)
    task = progress.add_task("eccentricity grid", total=shape[1] * shape[2] * count) if progress else None
    for row, contrast in enumerate(cells.contrasts):
        for col, radius in enumerate(cells.eccentricities_px):
            cell = cells.recipe.with_level(radius_px=float(radius), contrast=float(contrast))
            correct, gazes = [0] * readings, [GazeSums() for _ in range(readings)]
            for start in range(0, count, cells.batch_size):
                index = chosen[start : start + cells.batch_size]
                keys = sample_keys(index, cells.seed, "test", "grid", float(contrast), float(radius))
                draws = sample_keys(index, cells.seed, "test", "grid")
                for k, reading in enumerate(read(cell, index, keys, draws)):
                    correct[k] += int(reading.correct.sum())
                    gazes[k].add(reading)
                if progress is not None and task is not None:
                    progress.advance(task, len(index))
            for k in range(readings):
                accuracy[k, row, col] = correct[k] / count
                gaze_error[k, row, col], gaze_toward[k, row, col] = gazes[k].means()
    return [GridResult(accuracy[k], gaze_error[k], gaze_toward[k]) for k in range(readings)]


def eccentricity_grid_accuracy(
    module: GlimpseModule, cells: GridCells, progress: Progress | None = None
) -> GridResult:
    """Accuracy and gaze of ``module`` in every (contrast, eccentricity) cell."""

    def read(cell: Recipe, index: Tensor, keys: Tensor, draws: Tensor) -> list[Reading]:
        return [read_batch(module, cell, cells.digits, index, keys, draws=draws)]

    return _grid(read, 1, cells, progress)[0]


def saccade_grid_accuracy(
    module: GlimpseModule, cells: GridCells, saccades: Sequence[int], progress: Progress | None = None
) -> dict[int, GridResult]:
    """The grid of :func:`eccentricity_grid_accuracy` after each number of saccades in ``saccades`` (a
    What/Where model), from one run of max(saccades) per digit: the cells of every k hold the same
    digits (the reference drew a new batch per cell, whatwhere.md 9.6)."""
    most = max(saccades)

    def read(cell: Recipe, index: Tensor, keys: Tensor, draws: Tensor) -> list[Reading]:
        readings = read_saccades(module, cell, cells.digits, index, keys, most, draws)
        return [readings[k] for k in saccades]

    return dict(zip(saccades, _grid(read, len(saccades), cells, progress), strict=True))
