"""One failing job leaves a sweep running; a diverging run stops with one message and a checkpoint."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, TINY_RUN, data_root
from stn_fovea.callbacks.finite_loss import DivergedError
from stn_fovea.sweep import FAILURE_FILE
from stn_fovea.train import train

TINY_CLI = (
    "data.train_size=100",
    "data.val_size=100",
    "data.test_size=50",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "evaluate=false",
)


def test_a_bad_value_fails_its_job_only_and_the_sweep_lists_it(tmp_path):
    env = {**os.environ, "STN_FOVEA_DATA": str(data_root()), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "stn_fovea.train",
            "-m",
            "model=what",
            "curriculum=none",
            "data.contrast=0.7,1.5,0.3",
            *TINY_CLI,
            f"hydra.sweep.dir={tmp_path}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    jobs = sorted(path for path in tmp_path.iterdir() if path.is_dir() and path.name[0].isdigit())
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
