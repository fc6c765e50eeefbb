"""Accuracy on fixed, seeded test protocols: whole test sets, the 28x28 shift map, the 128 grid."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from rich.progress import Progress
from torch import Tensor

from stn_fovea.data.counter_rng import sample_keys
from stn_fovea.data.datamodule import digit_batch
from stn_fovea.data.mnist import Digits
from stn_fovea.data.retina_digits import RetinaDigits
from stn_fovea.data.shifted_digits import ShiftedDigits
from stn_fovea.models.module import GlimpseModule

Renderer = Callable[[dict[str, Any]], dict[str, Any]]


@torch.no_grad()
def protocol_accuracy(
    module: GlimpseModule,
    render: Renderer,
    digits: Digits,
    source: str,
    batch_size: int = 1000,
    progress: Progress | None = None,
) -> float:
    """Top-1 accuracy over all ``digits``, rendered by ``render`` for the batch source ``source``."""
    module.eval()
    correct, count = 0, len(digits.labels)
    task = progress.add_task(source, total=count) if progress else None
    for start in range(0, count, batch_size):
        index = torch.arange(start, min(start + batch_size, count))
        batch = render(digit_batch(digits, index, source, module.device))
        correct += int((module(batch["image"]).logits.argmax(1) == batch["label"]).sum())
        if progress is not None and task is not None:
            progress.advance(task, len(index))
    return correct / count


@torch.no_grad()
def shift_accuracy_map(
    module: GlimpseModule,
    recipe: ShiftedDigits,
    digits: Digits,
    seed: int,
    max_shift_px: int = 27,
    digits_per_cell: int = 1000,
    batch_size: int = 1000,
    progress: Progress | None = None,
) -> Tensor:
    """Accuracy for every integer shift (i, j) in [-max, max]^2 (rows, cols).

    Cell (i, j) holds the accuracy on the first ``digits_per_cell`` test digits, each shifted by exactly
    (i, j) with the recipe's contrast and noise; samples are keyed by (seed, "test", "shift_map", cell,
    index), so the map is the same for every model.

    Returns:
        (2 * max + 1, 2 * max + 1) float tensor on the CPU; element [i + max, j + max] is shift (i, j).
    """
    module.eval()
    side = 2 * max_shift_px + 1
    per_cell = min(digits_per_cell, len(digits.labels))
    total = side * side * per_cell
    correct = torch.zeros(side * side, dtype=torch.int64)
    offsets = torch.arange(-max_shift_px, max_shift_px + 1)
    cell_shifts = torch.cartesian_prod(offsets, offsets)
    task = progress.add_task("shift map", total=total) if progress else None
    for start in range(0, total, batch_size):
        flat = torch.arange(start, min(start + batch_size, total))
        cell, index = flat // per_cell, flat % per_cell
        keys = sample_keys(index + cell * len(digits.labels), seed, "test", "shift_map")
        noisy = recipe(digits.images[index].to(module.device), keys.to(module.device), cell_shifts[cell])
        hits = module(noisy.images).logits.argmax(1).cpu() == digits.labels[index]
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


def grid_eccentricities(count: int = 9, max_px: float = 40.0) -> list[float]:
    """The reference grid of radii: max * k / count for k = 1..count (4.44, 8.89, ..., 40 px)."""
    return [max_px * k / count for k in range(1, count + 1)]


@torch.no_grad()
def eccentricity_grid_accuracy(
    module: GlimpseModule,
    recipe: RetinaDigits,
    digits: Digits,
    seed: int,
    eccentricities_px: Sequence[float],
    contrasts: Sequence[float],
    digits_per_cell: int | None = None,
    batch_size: int = 500,
    progress: Progress | None = None,
) -> Tensor:
    """Accuracy for every (contrast, eccentricity) cell of the STN study's benchmark (whatwhere.md 5.4).

    Cell (c, e) renders the first ``digits_per_cell`` test digits (all when None) at the fixed radius e
    with a random angle and the fixed contrast c; samples are keyed by (seed, "test", "grid", c, e,
    index), so the cells are the same for every model and run.

    Returns:
        (len(contrasts), len(eccentricities_px)) float tensor on the CPU.
    """
    module.eval()
    count = len(digits.labels) if digits_per_cell is None else min(digits_per_cell, len(digits.labels))
    accuracy = torch.zeros(len(contrasts), len(eccentricities_px), dtype=torch.float64)
    task = progress.add_task("eccentricity grid", total=accuracy.numel() * count) if progress else None
    for row, contrast in enumerate(contrasts):
        for col, radius in enumerate(eccentricities_px):
            cell = recipe.with_level(radius_px=float(radius), contrast=float(contrast))
            correct = 0
            for start in range(0, count, batch_size):
                index = torch.arange(start, min(start + batch_size, count))
                keys = sample_keys(index, seed, "test", "grid", float(contrast), float(radius))
                noisy = cell(digits.images[index].to(module.device), keys.to(module.device))
                correct += int((module(noisy.images).logits.argmax(1).cpu() == digits.labels[index]).sum())
                if progress is not None and task is not None:
                    progress.advance(task, len(index))
            accuracy[row, col] = correct / count
    return accuracy
