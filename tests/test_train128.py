"""Runs of the real pipeline on the 128x128 retina data: every model, the curriculum, LR restarts."""

import csv
import json
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import SHORT_RUN_128, TINY_RUN_128
from stn_fovea.evaluation.reference import ECCENTRICITY_GRID_128
from stn_fovea.train import train

RECORD = (
    "+callbacks.record._target_=recorders.EpochRecorder",
    "+callbacks.record.path=${paths.output_dir}/epochs.json",
)


def epochs(output_dir: str) -> dict[int, dict]:
    return {int(k): v for k, v in json.loads((Path(output_dir) / "epochs.json").read_text()).items()}


@pytest.mark.parametrize("model", ["stn128", "atn", "polo_atn", "peripheral_atn"])
def test_a_short_run_of_every_128_model_writes_its_outputs(compose_train, model):
    cfg = compose_train(*SHORT_RUN_128, f"model={model}")
    metrics = train(cfg)
    run = Path(cfg.paths.output_dir)
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert {"test/general/acc", "test/c07/acc", "test/c03/acc"} <= set(metrics["test"])
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert {"glimpses", "glimpse_boxes", "eval/confusion_matrix", "eval/eccentricity_grid"} <= set(
        events.Tags()["images"]
    )
    assert {"pose/scale", "pose/tx", "pose/ty", "theta/a11"} <= set(events.Tags()["histograms"])
    assert {"curriculum/eccentricity_std_px", "curriculum/contrast", "curriculum/stage"} <= set(
        events.Tags()["scalars"]
    )
    for name in ("grid.csv", "grid.png", "glimpse_boxes.png", "glimpses.png", "metrics.json"):
        assert (run / "eval" / name).is_file(), name
    rows = list(csv.DictReader((run / "eval" / "grid.csv").open()))
    assert [(row["contrast"], row["eccentricity_px"]) for row in rows] == [
        ("0.7", "10.000"),
        ("0.7", "40.000"),
        ("0.3", "10.000"),
        ("0.3", "40.000"),
    ]
    # the reference cell is filled where the study measured this model (40 px), empty elsewhere
    measured = model in ECCENTRICITY_GRID_128
    assert [row["reference_accuracy"] != "" for row in rows] == [False, measured, False, measured]
    grid = json.loads((run / "eval" / "metrics.json").read_text())["grid"]
    assert grid["digits_per_cell"] == 2 and set(grid["accuracy"]) == {"0.7", "0.3"}


def test_eccentricity_curriculum_stages_and_learning_rate_restarts(compose_train):
    cfg = compose_train(
        *TINY_RUN_128,
        *RECORD,
        "model=polo_atn",
        "evaluate=false",
        "data.train_size=200",
        "optimizer.lr=0.004",
        "optimizer.momentum=0.9",
        "scheduler=step",
        "scheduler.step_size=1",
        "scheduler.gamma=0.5",
        "curriculum.epochs_per_stage=2",
        "curriculum.stages=[{eccentricity_std_px:5,contrast:0.7},{eccentricity_std_px:40,contrast:0.7},"
        "{eccentricity_std_px:40,contrast:[0.3,0.7],lr_restart:0.1}]",
        "trainer.max_epochs=6",
    )
    train(cfg)
    record = epochs(cfg.paths.output_dir)
    # (eccentricity std, fixed radius (None: drawn), contrast (low, high)) of each epoch's recipe
    assert [record[e]["stage"] for e in range(6)] == [
        {"eccentricity_std_px": 5.0, "radius_px": None, "contrast": [0.7, 0.7]}
    ] * 2 + [{"eccentricity_std_px": 40.0, "radius_px": None, "contrast": [0.7, 0.7]}] * 2 + [
        {"eccentricity_std_px": 40.0, "radius_px": None, "contrast": [0.3, 0.7]}
    ] * 2
    assert len({tuple(record[e]["level"]) for e in range(6)}) == 3  # each stage its own draw
    assert max(record[e]["max_abs_shift"] for e in (0, 1)) < max(record[e]["max_abs_shift"] for e in (2, 3))
    # StepLR halves the LR every epoch; the third stage restarts at a tenth of the initial LR
    lrs = [record[e]["lr"] for e in range(6)]
    assert lrs == pytest.approx([0.004, 0.002, 0.001, 0.0005, 0.0004, 0.0002])
    checkpoint = torch.load(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["lr_schedulers"][0]["last_epoch"] == 2  # the restarted scheduler's own count
