"""The evaluation of one trained model: fixed test protocols, shift map, figures and metrics.json."""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from stn_fovea.data.counter_rng import sample_keys
from stn_fovea.data.datamodule import TEST, NoisyMNIST, digit_batch
from stn_fovea.data.mnist import Digits
from stn_fovea.data.retina_digits import RetinaDigits
from stn_fovea.errors import ConfigError
from stn_fovea.evaluation.accuracy import (
    eccentricity_grid_accuracy,
    grid_eccentricities,
    protocol_accuracy,
    ring_means,
    shift_accuracy_map,
)
from stn_fovea.evaluation.figures import (
    plot_eccentricity_curves,
    plot_glimpse_boxes,
    plot_glimpses,
    plot_ring_means,
    plot_shift_map,
)
from stn_fovea.evaluation.reference import (
    CENTRAL_GENERAL_28,
    ECCENTRICITY_GRID_128,
    ECCENTRICITY_GRID_MEANS_128,
    GRID_ECCENTRICITIES_128,
    SHIFT_MAP_RING_MEANS_28,
)
from stn_fovea.models.module import GlimpseModule
from stn_fovea.models.sampler import glimpse_corners

log = logging.getLogger(__name__)


@dataclass
class EvaluationSettings:
    """What to measure (``conf/eval/default.yaml``).

    28x28 data: the shift map (``digits_per_cell`` test digits per shift; the reference used 10000).
    128x128 data: the eccentricity x contrast grid (``grid_digits_per_cell`` digits per cell, None =
    the whole test set as in the reference) and a figure of glimpse boxes at ``box_radius_px``.
    """

    shift_map: bool = True
    max_shift_px: int = 27
    digits_per_cell: int = 1000
    map_protocol: str = "general"
    grid: bool = True
    grid_eccentricities_px: list[float] | None = None
    grid_contrasts: list[float] = field(default_factory=lambda: [0.7, 0.5, 0.3])
    grid_digits_per_cell: int | None = None
    box_radius_px: float = 40.0
    num_glimpses: int = 16
    batch_size: int = 1000

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> EvaluationSettings:
        """Build from the ``eval`` config node; unknown keys or bad sizes are a ConfigError."""
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ConfigError(f"unknown eval setting(s) {unknown}; known: {sorted(known)}")
        settings = cls(**config)
        if settings.max_shift_px < 0 or settings.digits_per_cell < 1 or settings.batch_size < 1:
            raise ConfigError(
                "eval.max_shift_px must be >= 0, eval.digits_per_cell and eval.batch_size >= 1, got "
                f"{settings.max_shift_px}, {settings.digits_per_cell}, {settings.batch_size}"
            )
        if settings.grid_digits_per_cell is not None and settings.grid_digits_per_cell < 1:
            raise ConfigError(
                f"eval.grid_digits_per_cell must be >= 1 or null, got {settings.grid_digits_per_cell}"
            )
        if not settings.grid_contrasts or any(not 0 < float(c) <= 1 for c in settings.grid_contrasts):
            raise ConfigError(
                f"eval.grid_contrasts must be contrasts in (0, 1], got {settings.grid_contrasts}"
            )
        if settings.grid_eccentricities_px is not None and any(
            float(e) < 0 for e in settings.grid_eccentricities_px
        ):
            raise ConfigError(
                f"eval.grid_eccentricities_px must be >= 0, got {settings.grid_eccentricities_px}"
            )
        return settings

    @property
    def eccentricities_px(self) -> list[float]:
        """The grid's radii: as configured, or the reference's 40 k / 9 px, k = 1..9."""
        if self.grid_eccentricities_px is None:
            return grid_eccentricities()
        return [float(e) for e in self.grid_eccentricities_px]

    def check_protocols(self, protocols: Mapping[str, Any]) -> None:
        """The shift map reuses a test protocol's contrast and noise: it must exist."""
        if any(isinstance(recipe, RetinaDigits) for recipe in protocols.values()):
            return  # the 128x128 grid sets contrast and radius itself
        if self.map_protocol not in protocols:
            raise ConfigError(
                f"eval.map_protocol={self.map_protocol!r} is not a test protocol; choose one of "
                f"{sorted(protocols)} (data.test_protocols)"
            )


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )


def evaluate_model(
    module: GlimpseModule,
    datamodule: NoisyMNIST,
    settings: EvaluationSettings,
    out_dir: Path,
    model_name: str,
    checkpoint: str | None = None,
) -> dict[str, Any]:
    """Measure ``module`` on the datamodule's fixed test protocols; write figures and metrics.json.

    28x28 data get the shift map and ring means; 128x128 data the eccentricity x contrast grid
    (grid.csv, grid.png) and glimpse boxes. Both get a glimpse figure.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    digits = datamodule.test_digits
    settings.check_protocols(datamodule.test_recipes)
    module.eval()
    base = datamodule.train_recipe
    metrics: dict[str, Any] = {
        "model": model_name,
        "checkpoint": checkpoint,
        "noise": base.noise,
        "data_seed": datamodule.seed,
        "test_digits": len(digits.labels),
        "accuracy": {},
    }
    with _progress() as progress:
        for name in datamodule.test_recipes:
            metrics["accuracy"][name] = protocol_accuracy(
                module, datamodule.render, digits, f"{TEST}/{name}", settings.batch_size, progress
            )
        if isinstance(base, RetinaDigits):
            if settings.grid:
                metrics["grid"] = _grid_report(
                    module, datamodule, digits, settings, out_dir, model_name, progress
                )
        elif settings.shift_map:
            metrics["contrast"] = list(datamodule.test_recipes[settings.map_protocol].contrast)
            metrics["shift_map"] = _shift_map_report(
                module, datamodule, digits, settings, out_dir, model_name, progress
            )
    if model_name in CENTRAL_GENERAL_28 and not isinstance(base, RetinaDigits):
        metrics["reference"] = CENTRAL_GENERAL_28[model_name]
    _glimpse_figure(module, datamodule, digits, settings, out_dir, model_name)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def _shift_map_report(
    module: GlimpseModule,
    datamodule: NoisyMNIST,
    digits: Digits,
    settings: EvaluationSettings,
    out_dir: Path,
    model_name: str,
    progress: Progress,
) -> dict[str, Any]:
    recipe = datamodule.test_recipes[settings.map_protocol]
    accuracy_map = shift_accuracy_map(
        module,
        recipe,
        digits,
        datamodule.seed,
        settings.max_shift_px,
        settings.digits_per_cell,
        settings.batch_size,
        progress,
    )
    np.save(out_dir / "shift_map.npy", accuracy_map.numpy())
    rings = ring_means(accuracy_map)
    half = settings.max_shift_px
    plot_shift_map(accuracy_map, out_dir / "shift_map.png", f"{model_name}: accuracy by shift")
    reference = {
        name: curve
        for name, curve in SHIFT_MAP_RING_MEANS_28.items()
        if name == model_name or model_name not in SHIFT_MAP_RING_MEANS_28
    }
    plot_ring_means(rings, out_dir / "ring_means.png", model_name, reference)
    return {
        "file": "shift_map.npy",
        "max_shift_px": half,
        "digits_per_cell": min(settings.digits_per_cell, len(digits.labels)),
        "centre": float(accuracy_map[half, half]),
        "max": float(accuracy_map.max()),
        "ring_means": rings,
    }


def _grid_report(
    module: GlimpseModule,
    datamodule: NoisyMNIST,
    digits: Digits,
    settings: EvaluationSettings,
    out_dir: Path,
    model_name: str,
    progress: Progress,
) -> dict[str, Any]:
    eccentricities, contrasts = settings.eccentricities_px, [float(c) for c in settings.grid_contrasts]
    accuracy = eccentricity_grid_accuracy(
        module,
        datamodule.train_recipe,  # noise, mask and envelope of the run; radius and contrast per cell
        digits,
        datamodule.seed,
        eccentricities,
        contrasts,
        settings.grid_digits_per_cell,
        settings.batch_size,
        progress,
    )
    per_cell = (
        len(digits.labels)
        if settings.grid_digits_per_cell is None
        else min(settings.grid_digits_per_cell, len(digits.labels))
    )
    reference = ECCENTRICITY_GRID_128.get(model_name)
    with (out_dir / "grid.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", "contrast", "eccentricity_px", "accuracy", "digits", "reference_accuracy"])
        for row, contrast in enumerate(contrasts):
            for col, radius in enumerate(eccentricities):
                writer.writerow(
                    [
                        model_name,
                        contrast,
                        f"{radius:.3f}",
                        f"{float(accuracy[row, col]):.4f}",
                        per_cell,
                        _reference_cell(reference, contrast, radius),
                    ]
                )
    plot_eccentricity_curves(
        accuracy,
        eccentricities,
        contrasts,
        out_dir / "grid.png",
        model_name,
        reference,
        GRID_ECCENTRICITIES_128,
    )
    return {
        "file": "grid.csv",
        "eccentricities_px": eccentricities,
        "contrasts": contrasts,
        "digits_per_cell": per_cell,
        "accuracy": {str(c): accuracy[row].tolist() for row, c in enumerate(contrasts)},
        "mean_over_eccentricities": {str(c): float(accuracy[row].mean()) for row, c in enumerate(contrasts)},
        "reference_means": {str(c): m for c, m in ECCENTRICITY_GRID_MEANS_128.get(model_name, {}).items()},
    }


def _reference_cell(reference: Mapping[float, list[float]] | None, contrast: float, radius: float) -> str:
    """The reference's accuracy at this cell, when the study measured it ('' otherwise)."""
    if reference is None or contrast not in reference:
        return ""
    for index, reference_radius in enumerate(GRID_ECCENTRICITIES_128):
        if abs(reference_radius - radius) < 0.01:
            return f"{reference[contrast][index]:.4f}"
    return ""


@torch.no_grad()
def _glimpse_figure(
    module: GlimpseModule,
    datamodule: NoisyMNIST,
    digits: Digits,
    settings: EvaluationSettings,
    out_dir: Path,
    model_name: str,
) -> None:
    count = min(settings.num_glimpses, len(digits.labels))
    index = torch.arange(count)
    base = datamodule.train_recipe
    if isinstance(base, RetinaDigits):
        # A few test digits at the largest eccentricity, the hardest place to find them.
        recipe = base.with_level(radius_px=settings.box_radius_px, contrast=float(settings.grid_contrasts[0]))
        keys = sample_keys(index, datamodule.seed, "test", "boxes", settings.box_radius_px)
        images = recipe(digits.images[index].to(module.device), keys.to(module.device)).images
        output = module(images)
        shown = min(count, 8)
        if output.theta is not None:
            sampler = module.net.transformer.sampler
            corners = glimpse_corners(output.theta[:shown], images.shape[-2:], sampler.align_corners)
            plot_glimpse_boxes(
                images[:shown].cpu(),
                output.glimpse[:shown].cpu(),
                corners.cpu(),
                out_dir / "glimpse_boxes.png",
                f"{model_name}: test digits at {settings.box_radius_px:g} px, contrast "
                f"{float(settings.grid_contrasts[0]):g}, and the glimpses read",
            )
        title = f"{model_name}: test inputs at {settings.box_radius_px:g} px and glimpses"
    else:
        batch = datamodule.render(
            digit_batch(digits, index, f"{TEST}/{settings.map_protocol}", module.device)
        )
        images = batch["image"]
        output = module(images)
        title = f"{model_name}: test inputs ({settings.map_protocol}) and glimpses"
    plot_glimpses(images.cpu(), output.glimpse.cpu(), out_dir / "glimpses.png", title)
