"""The evaluation of one trained model: fixed test protocols, shift map, figures and metrics.json."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from stn_fovea.data.datamodule import TEST, NoisyMNIST28, digit_batch
from stn_fovea.data.mnist import Digits
from stn_fovea.errors import ConfigError
from stn_fovea.evaluation.accuracy import protocol_accuracy, ring_means, shift_accuracy_map
from stn_fovea.evaluation.figures import plot_glimpses, plot_ring_means, plot_shift_map
from stn_fovea.evaluation.reference import CENTRAL_GENERAL_28, SHIFT_MAP_RING_MEANS_28
from stn_fovea.models.module import GlimpseModule

log = logging.getLogger(__name__)


@dataclass
class EvaluationSettings:
    """What to measure. ``digits_per_cell``: test digits per shift-map cell (the reference used 10000)."""

    shift_map: bool = True
    max_shift_px: int = 27
    digits_per_cell: int = 1000
    map_protocol: str = "general"
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
        return settings

    def check_protocols(self, protocols: Mapping[str, Any]) -> None:
        """The shift map reuses a test protocol's contrast and noise: it must exist."""
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
    datamodule: NoisyMNIST28,
    settings: EvaluationSettings,
    out_dir: Path,
    model_name: str,
    checkpoint: str | None = None,
) -> dict[str, Any]:
    """Measure ``module`` on the datamodule's fixed test protocols; write figures and metrics.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    digits = datamodule.test_digits
    settings.check_protocols(datamodule.test_recipes)
    recipe = datamodule.test_recipes[settings.map_protocol]
    module.eval()
    metrics: dict[str, Any] = {
        "model": model_name,
        "checkpoint": checkpoint,
        "noise": recipe.noise,
        "contrast": list(recipe.contrast),
        "data_seed": datamodule.seed,
        "test_digits": len(digits.labels),
        "accuracy": {},
    }
    with _progress() as progress:
        for name in datamodule.test_recipes:
            metrics["accuracy"][name] = protocol_accuracy(
                module, datamodule.render, digits, f"{TEST}/{name}", settings.batch_size, progress
            )
        if settings.shift_map:
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
    if settings.shift_map:
        np.save(out_dir / "shift_map.npy", accuracy_map.numpy())
        rings = ring_means(accuracy_map)
        half = settings.max_shift_px
        metrics["shift_map"] = {
            "file": "shift_map.npy",
            "max_shift_px": half,
            "digits_per_cell": min(settings.digits_per_cell, len(digits.labels)),
            "centre": float(accuracy_map[half, half]),
            "max": float(accuracy_map.max()),
            "ring_means": rings,
        }
        plot_shift_map(accuracy_map, out_dir / "shift_map.png", f"{model_name}: accuracy by shift")
        reference = {
            name: curve
            for name, curve in SHIFT_MAP_RING_MEANS_28.items()
            if name == model_name or model_name not in SHIFT_MAP_RING_MEANS_28
        }
        plot_ring_means(rings, out_dir / "ring_means.png", model_name, reference)
    if model_name in CENTRAL_GENERAL_28:
        metrics["reference"] = CENTRAL_GENERAL_28[model_name]
    _glimpse_figure(module, datamodule, digits, settings, out_dir, model_name)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


@torch.no_grad()
def _glimpse_figure(
    module: GlimpseModule,
    datamodule: NoisyMNIST28,
    digits: Digits,
    settings: EvaluationSettings,
    out_dir: Path,
    model_name: str,
) -> None:
    count = min(settings.num_glimpses, len(digits.labels))
    index = torch.arange(count)
    batch = datamodule.render(digit_batch(digits, index, f"{TEST}/{settings.map_protocol}", module.device))
    output = module(batch["image"])
    plot_glimpses(
        batch["image"].cpu(),
        output.glimpse.cpu(),
        out_dir / "glimpses.png",
        f"{model_name}: test inputs ({settings.map_protocol}) and glimpses",
    )
