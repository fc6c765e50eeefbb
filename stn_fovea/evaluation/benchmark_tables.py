"""The benchmark's tables: every cell in benchmark.csv, the means over eccentricities in benchmark.md."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from stn_fovea.evaluation.benchmark import Point, digits_half_width, mean_interval, spread

COLUMNS = ["model", "noise", "contrast", "eccentricity", "saccades", "mean", "ci_low", "ci_high", "seeds",
           "reference", "ci", "digits", "experiment", "train_noise", "runs"]  # fmt: skip


def write_csv(points: Sequence[Point], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for p in points:
            saccades = "" if p.saccades is None else p.saccades
            reference = "" if p.reference is None else f"{p.reference:.4f}"
            writer.writerow(
                [p.model, p.noise, p.contrast, f"{p.eccentricity:.3f}", saccades, f"{p.mean:.4f}",
                 f"{p.ci_low:.4f}", f"{p.ci_high:.4f}", p.seeds, reference, p.ci, p.digits, p.label,
                 p.train_noise, " ".join(p.runs)]
            )  # fmt: skip


def curve_label(point: Point) -> str:
    """The experiment (or model), its number of saccades, and the training noise when the evaluation's
    differs (the STNs trained at 0.75 read at 1.0, What/Where trained at 1.0 read at 0.75)."""
    label = point.label if point.saccades is None else f"{point.label} ({point.saccades} sacc.)"
    return label if point.train_noise == point.noise else f"{label} [trained {point.train_noise:g}]"


def _short(value: float) -> str:
    """0.771 -> .771: three decimals in four characters."""
    return f"{value:.3f}".replace("0.", ".", 1)


def mean_over_cells_interval(cells: Sequence[Point]) -> tuple[float, float]:
    """The mean over ``cells`` (one contrast's eccentricities) and the half-width of its 95 % interval.
    Every cell reads the same test digits, so their mean is no surer than one cell's digit count makes it:
    a digit's mean over the cells lies in [0, 1], its variance is at most p(1 - p), and Wilson's over one
    cell's digits is a (conservative) interval of the test set's sampling. Where every cell has the same
    runs and the seeds' own means differ, Student's t over those means adds in quadrature (as in
    :func:`seed_interval`); where the runs differ between cells, the cells' mean half-width."""
    mean = _mean(q.mean for q in cells)
    digits = min(q.digits for q in cells)
    test_set = digits_half_width(mean, digits)
    runs = set(cells[0].runs)
    if len(runs) > 1 and all(set(q.runs) == runs and len(q.values) == len(q.runs) for q in cells):
        by_run = [dict(zip(q.runs, q.values, strict=True)) for q in cells]
        seed_means = [_mean(values[run] for values in by_run) for run in sorted(runs)]
        if not spread(seed_means):  # the seeds agree: the test digits are the only sample that shows
            return mean, test_set
        _, low, high = mean_interval(seed_means)
        return mean, math.hypot((high - low) / 2, test_set)
    if len(runs) > 1 or not digits:  # runs that differ between cells: the cells' mean half-width
        return mean, _mean((q.ci_high - q.ci_low) / 2 for q in cells)
    return mean, test_set


def markdown_table(points: Sequence[Point]) -> str:
    """Means over eccentricities per contrast, with the half-width of the mean's 95 % interval
    (:func:`mean_over_cells_interval`): one row per curve of the benchmark and evaluation noise, each
    followed by the reference's row where it has one; rows stay within 80 characters for plain model
    names (an option or a schedule length in a name widens them)."""
    rows: dict[tuple[str, float], dict[float, list[Point]]] = defaultdict(lambda: defaultdict(list))
    for p in points:
        rows[curve_label(p), p.noise][p.contrast].append(p)
    contrasts = sorted({p.contrast for p in points}, reverse=True)
    header = "| model | noise | " + " | ".join(f"c={c:g}" for c in contrasts) + " | seeds |"
    lines = [header, "|---|---|" + "---|" * len(contrasts) + "---|"]
    for (label, noise), by_contrast in rows.items():
        means, refs, seeds = [], [], set()
        for c in contrasts:
            cell = by_contrast.get(c, [])
            if not cell:
                means.append("")
                refs.append("")
                continue
            mean, half = mean_over_cells_interval(cell)
            means.append(f"{_short(mean)} ±{_short(half)}")
            published = [q.reference for q in cell]
            refs.append("" if None in published else _short(_mean(published)))  # type: ignore[arg-type]
            seeds.update(q.seeds for q in cell)
        count = f"{min(seeds)}" if len(seeds) == 1 else f"{min(seeds)}-{max(seeds)}"
        lines.append(f"| {label} | {noise:g} | " + " | ".join(means) + f" | {count} |")
        if any(refs):
            lines.append(f"| (reference) | {noise:g} | " + " | ".join(refs) + " | |")
    return "\n".join(lines) + "\n"


def _mean(values: Iterable[float]) -> float:
    listed = list(values)
    return sum(listed) / len(listed)
