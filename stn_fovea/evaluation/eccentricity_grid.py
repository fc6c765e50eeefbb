"""The 128x128 study's benchmark grid: accuracy at fixed eccentricities x fixed contrasts."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from torch import Tensor

from stn_fovea.data.datamodule import NoisyMNIST
from stn_fovea.errors import ConfigError
from stn_fovea.evaluation.evaluator import EvaluationContext
from stn_fovea.evaluation.figures import plot_eccentricity_curves, plot_saccade_curves
from stn_fovea.evaluation.grid_cells import (
    GridCells,
    GridResult,
    eccentricity_grid_accuracy,
    grid_eccentricities,
    saccade_grid_accuracy,
)
from stn_fovea.evaluation.reference import (
    ECCENTRICITY_GRID_MEANS_128,
    GRID_ECCENTRICITIES_128,
    grid_reference,
    published_cell,
)


def by_contrast(contrasts: Sequence[float], values: Tensor) -> dict[str, list[float | None]] | None:
    """Rows of a (contrast, eccentricity) table keyed by contrast for metrics.json, NaN as None; None
    when no cell is defined (a model without windows, or a gaze_toward with only radius 0)."""
    if torch.isnan(values).all():
        return None
    rows = zip(contrasts, values.tolist(), strict=True)
    return {str(c): [None if math.isnan(v) else v for v in row] for c, row in rows}


def csv_number(value: Tensor, template: str) -> str:
    """A cell of grid.csv: the number, or empty where it is not defined (NaN)."""
    return "" if torch.isnan(value) else template.format(float(value))


def reference_cell(reference: Mapping[float, list[float]] | None, contrast: float, radius: float) -> str:
    """The reference's accuracy at this cell, when the study measured it ('' otherwise)."""
    published = published_cell(reference, contrast, radius)
    return "" if published is None else f"{published:.4f}"


GRID_COLUMNS = [
    "model",
    "saccades",
    "contrast",
    "eccentricity_px",
    "accuracy",
    "digits",
    "reference_accuracy",
    "gaze_error_px",
    "gaze_toward",
]


def publish(figure: Figure, context: EvaluationContext) -> None:
    """grid.png, and the training run's TensorBoard (Images, beside the confusion matrix) when there."""
    figure.savefig(context.out_dir / "grid.png", dpi=120)
    if context.tensorboard is not None:
        context.tensorboard.add_figure("eval/eccentricity_grid", figure, context.global_step)
    plt.close(figure)


class EccentricityGrid:
    """Writes grid.csv (with the reference study's cell where it exists) and grid.png.

    Args:
        eccentricities_px: the radii; None = the reference's 40 k / 9 px, k = 1..9.
        contrasts: the fixed contrasts of the rows.
        digits_per_cell: test digits per cell; None = all of them (10,000, as the reference).
        saccades: for a model that saccades (What/Where), the numbers of saccades to measure, e.g.
            [0, 1, 2, 3, 4, 5]: one grid each (the ``saccades`` column of grid.csv); None = the model's
            own reading (the column stays empty).
    """

    def __init__(
        self,
        eccentricities_px: Sequence[float] | None = None,
        contrasts: Sequence[float] = (0.7, 0.5, 0.3),
        digits_per_cell: int | None = None,
        saccades: Sequence[int] | None = None,
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
        if saccades is not None and (not saccades or any(int(k) < 0 for k in saccades)):
            raise ConfigError(
                f"evaluators.eccentricity_grid.saccades must be a list of counts >= 0 or null, got {saccades}"
            )
        self.digits_per_cell = digits_per_cell
        self.saccades = None if saccades is None else sorted({int(k) for k in saccades})

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

    def measure(self, context: EvaluationContext) -> dict[int | None, GridResult]:
        """One grid per number of saccades (key None: the model's own reading)."""
        cells = GridCells(
            context.datamodule.train_recipe,  # the run's noise, mask and envelope; radius, contrast per cell
            context.digits,
            context.seed,
            self.eccentricities_px,
            self.contrasts,
            self.digits_per_cell,
            context.batch_size,
        )
        if self.saccades is None:
            return {None: eccentricity_grid_accuracy(context.module, cells, context.progress)}
        if not hasattr(context.module.net, "saccades"):
            raise ConfigError(
                "evaluators.eccentricity_grid.saccades is for a model that saccades (model=what_where); "
                f"{context.model_name} does not: set it to null"
            )
        return dict(saccade_grid_accuracy(context.module, cells, self.saccades, context.progress))

    def __call__(self, context: EvaluationContext) -> dict[str, Any]:
        results = self.measure(context)
        total = len(context.digits.labels)
        per_cell = total if self.digits_per_cell is None else min(self.digits_per_cell, total)
        name = context.model_name
        noise = context.datamodule.train_recipe.noise  # a published cell only at the noise it was measured at
        with (context.out_dir / "grid.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(GRID_COLUMNS)
            for saccades, result in results.items():
                reference = grid_reference(name, saccades, noise)
                for row, contrast in enumerate(self.contrasts):
                    for col, radius in enumerate(self.eccentricities_px):
                        writer.writerow(
                            [
                                name,
                                "" if saccades is None else saccades,
                                contrast,
                                f"{radius:.3f}",
                                f"{float(result.accuracy[row, col]):.4f}",
                                per_cell,
                                reference_cell(reference, contrast, radius),
                                csv_number(result.gaze_error_px[row, col], "{:.2f}"),
                                csv_number(result.gaze_toward[row, col], "{:.3f}"),
                            ]
                        )
        if self.saccades is None:
            result = results[None]
            figure = plot_eccentricity_curves(
                result.accuracy,
                self.eccentricities_px,
                self.contrasts,
                name,
                grid_reference(name, noise=noise),
                GRID_ECCENTRICITIES_128,
                gaze_toward=None if torch.isnan(result.gaze_toward).all() else result.gaze_toward,
            )
            publish(figure, context)
            means = ECCENTRICITY_GRID_MEANS_128.get(name, {}) if grid_reference(name, noise=noise) else {}
            return {"grid": self.summary(result, name, per_cell, means)}
        figure = plot_saccade_curves(
            {k: results[k].accuracy for k in self.saccades},
            self.eccentricities_px,
            self.contrasts,
            name,
            {k: grid_reference(name, k, noise) for k in self.saccades},
            GRID_ECCENTRICITIES_128,
        )
        publish(figure, context)
        summaries = {}
        for k in self.saccades:
            reference = grid_reference(name, k, noise) or {}
            means = {c: sum(curve) / len(curve) for c, curve in reference.items()}
            summaries[str(k)] = self.summary(results[k], name, per_cell, means)
        return {"grid": {"file": "grid.csv", "saccades": summaries}}

    def summary(
        self, result: GridResult, name: str, per_cell: int, reference_means: Mapping[float, float]
    ) -> dict[str, Any]:
        """One grid's entry in metrics.json."""
        accuracy = result.accuracy
        return {
            "file": "grid.csv",
            "eccentricities_px": self.eccentricities_px,
            "contrasts": self.contrasts,
            "digits_per_cell": per_cell,
            "accuracy": {str(c): accuracy[row].tolist() for row, c in enumerate(self.contrasts)},
            "mean_over_eccentricities": {
                str(c): float(accuracy[row].mean()) for row, c in enumerate(self.contrasts)
            },
            "reference_means": {str(c): m for c, m in reference_means.items()},
            "gaze_error_px": by_contrast(self.contrasts, result.gaze_error_px),
            "gaze_toward": by_contrast(self.contrasts, result.gaze_toward),
        }
