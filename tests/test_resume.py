"""Resuming a run: in its own directory (by hand, or by itself when a cluster requeues it), and only
the run it is."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import stn_fovea.train
from conftest import ROOT, TINY_RUN, data_root
from stn_fovea.checkpoint import read_checkpoint, resume_path, run_dir_of
from stn_fovea.errors import CheckpointError
from stn_fovea.train import train

SHORT = (*TINY_RUN, "model=stn", "evaluate=false", "curriculum=none")


def last_epoch(run: Path) -> int:
    return int(read_checkpoint(run / "checkpoints" / "last.ckpt")["epoch"])


def test_a_resumed_run_writes_into_the_run_directory_of_its_checkpoint(tmp_path):
    run = tmp_path / "runs" / "one"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "epoch3.ckpt").touch()
    fresh = str(tmp_path / "new")
    assert run_dir_of(str(run / "checkpoints" / "epoch3.ckpt"), fresh) == str(run)
    assert run_dir_of(str(run), fresh) == str(run)
    assert run_dir_of(str(run / "checkpoints"), fresh) == str(run)
    assert run_dir_of(None, fresh) == fresh and run_dir_of("last", fresh) == fresh
    assert run_dir_of(str(tmp_path / "loose.ckpt"), fresh) == fresh  # not in a run directory


def test_the_checkpoint_to_resume_from(tmp_path):
    run = tmp_path / "run"
    assert resume_path(None, run) is None  # a fresh directory starts afresh
    with pytest.raises(CheckpointError, match="holds no checkpoints/last.ckpt"):
        resume_path("last", run)
    (run / "checkpoints").mkdir(parents=True)
    stopped = run / "checkpoints" / "on_exception.ckpt"
    stopped.touch()
    assert resume_path(None, run) == stopped  # stopped in its first epoch
    last = run / "checkpoints" / "last.ckpt"
    last.touch()
    assert resume_path(None, run) == last  # requeued: goes on by itself from its last epoch's end
    assert resume_path("last", run) == last
    assert resume_path(str(run), tmp_path / "elsewhere") == last
    assert resume_path(str(run / "checkpoints"), tmp_path / "elsewhere") == last
    assert resume_path(str(run / "checkpoints" / "best.ckpt"), run) == run / "checkpoints" / "best.ckpt"
    with pytest.raises(CheckpointError, match="auto_resume=false starts a new one"):
        resume_path(None, run, auto=False)  # it would mix two runs' checkpoints
    assert resume_path(None, tmp_path / "new", auto=False) is None


def test_a_run_started_again_in_its_directory_goes_on_from_its_last_epoch(compose_train):
    first = compose_train(*SHORT, "trainer.max_epochs=1", "logger=tensorboard_csv", output="run")
    train(first)
    run = Path(first.paths.output_dir)
    train(compose_train(*SHORT, "trainer.max_epochs=2", "logger=tensorboard_csv", output="run"))
    assert last_epoch(run) == 1
    # the CSV logger keeps each attempt's rows (it would empty a folder it reuses)
    for version in ("version_0", "version_1"):
        assert "val/acc" in (run / "csv" / version / "metrics.csv").read_text()
    # one TensorBoard run: the validation curve holds both epochs, each once
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    steps = [event.step for event in events.Scalars("val/acc")]
    assert len(steps) == 2 and steps[0] < steps[1]


def test_the_training_time_adds_up_over_the_attempts_of_a_resumed_run(compose_train):
    train(compose_train(*SHORT, "trainer.max_epochs=1", output="run"))
    last = Path(compose_train(*SHORT, output="run").paths.output_dir) / "checkpoints" / "last.ckpt"
    state = torch.load(last, weights_only=False)
    state["callbacks"]["Timer"]["time_elapsed"]["train"] = 1000.0  # as if the first attempt took 1000 s
    torch.save(state, last)
    total = train(compose_train(*SHORT, "trainer.max_epochs=2", output="run"))["train_seconds"]
    assert 1000.0 < total < 1060.0  # the first attempt's time and the second's epoch
    del state["callbacks"]["Timer"]  # a checkpoint from before runs recorded their time: no total
    torch.save(state, last)
    assert "train_seconds" not in train(compose_train(*SHORT, "trainer.max_epochs=3", output="run"))


def test_a_resumed_run_lists_the_commit_of_each_attempt(compose_train, monkeypatch):
    """Each attempt adds the commit of its code to the checkpoint (once, however many checkpoints it
    loads); a checkpoint from before runs recorded theirs counts as "unrecorded"."""
    last = Path(compose_train(*SHORT, output="run").paths.output_dir) / "checkpoints" / "last.ckpt"

    def attempt(commit: str, epochs: int) -> list[str]:
        monkeypatch.setattr(stn_fovea.train, "code_commit", lambda: commit)
        train(compose_train(*SHORT, f"trainer.max_epochs={epochs}", output="run"))
        return torch.load(last, weights_only=False)["stn_fovea"]["commits"]

    assert attempt("a" * 40, 1) == ["a" * 40]
    assert attempt("b" * 40, 2) == ["a" * 40, "b" * 40]
    assert attempt("b" * 40, 3) == ["a" * 40, "b" * 40]  # the same code again
    state = torch.load(last, weights_only=False)
    del state["stn_fovea"]["commits"]  # saved before runs recorded their commits
    torch.save(state, last)
    assert attempt("c" * 40, 4) == ["unrecorded", "c" * 40]


def test_a_checkpoint_of_another_run_is_refused(compose_train):
    train(compose_train(*SHORT, "trainer.max_epochs=1", output="run"))
    run = Path(compose_train(*SHORT, output="run").paths.output_dir)
    recorded = (run / "config_resolved.yaml").read_text()
    other = compose_train(*SHORT, "trainer.max_epochs=2", "model=what", output="run")
    with pytest.raises(CheckpointError, match="belongs to another run .*model_name=stn there, what here"):
        train(other)
    noisier = compose_train(*SHORT, "trainer.max_epochs=2", "data.noise=1.0", output="run")
    with pytest.raises(CheckpointError, match=r"data\.noise=0\.75 there, 1\.0 here"):
        train(noisier)
    assert (run / "config_resolved.yaml").read_text() == recorded  # the run's record stays its own
    # where and how long it runs may change: a longer schedule on the same run goes on
    train(compose_train(*SHORT, "trainer.max_epochs=2", "trainer.enable_model_summary=true", output="run"))
    assert last_epoch(run) == 1


def test_resuming_from_the_command_line_continues_in_the_original_directory(tmp_path):
    env = {**os.environ, "STN_FOVEA_DATA": str(data_root()), "OMP_NUM_THREADS": "1"}
    run, logs = tmp_path / "run", tmp_path / "logs"
    command = [sys.executable, "-m", "stn_fovea.train", *SHORT, f"paths.log_dir={logs}"]

    def train_cli(*overrides: str) -> None:
        result = subprocess.run(
            [*command, *overrides], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, result.stderr[-3000:]

    train_cli("trainer.max_epochs=1", f"hydra.run.dir={run}")
    train_cli("trainer.max_epochs=2", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}")
    assert last_epoch(run) == 1
    assert not logs.exists()  # no second run directory
    assert "continuing from" in (run / "train.log").read_text()
