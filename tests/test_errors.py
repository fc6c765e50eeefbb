"""Bad input gets one clear message (no traceback) from the command-line entry points."""

import logging
import os
import runpy
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from torchvision.datasets import MNIST

from conftest import ROOT, data_root
from stn_fovea.checkpoint import read_checkpoint
from stn_fovea.data.mnist import load_mnist
from stn_fovea.errors import CheckpointError, DataNotFoundError

QUICK = [
    "data.train_size=100",
    "data.val_size=100",
    "data.test_size=100",
    "trainer.max_epochs=1",
    "evaluate=false",
]


class Result(NamedTuple):
    returncode: int
    stderr: str


def run_cli(module: str, *overrides: str, tmp_path: Path) -> Result:
    """``python -m <module> <overrides>`` as a process of its own: the real command line."""
    env = {**os.environ, "STN_FOVEA_DATA": str(data_root()), "OMP_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    result = subprocess.run(
        [sys.executable, "-m", module, *overrides, *run_dirs(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return Result(result.returncode, result.stderr)


def run_dirs(tmp_path: Path) -> list[str]:
    return [f"paths.log_dir={tmp_path}", f"hydra.run.dir={tmp_path}/run"]


@pytest.fixture
def run_main(monkeypatch, capfd) -> Callable[..., Result]:
    """``python -m <module> <overrides>`` in this process (runpy, as ``-m`` runs it): the same Hydra
    parsing, error reporting and exit, without a Python start-up per case. The first two tests run
    the real process."""
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.setenv("STN_FOVEA_DATA", str(data_root()))
    root = logging.getLogger()

    def run(module: str, *overrides: str, tmp_path: Path) -> Result:
        monkeypatch.setattr(sys, "argv", [module, *overrides, *run_dirs(tmp_path)])
        handlers, level = root.handlers[:], root.level
        capfd.readouterr()
        try:
            with pytest.raises(SystemExit) as exited:
                runpy.run_module(module, run_name="__main__", alter_sys=True)
        finally:  # Hydra configures logging for its job: leave this process's logging as it was
            root.handlers[:], root.level = handlers, level
            GlobalHydra.instance().clear()
        return Result(exited.value.code or 0, capfd.readouterr().err)

    return run


def assert_clear_error(result: Result, *phrases: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr


def test_unknown_model_name_lists_the_options(tmp_path):
    result = run_cli("stn_fovea.train", "model=resnet", *QUICK, tmp_path=tmp_path)
    assert_clear_error(result, "model/resnet", "Available options", "stn", "what")


def test_a_model_that_cannot_read_the_data_says_so(tmp_path):
    result = run_cli("stn_fovea.train", "model=atn", "data=mnist28", *QUICK, tmp_path=tmp_path)
    assert_clear_error(result, "model=atn data=mnist28: the model cannot read 28x28 images")


def test_a_128_setting_outside_the_image_is_a_clear_error(run_main, tmp_path):
    result = run_main(
        "stn_fovea.train",
        "data=mnist128",
        "model=polo_atn",
        "data.eccentricity_max_px=70",
        *QUICK,
        tmp_path=tmp_path,
    )
    assert_clear_error(result, "eccentricity_max_px must be in [0, 50]")


def test_unknown_data_name(run_main, tmp_path):
    assert_clear_error(run_main("stn_fovea.train", "data=cifar", *QUICK, tmp_path=tmp_path), "data/cifar")


@pytest.mark.parametrize("contrast", ["1.5", "0", "[0.3,1.2]"])
def test_contrast_outside_zero_one(run_main, tmp_path, contrast):
    result = run_main("stn_fovea.train", f"data.contrast={contrast}", *QUICK, tmp_path=tmp_path)
    assert_clear_error(result, "stn_fovea: error:", "contrast must lie in (0, 1]")


def test_negative_shift_std_in_data_or_curriculum(run_main, tmp_path):
    result = run_main("stn_fovea.train", "data.shift_std_px=-1", *QUICK, tmp_path=tmp_path)
    assert_clear_error(result, "shift_std_px must be >= 0")
    result = run_main(
        "stn_fovea.train",
        "curriculum.stages=[{shift_std_px:2},{shift_std_px:-3}]",
        *QUICK,
        tmp_path=tmp_path,
    )
    assert_clear_error(result, "curriculum stage 1", "shift_std_px must be >= 0")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_missing_mnist_says_where_it_looked_and_how_to_fix_it(run_main, tmp_path):
    empty = tmp_path / "empty"
    result = run_main(
        "stn_fovea.train",
        f"paths.data_dir={empty}",
        "data.download=false",
        *QUICK,
        tmp_path=tmp_path,
    )
    assert_clear_error(result, f"{empty}/MNIST/raw", "STN_FOVEA_DATA", "paths.data_dir")


def test_offline_download_failure_is_a_data_error(run_main, tmp_path, monkeypatch):
    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])  # nothing listens there: like offline
    with pytest.raises(DataNotFoundError, match="download failed"):
        load_mnist(tmp_path, train=False, download=True)


def test_a_root_that_holds_mnist_is_only_read(tmp_path):
    """Reading MNIST where it is (../shared/data here) writes nothing there, not even the download
    lock: the download lock is taken only when the files are missing."""
    root = tmp_path / "data"
    shutil.copytree(data_root() / "MNIST", root / "MNIST")
    before = sorted(path.relative_to(root) for path in root.rglob("*"))
    assert len(load_mnist(root, train=False, download=True).labels) == 10_000
    assert sorted(path.relative_to(root) for path in root.rglob("*")) == before


def test_bad_checkpoint_paths(run_main, tmp_path):
    missing = tmp_path / "nope.ckpt"
    for module in ("stn_fovea.train", "stn_fovea.evaluate"):
        assert_clear_error(
            run_main(
                module,
                f"ckpt_path={missing}",
                *(QUICK if "train" in module else []),
                tmp_path=tmp_path,
            ),
            "does not exist",
        )
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}, "epoch": 3}, foreign)
    assert_clear_error(
        run_main("stn_fovea.evaluate", f"ckpt_path={foreign}", tmp_path=tmp_path),
        "not a stn_fovea checkpoint",
    )
    text = tmp_path / "notes.ckpt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="not a readable"):
        read_checkpoint(text)
    assert_clear_error(run_main("stn_fovea.evaluate", tmp_path=tmp_path), "no checkpoint given")


def test_bad_evaluation_settings_stop_the_run_before_training(run_main, tmp_path):
    result = run_main("stn_fovea.train", "+evaluators.shift_map.digits=3", *QUICK, tmp_path=tmp_path)
    assert_clear_error(result, "evaluators.shift_map:", "digits")
    result = run_main(
        "stn_fovea.train", "evaluators.shift_map.protocol=everything", *QUICK, tmp_path=tmp_path
    )
    assert_clear_error(result, "evaluators.shift_map.protocol='everything' is not a test protocol")
    assert not (tmp_path / "run" / "checkpoints").exists()
