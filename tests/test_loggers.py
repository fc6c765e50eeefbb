"""Loggers beyond TensorBoard and CSV (conf/logger): a real run written to each and read back."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

from mlflow.tracking import MlflowClient
from wandb.proto import wandb_internal_pb2

from conftest import CACHE, ROOT, data_root

TINY = (
    "data.train_size=200", "data.val_size=100", "data.test_size=100",
    "curriculum.stages=[{shift_std_px:0}]", "curriculum.epochs_per_stage=1", "trainer.log_every_n_steps=1",
    "evaluators.shift_map.digits_per_cell=1", "evaluators.shift_map.max_shift_px=2",
)  # fmt: skip


def run(tmp_path: Path, *overrides: str) -> dict:
    """A tiny run of `python -m stn_fovea.train` (the loggers flush as a finished process does); its
    metrics.json."""
    env = {**os.environ, "STN_FOVEA_DATA": str(data_root()), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "stn_fovea.train", *TINY, *overrides, f"hydra.run.dir={tmp_path / 'run'}",
         f"paths.log_dir={tmp_path}", f"paths.cache_dir={CACHE}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads((tmp_path / "run" / "eval" / "metrics.json").read_text())


def test_an_mlflow_run_holds_the_params_curves_and_test_scores(tmp_path):
    metrics = run(tmp_path, "logger=mlflow")
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (found,) = client.search_runs([client.get_experiment_by_name("stn_fovea").experiment_id])
    assert found.info.run_name == "stn-mnist28" and found.data.params["model/net/_target_"]
    assert found.data.metrics["test/general/acc"] == metrics["accuracy"]["general"]
    assert len(client.get_metric_history(found.info.run_id, "val/acc")) == 1  # one epoch


def wandb_records(path: Path) -> list[wandb_internal_pb2.Record]:
    """The records of an offline W&B run file: a 7-byte header, then LevelDB-log records (4-byte CRC,
    2-byte length, 1-byte type: 1 whole, 2 first, 3 middle, 4 last part) in 32 KiB blocks."""
    raw, block, records, parts, position = path.read_bytes(), 32768, [], b"", 7
    while position + 7 <= len(raw):
        left = block - position % block
        _, length, kind = struct.unpack("<IHB", raw[position : position + 7])
        if left < 7 or (length, kind) == (0, 0):  # the rest of a block is padding
            position += left
            continue
        parts += raw[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(parts)
            records.append(record)
            parts = b""
    return records


def key(item) -> str:
    """A W&B item's name: a key with "/" is stored as its parts."""
    return item.key or "/".join(item.nested_key)


def test_an_offline_wandb_run_holds_the_curves_and_test_scores(tmp_path):
    metrics = run(tmp_path, "logger=wandb")
    (file,) = (tmp_path / "run" / "wandb").glob("offline-run-*/run-*.wandb")
    history: dict[str, list[float]] = {}
    summary: dict[str, float] = {}
    for record in wandb_records(file):
        if record.HasField("history"):
            for item in record.history.item:
                history.setdefault(key(item), []).append(json.loads(item.value_json))
        if record.HasField("summary"):
            summary.update({key(item): json.loads(item.value_json) for item in record.summary.update})
    assert len(history["val/acc"]) == 1 and "train/loss_epoch" in history
    assert summary["test/general/acc"] == metrics["accuracy"]["general"]
