"""Test-set scores over seeds: accuracy and macro F1 of every test protocol, one row per experiment,
model, noise and protocol, beside the published score where there is one.

The grid benchmark (``benchmark.py``) is the study's figure for the 128x128 runs; this is the table of
every run's fixed test sets (clean MNIST, the 28x28 central/general protocols, the 128x128 general and
per-contrast sets), with the mean gaze error (px from the glimpse's centre to the digit's) of the
models whose glimpse is a window. The interval (``benchmark.seed_interval``) adds Student's t over
seeds that differ and Wilson's over the test digits in quadrature; Wilson's alone for one run or seeds
that agree. ``python -m stn_fovea.compare DIR --out OUT``
writes it as protocols.csv and protocols.md.
"""

from __future__ import annotations

import csv
import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from stn_fovea.evaluation.benchmark import (
    PER_CONTRAST_MODELS,
    RunResult,
    changes_suffix,
    group_seeds,
    scored_weights,
    seed_interval,
    train_epochs,
)
from stn_fovea.evaluation.reference import PROTOCOL_REFERENCE, PublishedScore

COLUMNS = ["experiment", "model", "noise", "train_noise", "train_contrast", "protocol", "seeds",
           "accuracy", "sd", "ci_low", "ci_high", "ci", "f1_macro", "f1_sd", "gaze_error_px", "gaze_sd",
           "test_selected", "published",
           "published_sd", "published_selection", "digits", "runs", "weights"]  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Score(RunResult):
    """One test protocol of one evaluated run."""

    protocol: str
    train_contrast: float | None  # the contrast of a per-contrast net (What/Where), else None
    f1_macro: float | None
    test_selected: float | None = None  # the best of the per-epoch test scores, where it was kept
    gaze_error_px: float | None = None  # mean distance glimpse centre - digit centre, where measured
    weights: str | None = None  # "final", "best val", "best on test digits"; None where nothing says


@dataclass(frozen=True)
class Row:
    """A test protocol aggregated over the runs (seeds) that measured it."""

    label: str
    model: str
    noise: float
    train_noise: float
    train_contrast: float | None
    protocol: str
    seeds: int
    accuracy: float
    sd: float | None
    ci_low: float
    ci_high: float
    ci: str  # "seeds+digits" (t and Wilson in quadrature), "seeds" (t) or "digits" (Wilson)
    f1_macro: float | None
    f1_sd: float | None
    gaze_error_px: float | None
    gaze_sd: float | None
    test_selected: float | None
    published: PublishedScore | None
    digits: int
    runs: tuple[str, ...]
    weights: str | None = None

    @property
    def name(self) -> str:
        """The model, the contrast of a per-contrast net, the training noise where the evaluation's
        differs, and which weights were scored where the runs say (the table names the experiment in a
        row above its models)."""
        name = self.model + (f" ({self.weights})" if self.weights else "")
        if self.train_contrast is not None:
            name += f" c{self.train_contrast:g}"
        return name if self.train_noise == self.noise else f"{name} [trained {self.train_noise:g}]"


def read_scores(metrics_path: Path) -> list[Score]:
    """The test-protocol scores of one evaluated run (its metrics.json)."""
    metrics = json.loads(metrics_path.read_text())
    model = str(metrics["model"])
    label = str(metrics.get("experiment") or model) + changes_suffix(metrics.get("model_changes") or [])
    seed, noise = metrics.get("seed"), float(metrics["noise"])
    selected = metrics.get("test_selected") or {}
    selected_protocol = str(selected.get("metric", "")).split("/")[1:2]  # test_each_epoch/<protocol>/acc
    trained = metrics.get("train_contrast") or []
    per_contrast = model in PER_CONTRAST_MODELS and len(trained) == 2 and trained[0] == trained[1]
    f1, gaze = metrics.get("f1_macro") or {}, metrics.get("gaze_error_px") or {}
    return [
        Score(
            label=label,
            model=model,
            noise=noise,
            protocol=protocol,
            accuracy=float(accuracy),
            train_noise=float(metrics.get("train_noise", noise)),
            train_contrast=float(trained[0]) if per_contrast else None,
            f1_macro=None if protocol not in f1 else float(f1[protocol]),
            digits=int(metrics.get("test_digits") or 0),
            seed=None if seed is None else int(seed),
            run=str(metrics_path.parent),
            epochs=train_epochs(metrics),
            test_selected=float(selected["accuracy"]) if [protocol] == selected_protocol else None,
            gaze_error_px=None if protocol not in gaze else float(gaze[protocol]),
            weights=scored_weights(metrics),
        )
        for protocol, accuracy in (metrics.get("accuracy") or {}).items()
    ]


def summarise(scores: Iterable[Score]) -> list[Row]:
    """One row per (experiment and schedule length, model, noise, protocol, weights scored) over its
    seeds; a run that repeats a seed of its group is left out and named on stderr."""

    def key(score: Score) -> tuple:
        contrast = -1.0 if score.train_contrast is None else score.train_contrast
        weights = score.weights or ""
        return score.label, score.model, score.noise, score.train_noise, contrast, score.protocol, weights

    groups = group_seeds(scores, key)
    rows = []
    for (label, model, noise, train_noise, contrast, protocol, weights), members in sorted(groups.items()):
        accuracy = [m.accuracy for m in members]
        digits = min(m.digits for m in members)
        mean, low, high, kind = seed_interval(accuracy, digits)
        sd = _sd(accuracy)
        f1, gaze = (
            _of_every_seed(m.f1_macro for m in members),
            _of_every_seed(m.gaze_error_px for m in members),
        )
        selected = _of_every_seed(m.test_selected for m in members)
        rows.append(
            Row(label, model, noise, train_noise, None if contrast < 0 else contrast, protocol, len(members),
                mean, sd, low, high, kind, statistics.fmean(f1) if f1 else None, _sd(f1) if f1 else None,
                statistics.fmean(gaze) if gaze else None, _sd(gaze) if gaze else None,
                statistics.fmean(selected) if selected else None,
                PROTOCOL_REFERENCE.get((label, model, protocol)), digits, tuple(m.run for m in members),
                weights or None)
        )  # fmt: skip
    return rows


def _of_every_seed(values: Iterable[float | None]) -> list[float]:
    """The values of a score that every seed has (F1, gaze error, best test epoch); none where any
    seed lacks it, so that a mean is never over a subset of the seeds."""
    listed = list(values)
    present = [value for value in listed if value is not None]
    return present if len(present) == len(listed) else []


def _sd(values: Sequence[float]) -> float | None:
    """The sample standard deviation (n - 1); None for fewer than two values."""
    return statistics.stdev(values) if len(values) > 1 else None


def _percent(value: float | None, sd: float | None = None) -> str:
    if value is None:
        return ""
    return f"{100 * value:.2f}" + ("" if sd is None else f" ({100 * sd:.2f})")


def markdown_table(rows: Sequence[Row]) -> str:
    """Accuracy % as mean (sd) over seeds with its 95 % interval, macro F1, the seeds (n); the published
    score in a row of its own beneath; a column for the mean gaze error in px (sd) where a run measured
    it, and one for the best-test-epoch selection where a run kept it. An experiment's name is a row
    above its models' rows; within 80 columns for names up to about 24 characters."""
    gaze = any(r.gaze_error_px is not None for r in rows)
    selected = any(r.test_selected is not None for r in rows)
    extra = (" gaze px |" if gaze else "") + (" best ep. |" if selected else "")
    blank = " |" * (gaze + selected)
    header = "| run | test | noise | acc % (sd) | 95 % CI | F1 | n |" + extra
    lines = [header, "|---|---|---|---|---|---|---|" + "---|" * (gaze + selected)]
    heading = None
    for r in rows:
        if r.label != r.model and r.label != heading:  # an experiment: its name above its models' rows
            lines.append(f"| *{r.label}* | | | | | | |" + blank)
        heading = r.label
        f1 = "" if r.f1_macro is None else f"{r.f1_macro:.3f}".replace("0.", ".", 1)
        interval = f"{100 * r.ci_low:.2f}-{100 * r.ci_high:.2f}"
        accuracy = _percent(r.accuracy, r.sd)
        line = f"| {r.name} | {r.protocol} | {r.noise:g} | {accuracy} | {interval} | {f1} | {r.seeds} |"
        if gaze:
            line += f" {_pixels(r.gaze_error_px, r.gaze_sd)} |"
        lines.append(line + (f" {_percent(r.test_selected)} |" if selected else ""))
        if r.published is not None:
            p = r.published
            spread = "" if p.sd is None else f" ({p.sd:.2f})"
            lines.append(f"| (published: {p.selection}) | | | {p.mean:.2f}{spread} | | | {p.runs} |" + blank)
    return "\n".join(lines) + "\n"


def _pixels(value: float | None, sd: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.1f}" + ("" if sd is None else f" ({sd:.1f})")


def write_csv(rows: Sequence[Row], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for r in rows:
            p = r.published
            writer.writerow(
                [r.label, r.model, r.noise, r.train_noise, _fmt(r.train_contrast), r.protocol, r.seeds,
                 f"{r.accuracy:.4f}", _fmt(r.sd), f"{r.ci_low:.4f}", f"{r.ci_high:.4f}", r.ci,
                 _fmt(r.f1_macro), _fmt(r.f1_sd), _fmt(r.gaze_error_px), _fmt(r.gaze_sd),
                 _fmt(r.test_selected),
                 "" if p is None else _fmt(p.mean / 100),
                 "" if p is None else _fmt(None if p.sd is None else p.sd / 100),
                 "" if p is None else p.selection, r.digits, " ".join(r.runs), r.weights or ""]
            )  # fmt: skip


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"
