"""The study's benchmark: every model's eccentricity grid, aggregated over seeds, beside the reference.

Reads the grid.csv and metrics.json of evaluated runs (a training run's ``eval/`` or an
``evaluate`` output), groups the cells by (model, noise, saccades, contrast, eccentricity) and gives the
mean over seeds with a 95 % confidence interval: Student's t over the seeds where there are several
that differ, a Wilson interval over the cell's test digits where there is one seed or the seeds agree
(the test set is then the only finite sample that shows; What/Where's 0-saccade control, read by
the same What whatever the Where net's seed, is one). Its tables (benchmark.csv, .md) are
benchmark_tables', its figure (benchmark.png) benchmark_figure's (``python -m stn_fovea.compare
--out DIR``).
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

from omegaconf import OmegaConf
from scipy import stats

from stn_fovea.checkpoint_names import weights_of
from stn_fovea.evaluation.reference import grid_reference, published_cell

PER_CONTRAST_MODELS = ("what_where",)  # one net per contrast: each contrast's cells come from its own net


@dataclass(frozen=True, kw_only=True)
class RunResult:
    """What one evaluated run measured on one test set or grid cell."""

    label: str  # the experiment (or the model when none was named) and its evaluation-time options
    model: str
    noise: float
    train_noise: float
    accuracy: float
    digits: int
    seed: int | None
    run: str
    epochs: int | None = None  # the length of the run's training schedule, when metrics.json says


@dataclass(frozen=True, kw_only=True)
class Cell(RunResult):
    """One grid cell of one evaluated run."""

    saccades: int | None
    contrast: float
    eccentricity: float


@dataclass(frozen=True)
class Point:
    """A cell aggregated over the runs (seeds) that measured it."""

    label: str
    model: str
    noise: float
    train_noise: float
    saccades: int | None
    contrast: float
    eccentricity: float
    mean: float
    ci_low: float
    ci_high: float
    seeds: int
    ci: str  # "seeds+digits" (t and Wilson in quadrature), "seeds" (t) or "digits" (Wilson)
    digits: int
    reference: float | None
    runs: tuple[str, ...]
    values: tuple[float, ...] = ()  # each run's accuracy, in the order of ``runs``


def wilson(successes: float, trials: int) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion, ``successes`` (a count, rounded) of ``trials``."""
    interval = stats.binomtest(round(successes), trials).proportion_ci(0.95, method="wilson")
    return float(interval.low), float(interval.high)


def spread(values: Sequence[float]) -> bool:
    """Whether the seeds' values differ: a t interval says something only then (it is 0 wide, or NaN
    in scipy, for equal values, yet the test digits still sample)."""
    return len(values) > 1 and max(values) > min(values)


def mean_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean and 95 % t interval over seeds whose values differ (see :func:`spread`)."""
    if not spread(values):
        raise ValueError(f"a t interval needs at least 2 values that differ, got {list(values)}")
    mean = sum(values) / len(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=mean, scale=stats.sem(values))
    return mean, float(low), float(high)


def read_cells(metrics_path: Path) -> list[Cell]:
    """The grid cells of one evaluated run (none when it has no grid.csv). A per-contrast model (one net
    per training contrast) keeps only the cells at the contrast it was trained at."""
    metrics = json.loads(metrics_path.read_text())
    grid = metrics_path.parent / "grid.csv"
    if not grid.is_file():
        return []
    model, noise, seed = str(metrics["model"]), float(metrics["noise"]), metrics.get("seed")
    label = str(metrics.get("experiment") or model) + changes_suffix(metrics.get("model_changes") or [])
    weights = scored_weights(metrics)
    label += f" ({weights})" if weights else ""  # the final weights or the best validation checkpoint
    train_noise = float(metrics.get("train_noise", noise))
    trained = metrics.get("train_contrast") or []
    fixed = float(trained[0]) if len(trained) == 2 and trained[0] == trained[1] else None
    epochs = train_epochs(metrics)
    cells = []
    with grid.open() as handle:
        for row in csv.DictReader(handle):
            contrast = float(row["contrast"])
            if model in PER_CONTRAST_MODELS and fixed is not None and abs(contrast - fixed) > 1e-6:
                continue
            cells.append(
                Cell(
                    label=label,
                    model=model,
                    noise=noise,
                    train_noise=train_noise,
                    saccades=int(row["saccades"]) if row.get("saccades") else None,
                    contrast=contrast,
                    eccentricity=round(float(row["eccentricity_px"]), 3),
                    accuracy=float(row["accuracy"]),
                    digits=int(row["digits"]),
                    seed=None if seed is None else int(seed),
                    run=str(metrics_path.parent),
                    epochs=epochs,
                )
            )
    return cells


def scored_weights(metrics: Mapping[str, Any]) -> str | None:
    """Which weights an evaluation (its metrics.json) scored, as tables name them (``weights_of``)."""
    return weights_of(metrics.get("checkpoint"), metrics.get("weights"))


def train_epochs(metrics: dict) -> int | None:
    """The length of the run's training schedule: metrics.json's ``train_epochs``, or for a run
    evaluated before that was recorded, the schedule of the config_resolved.yaml beside its checkpoint
    (None when neither says)."""
    if "train_epochs" in metrics:
        return metrics["train_epochs"]
    checkpoint = Path(str(metrics.get("checkpoint") or ""))
    if (
        len(checkpoint.parents) < 2
        or not (config := checkpoint.parents[1] / "config_resolved.yaml").is_file()
    ):
        return None
    from stn_fovea.run_setup import recorded_epochs  # here: compare needs Lightning only for old runs

    return recorded_epochs(OmegaConf.load(config))  # type: ignore[arg-type]


def changes_suffix(changes: Sequence[str]) -> str:
    """How a curve names the evaluation-time model options it was read with (``+model.<key>=<value>``),
    in sorted order: "model.net.reencode_as_trained=True" -> " +reencode_as_trained", other values
    kept after "="; the full key where two options end in the same name."""
    keys = [change.partition("=")[0] for change in changes]
    names = [key.rsplit(".", 1)[-1] for key in keys]
    suffix = ""
    for key, name, change in sorted(zip(keys, names, changes, strict=True)):
        value = change.partition("=")[2]
        shown = name if names.count(name) == 1 else key
        suffix += f" +{shown}" if value == "True" else f" +{shown}={value}"
    return suffix


def reference_value(
    model: str, noise: float, saccades: int | None, contrast: float, radius: float
) -> float | None:
    """The published accuracy of this cell, when the study measured it at this noise."""
    return published_cell(grid_reference(model, saccades, noise), contrast, radius)


class Scheduled(Protocol):
    """A dataclass row of one run: its label, and the length of its training schedule."""

    label: str
    epochs: int | None


S = TypeVar("S", bound=Scheduled)


def name_schedules(cells: Iterable[S]) -> list[S]:
    """Runs of one experiment trained for different numbers of epochs are not seeds of one protocol:
    where an experiment's runs differ in length, each curve's name gets its length ("(25 epochs)")."""
    listed = list(cells)
    lengths: dict[str, set[int | None]] = defaultdict(set)
    for cell in listed:
        lengths[cell.label].add(cell.epochs)
    return [
        replace(cell, label=f"{cell.label} ({cell.epochs or '?'} epochs)")  # type: ignore[type-var]
        if len(lengths[cell.label]) > 1
        else cell
        for cell in listed
    ]


class Seeded(Scheduled, Protocol):
    """A row of one run that can be pooled over seeds."""

    seed: int | None
    run: str


T = TypeVar("T", bound=Seeded)


def group_seeds(rows: Iterable[T], key: Callable[[T], tuple]) -> dict[tuple, list[T]]:
    """The rows grouped by ``key`` (after :func:`name_schedules`), one per seed. Two runs with the same
    seed in one group are not independent samples: the first is kept and the others are named on
    stderr. A run without a seed counts as a seed of its own."""
    groups: dict[tuple, dict[int | str, T]] = defaultdict(dict)
    for row in name_schedules(rows):
        group = groups[key(row)]
        seed: int | str = row.run if row.seed is None else row.seed
        if seed in group:
            print(
                f"stn_fovea: compare: {row.run} repeats seed {seed} of {group[seed].run}; left out",
                file=sys.stderr,
            )
            continue
        group[seed] = row
    return {k: list(v.values()) for k, v in groups.items()}


def digits_half_width(accuracy: float, digits: int) -> float:
    """Half-width of the 95 % Wilson interval of ``accuracy`` read on ``digits`` test digits: the test
    set's own sampling error (0 without a count)."""
    if not digits:
        return 0.0
    low, high = wilson(accuracy * digits, digits)
    return (high - low) / 2


def seed_interval(values: Sequence[float], digits: int) -> tuple[float, float, float, str]:
    """Mean and 95 % interval of an accuracy that one or more seeds read on the same ``digits`` test
    digits. Two errors add: the seeds' (Student's t, where they differ) and the finite test set's, which
    every seed shares, so that averaging seeds does not shrink it (Wilson's at the mean). Seeds that
    differ: the two half-widths in quadrature ("seeds+digits"; "seeds" without a digit count); one run,
    or seeds that agree: Wilson's alone ("digits"). An accuracy's interval stays within [0, 1] (two
    far-apart seeds give a t interval wider than that)."""
    if spread(values):
        mean, low, high = mean_interval(values)
        half = math.hypot((high - low) / 2, digits_half_width(mean, digits))
        return mean, max(0.0, mean - half), min(1.0, mean + half), "seeds+digits" if digits else "seeds"
    low, high = wilson(values[0] * digits, digits) if digits else (math.nan, math.nan)
    return values[0], low, high, "digits"


def aggregate(cells: Iterable[Cell]) -> list[Point]:
    """One point per (experiment or model and its schedule's length, evaluation and training noise,
    saccades, contrast, eccentricity), over the runs (seeds) that measured it."""
    groups = group_seeds(
        cells,
        lambda c: (c.label, c.model, c.noise, c.train_noise, c.saccades, c.contrast, c.eccentricity),
    )
    points = []
    for key, members in sorted(groups.items(), key=_order):
        label, model, noise, train_noise, saccades, contrast, radius = key
        digits = min(m.digits for m in members)
        mean, low, high, kind = seed_interval([m.accuracy for m in members], members[0].digits)
        reference = reference_value(model, noise, saccades, contrast, radius)
        points.append(
            Point(label, model, noise, train_noise, saccades, contrast, radius, mean, low, high, len(members),
                  kind, digits, reference, tuple(m.run for m in members), tuple(m.accuracy for m in members))
        )  # fmt: skip
    return name_models(points)


def name_models(points: Sequence[Point]) -> list[Point]:
    """An experiment that trained several models (``experiment=quick model=a,b``) is a curve per model:
    where a label spans models, each point's label gets its model ("quick: a"), so that the table and
    the figure, which name curves by label, do not pool two models into one curve."""
    models: dict[str, set[str]] = defaultdict(set)
    for p in points:
        models[p.label].add(p.model)
    return [replace(p, label=f"{p.label}: {p.model}") if len(models[p.label]) > 1 else p for p in points]


def _order(item: tuple[tuple, dict]) -> tuple:
    label, model, noise, train_noise, saccades, contrast, radius = item[0]
    return label, noise, train_noise, -1 if saccades is None else saccades, -contrast, radius
