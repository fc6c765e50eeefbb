"""Figures written by the evaluation (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from torch import Tensor  # noqa: E402

from stn_fovea.callbacks.glimpses import input_glimpse_grid  # noqa: E402


def plot_shift_map(accuracy_map: Tensor, path: Path, title: str) -> None:
    """Heat map of accuracy by shift; rows i (down), cols j (right), centre = no shift."""
    half = (accuracy_map.shape[0] - 1) // 2
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    image = ax.imshow(
        accuracy_map.numpy(),
        vmin=0.0,
        vmax=1.0,
        cmap="viridis",
        origin="upper",
        extent=(-half - 0.5, half + 0.5, half + 0.5, -half - 0.5),
    )
    ax.set_xlabel("column shift j (px)")
    ax.set_ylabel("row shift i (px)")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_ring_means(
    ours: Mapping[int, float],
    path: Path,
    label: str,
    reference: Mapping[str, Mapping[int, float]] | None = None,
) -> None:
    """Accuracy versus shift radius, ours solid and the reference study's curves dashed."""
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    ax.plot(list(ours), list(ours.values()), "o-", ms=3, label=label)
    for name, curve in (reference or {}).items():
        ax.plot(list(curve), list(curve.values()), "--", marker="s", ms=3, label=f"{name} (reference)")
    ax.set_xlabel("shift radius (px)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0.0, 1.0)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_glimpses(images: Tensor, glimpses: Tensor, path: Path, title: str) -> None:
    """Inputs beside the glimpses the classifier read (pairs, four per row)."""
    grid = input_glimpse_grid(images, glimpses)
    fig, ax = plt.subplots(figsize=(8, 2 + grid.shape[1] / 60))
    ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_title(title)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
