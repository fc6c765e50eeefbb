"""Figures written by the evaluation (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Polygon  # noqa: E402
from torch import Tensor  # noqa: E402

from stn_fovea.callbacks.glimpses import display_range, input_glimpse_grid  # noqa: E402


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


def plot_eccentricity_curves(
    accuracy: Tensor,
    eccentricities_px: Sequence[float],
    contrasts: Sequence[float],
    label: str,
    reference: Mapping[float, Sequence[float]] | None = None,
    reference_eccentricities_px: Sequence[float] | None = None,
    gaze_toward: Tensor | None = None,
) -> Figure:
    """Accuracy versus eccentricity, one colour per contrast: ours solid, the reference dashed; beside
    it, when ``gaze_toward`` (same shape as ``accuracy``) is given, how far the glimpse went towards the
    digit (0 = it stayed at the centre, 1 = on the digit)."""
    panels = 2 if gaze_toward is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.0 * panels, 4.0), squeeze=False)
    ax, gaze_ax = axes[0, 0], axes[0, -1]
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for row, contrast in enumerate(contrasts):
        colour = colours[row % len(colours)]
        ax.plot(
            eccentricities_px,
            accuracy[row].tolist(),
            "o-",
            ms=3,
            color=colour,
            label=f"{label}, c={contrast:g}",
        )
        curve = (reference or {}).get(float(contrast))
        if curve is not None and reference_eccentricities_px is not None:
            ax.plot(
                reference_eccentricities_px,
                curve,
                "--",
                marker="s",
                ms=3,
                color=colour,
                alpha=0.7,
                label=f"reference, c={contrast:g}",
            )
        if gaze_toward is not None:
            gaze_ax.plot(eccentricities_px, gaze_toward[row].tolist(), "o-", ms=3, color=colour)
    ax.set_xlabel("eccentricity (px from the centre)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0.0, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    if gaze_toward is not None:
        gaze_ax.set_xlabel("eccentricity (px from the centre)")
        gaze_ax.set_ylabel("glimpse towards the digit (0 = centre, 1 = on it)")
        gaze_ax.axhline(1.0, color="grey", lw=0.8, ls=":")
        gaze_ax.set_ylim(-0.2, 1.3)
        gaze_ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_saccade_curves(
    accuracy: Mapping[int, Tensor],
    eccentricities_px: Sequence[float],
    contrasts: Sequence[float],
    label: str,
    reference: Mapping[int, Mapping[float, Sequence[float]] | None],
    reference_eccentricities_px: Sequence[float],
) -> Figure:
    """Accuracy versus eccentricity after k saccades (``accuracy[k]``: (contrasts, eccentricities)), one
    panel per contrast and one colour per k: ours solid, the reference dashed in the same colour."""
    fig, axes = plt.subplots(1, len(contrasts), figsize=(5.0 * len(contrasts), 4.0), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for column, contrast in enumerate(contrasts):
        ax = axes[0, column]
        for order, (k, grid) in enumerate(sorted(accuracy.items())):
            colour = colours[order % len(colours)]
            ax.plot(
                eccentricities_px,
                grid[column].tolist(),
                "o-",
                ms=3,
                color=colour,
                label=f"{label}, {k} sacc.",
            )
            curve = (reference.get(k) or {}).get(float(contrast))
            if curve is not None:
                ax.plot(
                    reference_eccentricities_px, curve, "--", color=colour, alpha=0.6, label=f"reference, {k}"
                )
        ax.set_title(f"contrast {contrast:g}")
        ax.set_xlabel("eccentricity (px from the centre)")
        ax.set_ylabel("accuracy")
        ax.set_ylim(0.0, 1.0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return fig


def plot_glimpse_boxes(images: Tensor, glimpses: Tensor, corners: Tensor, path: Path, title: str) -> None:
    """Each input (B, 1, H, W) with the outlines of its glimpses (corners (B, G, 4, 2), x/y px; the
    last one red, earlier ones orange) above the last glimpse (B, 1, h, w), grey levels in the inputs'
    display range."""
    count, (low, high) = images.shape[0], display_range(images)
    fig, axes = plt.subplots(2, count, figsize=(1.9 * count, 4.0), squeeze=False)
    for column in range(count):
        top, bottom = axes[0, column], axes[1, column]
        top.imshow(images[column, 0].numpy(), cmap="gray", vmin=low, vmax=high, interpolation="nearest")
        for order, window in enumerate(corners[column]):
            colour = "red" if order == len(corners[column]) - 1 else "orange"
            top.add_patch(Polygon(window.numpy(), closed=True, fill=False, edgecolor=colour, linewidth=1.2))
        bottom.imshow(glimpses[column, 0].numpy(), cmap="gray", vmin=low, vmax=high, interpolation="nearest")
        top.axis("off")
        bottom.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
