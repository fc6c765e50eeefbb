"""Shared fixtures: MNIST location and Hydra config composition for tests."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from stn_fovea.train import train

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
# one cache for the session's runs (the What/Where retina bank, ~190 MB, is built once)
CACHE = Path(tempfile.mkdtemp(prefix="stn_fovea_test_cache_"))

# Tests run beside a training job on small machines: one thread avoids OpenMP oversubscription.
torch.set_num_threads(1)


def data_root() -> Path:
    """Where MNIST lives for the tests: $STN_FOVEA_DATA, else ./data (downloaded by torchvision)."""
    return Path(os.environ.get("STN_FOVEA_DATA", ROOT / "data"))


@pytest.fixture(scope="session", autouse=True)
def _remove_the_session_cache() -> Iterator[None]:
    yield
    shutil.rmtree(CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    return data_root()


def compose_config(
    root: Path, *overrides: str, config_name: str = "train", output: str = "run"
) -> DictConfig:
    """Compose a primary config with overrides and outputs under ``root``, as `stn_fovea.train` would."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]  # as in a real run: the app's config does not carry the hydra node
        cfg.paths.output_dir = str(root / output)
        cfg.paths.log_dir = str(root)
        cfg.paths.data_dir = str(data_root())
        cfg.paths.cache_dir = str(CACHE)
    return cfg


@pytest.fixture
def compose_train(tmp_path: Path) -> Iterator[Callable[..., DictConfig]]:
    """Compose conf/train.yaml with overrides and outputs under tmp_path, as `stn_fovea.train` would."""

    def _compose(*overrides: str, config_name: str = "train", output: str = "run") -> DictConfig:
        return compose_config(tmp_path, *overrides, config_name=config_name, output=output)

    yield _compose
    GlobalHydra.instance().clear()


# Small, fast settings for runs of the real pipeline in tests (any data).
TINY = (
    "data.train_size=300",
    "data.val_size=200",
    "data.test_size=200",
    "data.eval_batch_size=100",
    "evaluators.glimpses.num_images=4",
    "trainer.num_sanity_val_steps=0",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.accelerator=cpu",
)

# The 28x28 data (the default): a 7 x 7 shift map with one digit per cell.
TINY_RUN = (*TINY, "evaluators.shift_map.digits_per_cell=1", "evaluators.shift_map.max_shift_px=3")

# The 128x128 retina data: a coarse 2 x 2 grid with 2 digits per cell.
TINY_RUN_128 = (
    "data=mnist128",
    *TINY,
    "evaluators.eccentricity_grid.eccentricities_px=[10.0,40.0]",
    "evaluators.eccentricity_grid.contrasts=[0.7,0.3]",
    "evaluators.eccentricity_grid.digits_per_cell=2",
)

# A 128x128 run of two epochs that shows every output: glimpses logged each epoch, a curriculum stage
# per epoch.
SHORT_RUN_128 = (
    *TINY_RUN_128,
    "data.train_size=100",
    "data.val_size=100",
    "data.test_size=50",
    "curriculum.epochs_per_stage=1",
    "trainer.max_epochs=2",
    "callbacks.glimpses.every_n_epochs=1",
    "callbacks.glimpses.num_images=4",
)

# What/Where with a small retina: 1 x 4 x 3 x 1 = 12 filters, 12 cells (the pipeline, not the
# reference's 2880-filter bank, which takes ~20 s to build).
SMALL_RETINA = (
    "model.net.retina.spec.n_orientations=1",
    "model.net.retina.spec.n_azimuths=4",
    "model.net.retina.spec.n_eccentricities=3",
    "model.net.retina.spec.n_phases=1",
    "model.net.where_net.hidden=[16]",
)

# The smallest runs of the real pipeline that still write every output (tests/test_readme.py adds them
# to every command it runs).
TINY_TRAIN = [
    "data.train_size=60",
    "data.val_size=50",
    "data.test_size=20",
    "data.eval_batch_size=50",
    "trainer.max_epochs=1",
    "trainer.num_sanity_val_steps=0",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "evaluators.glimpses.num_images=2",
]
TINY_EVALUATORS = {
    "shift_map": ["evaluators.shift_map.max_shift_px=1", "evaluators.shift_map.digits_per_cell=1"],
    "eccentricity_grid": [
        "evaluators.eccentricity_grid.eccentricities_px=[40.0]",
        "evaluators.eccentricity_grid.contrasts=[0.7]",
        "evaluators.eccentricity_grid.digits_per_cell=2",
    ],
}

# The session's shared tiny runs: (overrides, whether the data's evaluators get their tiny settings).
TINY_RUNS = {
    "28": (("model=stn",), True),
    "128": (("data=mnist128", "model=peripheral_atn"), True),
    "what": (
        ("model=what", "evaluators.shift_map.digits_per_cell=1"),
        False,
    ),  # the 55 x 55 map What/Where reads
}


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory) -> Callable[[str], Path]:
    """A tiny trained run directory by name (TINY_RUNS), trained on first use and shared by every test
    of the session (of each xdist worker) instead of being trained again per test."""
    runs: dict[str, Path] = {}

    def run(name: str) -> Path:
        if name not in runs:
            args, tiny_evaluators = TINY_RUNS[name]
            root = tmp_path_factory.mktemp(f"tiny_{name}")
            probe = compose_config(root, *args)
            evaluators = [o for n in (probe.evaluators or {}) for o in TINY_EVALUATORS.get(n, [])]
            cfg = compose_config(root, *args, *TINY_TRAIN, *(evaluators if tiny_evaluators else []))
            train(cfg)
            GlobalHydra.instance().clear()
            runs[name] = Path(cfg.paths.output_dir)
        return runs[name]

    return run
