"""A run's per-epoch validation curve beside the reference notebook's printed one (whatwhere.md 5.3).

Under ``conf/protocol/reference.yaml`` a run scores the test digits at its current curriculum stage
after every epoch (``val_level/acc``), the measure the reference printed after each of its 110 epochs
(``reference_curves.TRAINING_CURVES_128``). The two are not the same images (our draws, not the reference's
Python 3.7 hashes), so a curve within a few points of the other, stage by stage, is the expectation.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from stn_fovea.evaluation.reference_curves import TRAINING_CURVES_128  # noqa: E402

STAGE_METRIC = "val_level/acc"  # the test digits at the current stage (the reference's printout)
STAGE_EPOCHS = 10  # the reference schedules change stage every 10 epochs


def epoch_curve(run_dir: Path, tag: str = STAGE_METRIC) -> dict[int, float]:
    """``tag`` per epoch (0-based) from a run's TensorBoard events, every attempt of a resumed run
    included (a value logged twice for one epoch, by an attempt that did not finish, keeps the last)."""
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    tags = set(events.Tags()["scalars"])
    if tag not in tags or "epoch" not in tags:
        return {}
    epoch_at = {event.step: int(event.value) for event in events.Scalars("epoch")}
    return {epoch_at[e.step]: float(e.value) for e in events.Scalars(tag) if e.step in epoch_at}


def reference_curve(experiment: str | None) -> tuple[str, list[float]] | None:
    """The reference curve a run on a reference schedule (``experiment=<model>_reference``) is set
    beside, and whose it is: the schedule's own model's, whichever model ran it (``experiment=
    atn_reference model=peripheral_atn`` beside the ATN's). None for any other schedule: epoch by
    epoch, another schedule's stages do not line up with the reference's."""
    if experiment and experiment.endswith("_reference"):
        scheduled = experiment.removesuffix("_reference")
        if scheduled in TRAINING_CURVES_128:
            return scheduled, TRAINING_CURVES_128[scheduled]
    return None


def schedule_change(config: Mapping[str, Any], epochs: int) -> str | None:
    """What a run's config changed in a reference schedule of ``epochs`` epochs, a stage every
    ``STAGE_EPOCHS`` (e.g. ``curriculum.epochs_per_stage=1`` on the command line); None when nothing it
    states differs. Such a run's epochs do not line up with the reference's."""
    max_epochs = (config.get("trainer") or {}).get("max_epochs")
    curriculum = config.get("curriculum") or {}
    per_stage, stages = curriculum.get("epochs_per_stage"), curriculum.get("stages")
    if max_epochs is not None and max_epochs != epochs:
        return f"trainer.max_epochs={max_epochs}, the reference's {epochs}"
    durations = [per_stage] if isinstance(per_stage, int) else list(per_stage or [])
    if any(epochs_of_stage != STAGE_EPOCHS for epochs_of_stage in durations):
        return f"curriculum.epochs_per_stage={per_stage}, the reference's {STAGE_EPOCHS}"
    if stages is not None and len(stages) * STAGE_EPOCHS != epochs:
        return f"{len(stages)} curriculum stages, the reference's {epochs // STAGE_EPOCHS}"
    return None


def write_comparison(run_dir: Path, found: tuple[str, list[float]], out: Path, label: str) -> Path | None:
    """``<out>/training_curve_<label>.csv`` and ``.png``: our curve and the reference's (``found``, from
    :func:`reference_curve`), epoch by epoch (numbered from 1 as the notebooks print them); None when
    the run logged none."""
    ours = epoch_curve(run_dir)
    if not ours:
        return None
    model, reference = found
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"training_curve_{label}.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", "ours", "reference", "difference"])
        for epoch, published in enumerate(reference, start=1):
            value = ours.get(epoch - 1)
            row = [epoch, "" if value is None else f"{value:.4f}", f"{published:.4f}"]
            writer.writerow(row + ["" if value is None else f"{value - published:+.4f}"])
    figure, axis = plt.subplots(figsize=(7, 3.5))
    axis.plot(range(1, len(reference) + 1), reference, "--", color="grey", label=f"{model}, reference")
    epochs = sorted(ours)
    axis.plot([e + 1 for e in epochs], [ours[e] for e in epochs], color="C0", label=label)
    for stage_end in range(STAGE_EPOCHS, len(reference), STAGE_EPOCHS):
        axis.axvline(stage_end + 0.5, color="0.9", zorder=0)
    axis.set_xlabel(f"epoch (a curriculum stage every {STAGE_EPOCHS})")
    axis.set_ylabel("test accuracy at the stage")
    axis.set_ylim(0, 1)
    axis.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path.with_suffix(".png"), dpi=120)
    plt.close(figure)
    return path
