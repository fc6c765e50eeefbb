"""The benchmark's figure: accuracy against eccentricity, a panel per noise and contrast."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from stn_fovea.evaluation.benchmark import Point  # noqa: E402
from stn_fovea.evaluation.benchmark_tables import curve_label  # noqa: E402


def curve_style(point: Point, labels: Sequence[str]) -> tuple[str, str]:
    """Colour and line format of a point's curve: the colour is its model's (experiment and options,
    ``labels`` in a fixed order) in every panel; a solid line where it was trained at the noise it is
    read at, dotted where it was trained at another."""
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colour = colours[labels.index(point.label) % len(colours)]
    return colour, "o-" if point.train_noise == point.noise else "s:"


def plot_benchmark(points: Sequence[Point], path: Path, saccades: int = 1) -> None:
    """One panel per (noise, contrast): accuracy against eccentricity, a curve per model (models that
    saccade: after ``saccades`` saccades) with its 95 % band, the reference's curve dashed in its colour
    (once per model and panel)."""
    shown = [p for p in points if p.saccades is None or p.saccades == saccades]
    noises = sorted({p.noise for p in shown})
    contrasts = sorted({p.contrast for p in shown}, reverse=True)
    curves = sorted({curve_label(p) for p in shown})
    labels = sorted({p.label for p in shown})
    fig, axes = plt.subplots(
        len(noises), len(contrasts), figsize=(4.6 * len(contrasts), 3.8 * len(noises)), squeeze=False
    )
    for row, noise in enumerate(noises):
        for column, contrast in enumerate(contrasts):
            ax = axes[row, column]
            referenced: set[str] = set()
            for name in curves:
                curve = sorted(
                    (p for p in shown if (curve_label(p), p.noise, p.contrast) == (name, noise, contrast)),
                    key=lambda p: p.eccentricity,
                )
                if not curve:
                    continue
                colour, line = curve_style(curve[0], labels)
                x = [p.eccentricity for p in curve]
                ax.plot(x, [p.mean for p in curve], line, ms=3, color=colour, label=name)
                ax.fill_between(
                    x, [p.ci_low for p in curve], [p.ci_high for p in curve], color=colour, alpha=0.2
                )
                published = [(p.eccentricity, p.reference) for p in curve if p.reference is not None]
                if published and curve[0].model not in referenced:
                    referenced.add(curve[0].model)
                    ax.plot(
                        *zip(*published, strict=True),
                        "--",
                        color=colour,
                        alpha=0.8,
                        label=f"{curve[0].model}, reference",
                    )
            ax.set_title(f"noise {noise:g}, contrast {contrast:g}")
            ax.set_xlabel("eccentricity (px)")
            ax.set_ylabel("accuracy")
            ax.set_ylim(0.0, 1.0)
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:  # a panel no model was measured in stays empty
                ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
