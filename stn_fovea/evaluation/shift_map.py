"""The 28x28 study's shift accuracy map: accuracy for every integer shift, and its ring means."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from rich.progress import Progress
from torch import Tensor

from stn_fovea.data.counter_rng import sample_keys
from stn_fovea.data.datamodule import NoisyMNIST
from stn_fovea.data.mnist import Digits, spread_subset
from stn_fovea.data.recipe import Recipe
from stn_fovea.errors import ConfigError
from stn_fovea.evaluation.evaluator import EvaluationContext, read_batch
from stn_fovea.evaluation.figures import plot_ring_means, plot_shift_map
from stn_fovea.evaluation.reference import SHIFT_MAP_RING_MEANS_28
from stn_fovea.models.module import GlimpseModule


@torch.no_grad()
def shift_accuracy_map(
    module: GlimpseModule,
    recipe: Recipe,
    digits: Digits,
    seed: int,
    max_shift_px: int = 27,
    digits_per_cell: int = 1000,
    batch_size: int = 1000,
    progress: Progress | None = None,
) -> Tensor:
    """Accuracy for every integer shift (i, j) in [-max, max]^2 (i rows down, j columns right).

    Cell (i, j) holds the accuracy on ``digits_per_cell`` test digits (a subset drawn with the seed from
    the whole set, the same for every cell), each shifted by exactly
    (i, j) with the recipe's contrast and noise; samples are keyed by (seed, "test", "shift_map", cell,
    index), so the map is the same for every model.

    Returns:
        (2 * max + 1, 2 * max + 1) float tensor on the CPU; element [i + max, j + max] is shift (i, j).
    """
    side = 2 * max_shift_px + 1
    per_cell = min(digits_per_cell, len(digits.labels))
    chosen = spread_subset(len(digits.labels), per_cell, seed)
    total = side * side * per_cell
    correct = torch.zeros(side * side, dtype=torch.int64)
    offsets = torch.arange(-max_shift_px, max_shift_px + 1)
    cell_shifts = torch.cartesian_prod(offsets, offsets)  # row-major: cell = (i + max) * side + (j + max)
    task = progress.add_task("shift map", total=total) if progress else None
    for start in range(0, total, batch_size):
        flat = torch.arange(start, min(start + batch_size, total))
        cell, index = flat // per_cell, chosen[flat % per_cell]
        keys = sample_keys(index + cell * len(digits.labels), seed, "test", "shift_map")
        hits = read_batch(module, recipe, digits, index, keys, shifts=cell_shifts[cell]).correct
        correct.index_add_(0, cell, hits.to(torch.int64))
        if progress is not None and task is not None:
            progress.advance(task, len(flat))
    return (correct.double() / per_cell).view(side, side).float()


def ring_means(accuracy_map: Tensor) -> dict[int, float]:
    """Mean accuracy of the cells at each rounded distance r = round(sqrt(i^2 + j^2)) from the centre."""
    half = (accuracy_map.shape[0] - 1) // 2
    offsets = torch.arange(-half, half + 1, dtype=torch.float32)
    radius = torch.sqrt(offsets.view(-1, 1) ** 2 + offsets.view(1, -1) ** 2).round().to(torch.int64)
    return {int(r): float(accuracy_map[radius == r].mean()) for r in torch.unique(radius) if r <= half}


class ShiftMap:
    """Writes shift_map.npy/.png and ring_means.png (the reference study's curves dashed).

    Args:
        protocol: the test protocol whose contrast and noise the map uses.
        max_shift_px: the map covers shifts in [-max, max]^2 (27 in the reference: 55 x 55).
        digits_per_cell: test digits per shift (paper text: 1000; reference code: 10000).
    """

    def __init__(
        self, protocol: str = "general", max_shift_px: int = 27, digits_per_cell: int = 1000
    ) -> None:
        if max_shift_px < 0 or digits_per_cell < 1:
            raise ConfigError(
                "evaluators.shift_map: max_shift_px must be >= 0 and digits_per_cell >= 1, got "
                f"{max_shift_px} and {digits_per_cell}"
            )
        self.protocol, self.max_shift_px, self.digits_per_cell = protocol, max_shift_px, digits_per_cell

    def check(self, datamodule: NoisyMNIST) -> None:
        if self.protocol not in datamodule.test_recipes:
            raise ConfigError(
                f"evaluators.shift_map.protocol={self.protocol!r} is not a test protocol; choose one of "
                f"{sorted(datamodule.test_recipes)} (data.test_protocols)"
            )

    def __call__(self, context: EvaluationContext) -> dict[str, Any]:
        recipe = context.datamodule.test_recipes[self.protocol]
        accuracy_map = shift_accuracy_map(
            context.module,
            recipe,
            context.digits,
            context.seed,
            self.max_shift_px,
            self.digits_per_cell,
            context.batch_size,
            context.progress,
        )
        out_dir, name = context.out_dir, context.model_name
        np.save(out_dir / "shift_map.npy", accuracy_map.numpy())
        rings = ring_means(accuracy_map)
        plot_shift_map(accuracy_map, out_dir / "shift_map.png", f"{name}: accuracy by shift")
        reference = {
            model: curve
            for model, curve in SHIFT_MAP_RING_MEANS_28.items()
            if model == name or name not in SHIFT_MAP_RING_MEANS_28
        }
        plot_ring_means(rings, out_dir / "ring_means.png", name, reference)
        half = self.max_shift_px
        return {
            "contrast": list(recipe.contrast),  # type: ignore[arg-type]
            "shift_map": {
                "file": "shift_map.npy",
                "protocol": self.protocol,
                "max_shift_px": half,
                "digits_per_cell": min(self.digits_per_cell, len(context.digits.labels)),
                "centre": float(accuracy_map[half, half]),
                "max": float(accuracy_map.max()),
                "ring_means": rings,
            },
        }
