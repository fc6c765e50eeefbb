"""The 128x128 study's benchmark grid: accuracy at fixed eccentricities x fixed contrasts."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from rich.progress import Progress
from torch import Tensor

from stn_fovea.data.counter_rng import sample_keys
from stn_fovea.data.datamodule import NoisyMNIST
from stn_fovea.data.mnist import Digits, spread_subset
from stn_fovea.data.recipe import Recipe
from stn_fovea.errors import ConfigError
from stn_fovea.evaluation.evaluator import EvaluationContext, Reading, read_batch
from stn_fovea.evaluation.figures import plot_eccentricity_curves
from stn_fovea.evaluation.reference import (
    ECCENTRICITY_GRID_128,
    ECCENTRICITY_GRID_MEANS_128,
    GRID_ECCENTRICITIES_128,
)
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


def by_contrast(contrasts: Sequence[float], values: Tensor) -> dict[str, list[float | None]] | None:
    """Rows of a (contrast, eccentricity) table keyed by contrast for metrics.json, NaN as None; None
    when no cell is defined (a model without windows, or a gaze_toward with only radius 0)."""
    if torch.isnan(values).all():
        return None
    rows = zip(contrasts, values.tolist(), strict=True)
    return {str(c): [None if math.isnan(v) else v for v in row] for c, row in rows}


@torch.no_grad()
def eccentricity_grid_accuracy(
    module: GlimpseModule,
    recipe: Recipe,
    digits: Digits,
    seed: int,
    eccentricities_px: Sequence[float],
    contrasts: Sequence[float],
    digits_per_cell: int | None = None,
    batch_size: int = 500,
    progress: Progress | None = None,
) -> GridResult:
    """Accuracy and gaze for every (contrast, eccentricity) cell of the STN study's benchmark
    (whatwhere.md 5.4).

    Cell (c, e) renders ``digits_per_cell`` test digits (all when None; a subset drawn with the seed from
    the whole set, the same for every cell) at the fixed radius e
    with a random angle and the fixed contrast c; samples are keyed by (seed, "test", "grid", c, e,
    index), so the cells are the same for every model and run.
    """
    count = len(digits.labels) if digits_per_cell is None else min(digits_per_cell, len(digits.labels))
    chosen = spread_subset(len(digits.labels), count, seed)
    shape = (len(contrasts), len(eccentricities_px))
    accuracy = torch.zeros(shape, dtype=torch.float64)
    gaze_error = torch.full(shape, float("nan"), dtype=torch.float64)
    gaze_toward = torch.full(shape, float("nan"), dtype=torch.float64)
    task = progress.add_task("eccentricity grid", total=accuracy.numel() * count) if progress else None
    for row, contrast in enumerate(contrasts):
        for col, radius in enumerate(eccentricities_px):
            cell = recipe.with_level(radius_px=float(radius), contrast=float(contrast))
            correct, gaze = 0, GazeSums()
            for start in range(0, count, batch_size):
                index = chosen[start : start + batch_size]
                keys = sample_keys(index, seed, "test", "grid", float(contrast), float(radius))
                reading = read_batch(module, cell, digits, index, keys)
                correct += int(reading.correct.sum())
                gaze.add(reading)
                if progress is not None and task is not None:
                    progress.advance(task, len(index))
            accuracy[row, col] = correct / count
            gaze_error[row, col], gaze_toward[row, col] = gaze.means()
    return GridResult(accuracy, gaze_error, gaze_toward)


def csv_number(value: Tensor, template: str) -> str:
    """A cell of grid.csv: the number, or empty where it is not defined (NaN)."""
    return "" if torch.isnan(value) else template.format(float(value))


def reference_cell(reference: Mapping[float, list[float]] | None, contrast: float, radius: float) -> str:
    """The reference's accuracy at this cell, when the study measured it ('' otherwise)."""
    if reference is None or contrast not in reference:
        return ""
    for index, reference_radius in enumerate(GRID_ECCENTRICITIES_128):
        if abs(reference_radius - radius) < 0.01:
            return f"{reference[contrast][index]:.4f}"
    return ""


class EccentricityGrid:
    """Writes grid.csv (with the reference study's cell where it exists) and grid.png.

    Args:
        eccentricities_px: the radii; None = the reference's 40 k / 9 px, k = 1..9.
        contrasts: the fixed contrasts of the rows.
        digits_per_cell: test digits per cell; None = all of them (10,000, as the reference).
    """

    def __init__(
        self,
        eccentricities_px: Sequence[float] | None = None,
        contrasts: Sequence[float] = (0.7, 0.5, 0.3),
        digits_per_cell: int | None = None,
    ) -> None:
        self.eccentricities_px = (
            grid_eccentricities() if eccentricities_px is None else [float(e) for e in eccentricities_px]
        )
        self.contrasts = [float(c) for c in contrasts]
        if not self.contrasts or any(not 0 < c <= 1 for c in self.contrasts):
            raise ConfigError(f"evaluators.eccentricity_grid.contrasts must lie in (0, 1], got {contrasts}")
        if any(e < 0 for e in self.eccentricities_px):
            raise ConfigError(
                f"evaluators.eccentricity_grid.eccentricities_px must be >= 0, got {eccentricities_px}"
            )
        if digits_per_cell is not None and digits_per_cell < 1:
            raise ConfigError(
                f"evaluators.eccentricity_grid.digits_per_cell must be >= 1 or null, got {digits_per_cell}"
            )
        self.digits_per_cell = digits_per_cell

    def check(self, datamodule: NoisyMNIST) -> None:
        """The dataset's recipe must have a fixed radius and a contrast, and hold every cell."""
        for contrast in self.contrasts:
            for radius in self.eccentricities_px:
                try:
                    datamodule.train_recipe.with_level(radius_px=radius, contrast=contrast)
                except ConfigError as error:
                    raise ConfigError(
                        f"evaluators.eccentricity_grid cannot render its cells: {error}"
                    ) from error

    def __call__(self, context: EvaluationContext) -> dict[str, Any]:
        result = eccentricity_grid_accuracy(
            context.module,
            context.datamodule.train_recipe,  # noise, mask and envelope of the run; radius, contrast per cell
            context.digits,
            context.seed,
            self.eccentricities_px,
            self.contrasts,
            self.digits_per_cell,
            context.batch_size,
            context.progress,
        )
        total = len(context.digits.labels)
        per_cell = total if self.digits_per_cell is None else min(self.digits_per_cell, total)
        name = context.model_name
        reference = ECCENTRICITY_GRID_128.get(name)
        accuracy = result.accuracy
        with (context.out_dir / "grid.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(
                [
                    "model",
                    "contrast",
                    "eccentricity_px",
                    "accuracy",
                    "digits",
                    "reference_accuracy",
                    "gaze_error_px",
                    "gaze_toward",
                ]
            )
            for row, contrast in enumerate(self.contrasts):
                for col, radius in enumerate(self.eccentricities_px):
                    writer.writerow(
                        [
                            name,
                            contrast,
                            f"{radius:.3f}",
                            f"{float(accuracy[row, col]):.4f}",
                            per_cell,
                            reference_cell(reference, contrast, radius),
                            csv_number(result.gaze_error_px[row, col], "{:.2f}"),
                            csv_number(result.gaze_toward[row, col], "{:.3f}"),
                        ]
                    )
        plot_eccentricity_curves(
            accuracy,
            self.eccentricities_px,
            self.contrasts,
            context.out_dir / "grid.png",
            name,
            reference,
            GRID_ECCENTRICITIES_128,
            gaze_toward=None if torch.isnan(result.gaze_toward).all() else result.gaze_toward,
        )

        return {
            "grid": {
                "file": "grid.csv",
                "eccentricities_px": self.eccentricities_px,
                "contrasts": self.contrasts,
                "digits_per_cell": per_cell,
                "accuracy": {str(c): accuracy[row].tolist() for row, c in enumerate(self.contrasts)},
                "mean_over_eccentricities": {
                    str(c): float(accuracy[row].mean()) for row, c in enumerate(self.contrasts)
                },
                "reference_means": {str(c): m for c, m in ECCENTRICITY_GRID_MEANS_128.get(name, {}).items()},
                "gaze_error_px": by_contrast(self.contrasts, result.gaze_error_px),
                "gaze_toward": by_contrast(self.contrasts, result.gaze_toward),
            }
        }
