"""Sweeps on the launchers users run (basic, joblib, submitit): one failing job leaves the others
running; jobs run in parallel; a preempted job goes on when requeued. A diverging run stops with one
message and a checkpoint."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import ROOT, TINY_RUN, data_root
from stn_fovea.callbacks.finite_loss import DivergedError
from stn_fovea.callbacks.lost_glimpse import LostGlimpseError
from stn_fovea.checkpoint import read_checkpoint
from stn_fovea.sweep import FAILURE_FILE
from stn_fovea.train import train

TESTS = str(ROOT / "tests")  # the jobs' test callbacks (recorders)
TINY_CLI = (
    "data.train_size=100",
    "data.val_size=100",
    "data.test_size=50",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "evaluate=false",
)


def sweep(tmp_path: Path, *overrides: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """``python -m stn_fovea.train -m <overrides>`` into the sweep directory ``tmp_path``."""
    env = {**os.environ, "STN_FOVEA_DATA": str(data_root()), "OMP_NUM_THREADS": "1", "PYTHONPATH": TESTS}
    command = [sys.executable, "-m", "stn_fovea.train", "-m", *overrides, f"hydra.sweep.dir={tmp_path}"]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def job_dirs(sweep_dir: Path) -> list[Path]:
    return sorted(path for path in sweep_dir.iterdir() if path.is_dir() and path.name[0].isdigit())


LAUNCHERS = {
    "basic": (),
    "joblib": ("hydra/launcher=joblib", "hydra.launcher.n_jobs=2"),
    "submitit_local": ("hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"),
}


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_a_bad_value_fails_its_job_only_and_the_sweep_lists_it(tmp_path, launcher):
    plugin = f"hydra_plugins.hydra_{launcher.split('_')[0]}_launcher"
    if launcher != "basic" and not importlib.util.find_spec(plugin):
        pytest.skip(f"the {launcher} launcher is not installed (make install installs it)")
    result = sweep(
        tmp_path,
        *LAUNCHERS[launcher],
        "model=what",
        "curriculum=none",
        "data.contrast=0.7,1.5,0.3",
        *TINY_CLI,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    jobs = job_dirs(tmp_path)
    assert [job.name.split("_")[0] for job in jobs] == ["0", "1", "2"]
    # the jobs before and after the bad one ran to their end with their results
    for job in (jobs[0], jobs[2]):
        assert (job / "checkpoints" / "last.ckpt").is_file(), job
        assert not (job / FAILURE_FILE).exists()
    assert (jobs[1] / FAILURE_FILE).is_file()
    assert "stn_fovea: 1 job(s) of the sweep failed:" in result.stderr
    summary = result.stderr.split("job(s) of the sweep failed:")[1].strip().splitlines()
    assert len(summary) == 1 and summary[0].startswith(f"{jobs[1].name}: ")
    assert "contrast must lie in (0, 1]" in summary[0]


def test_joblib_runs_the_jobs_of_a_sweep_at_the_same_time(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    result = sweep(
        tmp_path,
        *LAUNCHERS["joblib"],
        "seed=1,2",
        "model=what",
        "curriculum=none",
        *TINY_CLI,
        "trainer.max_epochs=3",
        "+callbacks.rendezvous._target_=recorders.Rendezvous",
        f"+callbacks.rendezvous.path={tmp_path / 'rendezvous'}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = job_dirs(tmp_path)
    assert [job.name for job in jobs] == ["0", "1"]
    for job in jobs:  # each job in its own directory, with its own checkpoints and TensorBoard
        assert (job / "checkpoints" / "last.ckpt").is_file() and (job / "tensorboard").is_dir()
    meetings = [json.loads(path.read_text()) for path in (tmp_path / "rendezvous").glob("*.json")]
    assert len(meetings) == 2, "the two jobs trained in one process"  # one record per pid
    assert all(meeting["met"] for meeting in meetings)  # each was in training while the other started


def test_a_preempted_submitit_job_goes_on_from_its_last_epoch_when_requeued(tmp_path):
    """SLURM sends a signal before it preempts or times out a job; submitit then requeues it. Here
    submitit's local executor gets that signal during epoch 1: the requeued job starts again in its own
    directory and continues from the end of epoch 0."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    hold = tmp_path / "held"
    env = {**os.environ, "STN_FOVEA_DATA": str(data_root()), "OMP_NUM_THREADS": "1", "PYTHONPATH": TESTS}
    command = [
        sys.executable, "-m", "stn_fovea.train", "-m", *LAUNCHERS["submitit_local"], "seed=1",
        "model=what", "curriculum=none", *TINY_CLI, "trainer.max_epochs=3",
        "+callbacks.hold._target_=recorders.HoldAtEpoch", f"+callbacks.hold.path={hold}",
        f"hydra.sweep.dir={tmp_path}",
    ]  # fmt: skip
    with subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True) as launcher:
        deadline = time.time() + 300
        while not hold.exists() and time.time() < deadline and launcher.poll() is None:
            time.sleep(0.2)
        assert hold.exists(), "the job never reached the end of epoch 1"
        time.sleep(0.5)
        os.kill(int(hold.read_text()), signal.SIGUSR2)  # submitit's preemption / time-out signal
        _, stderr = launcher.communicate(timeout=300)
    assert launcher.returncode == 0, stderr[-3000:]
    job = tmp_path / "0"
    assert int(read_checkpoint(job / "checkpoints" / "last.ckpt")["epoch"]) == 2
    log = (job / "train.log").read_text()
    assert f"continuing from {job / 'checkpoints' / 'last.ckpt'}" in log
    events = EventAccumulator(str(job / "tensorboard"))  # one TensorBoard run, every epoch in it
    events.Reload()
    assert len({event.step for event in events.Scalars("val/acc")}) == 3
    assert not (job / FAILURE_FILE).exists()


def test_a_diverging_run_stops_with_a_clear_error_and_keeps_a_checkpoint(compose_train):
    cfg = compose_train(
        *TINY_RUN,
        "model=stn",
        "optimizer.lr=1e12",
        "curriculum=none",
        "trainer.max_epochs=3",
        "evaluate=false",
    )
    with pytest.raises(DivergedError, match="loss is not finite"):
        train(cfg)
    assert (Path(cfg.paths.output_dir) / "checkpoints" / "on_exception.ckpt").is_file()


@pytest.mark.parametrize("max_shift", ["null", "0.75"])
def test_a_run_whose_glimpses_all_left_the_image_stops_with_a_clear_error(compose_train, max_shift):
    """A window wholly off the image reads zeros and gets no gradient: unbounded, a pose that starts
    there stops at the first epoch's end with a checkpoint, instead of training at chance to its end;
    bounded (max_shift), the same start keeps the window on the image and the run trains."""
    cfg = compose_train(
        *TINY_RUN_FOR_WARNING,
        "model.net.transformer.pose._target_=recorders.OffImagePose",
        f"model.net.transformer.pose.max_shift={max_shift}",
        "curriculum=none",
    )
    checkpoints = Path(cfg.paths.output_dir) / "checkpoints"
    if max_shift == "null":
        with pytest.raises(LostGlimpseError, match="epoch 0 was read wholly off the image"):
            train(cfg)
        assert (checkpoints / "on_exception.ckpt").is_file()
    else:
        train(cfg)
        assert (checkpoints / "last.ckpt").is_file()


def test_a_curriculum_that_replaces_a_value_the_user_set_says_so(compose_train, caplog):
    cfg = compose_train(*TINY_RUN_FOR_WARNING, "data.contrast=0.3")
    with caplog.at_level("WARNING"):
        train(cfg)
    warning = " ".join(record.getMessage() for record in caplog.records if record.levelname == "WARNING")
    assert "data.contrast=0.3 is replaced during training by the curriculum" in warning
    assert "[0.3, 0.7]" in warning  # the stages' values are named


TINY_RUN_FOR_WARNING = (
    "data=mnist128",
    "model=peripheral_atn",
    "data.train_size=50",
    "data.val_size=50",
    "data.test_size=20",
    "trainer.max_epochs=1",
    "trainer.num_sanity_val_steps=0",
    "trainer.enable_progress_bar=false",
    "trainer.accelerator=cpu",
    "evaluate=false",
)


def test_an_optuna_search_runs_its_trials_and_writes_the_best_values(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    trials = ("hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.n_startup_trials=2")
    result = sweep(tmp_path, "hparams_search=lr_optuna", *trials, "model=what", "curriculum=none", *TINY_CLI)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [job.name for job in job_dirs(tmp_path)] == ["0", "1"]
    best = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert 0.0005 <= best["best_params"]["optimizer.lr"] <= 0.05 and 0 <= best["best_value"] <= 1
