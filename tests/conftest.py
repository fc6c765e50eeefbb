"""Shared fixtures: MNIST location and Hydra config composition for tests."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

# Tests run beside a training job on small machines: one thread avoids OpenMP oversubscription.
torch.set_num_threads(1)


def data_root() -> Path:
    """Where MNIST lives for the tests: $STN_FOVEA_DATA, else ./data (downloaded by torchvision)."""
    return Path(os.environ.get("STN_FOVEA_DATA", ROOT / "data"))


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    return data_root()


@pytest.fixture
def compose_train(tmp_path: Path) -> Iterator[Callable[..., DictConfig]]:
    """Compose conf/train.yaml with overrides and outputs under tmp_path, as `stn_fovea.train` would."""

    def _compose(*overrides: str, config_name: str = "train", output: str = "run") -> DictConfig:
        GlobalHydra.instance().clear()
        with initialize_config_dir(str(CONF), version_base="1.3"):
            cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            del cfg["hydra"]  # as in a real run: the app's config does not carry the hydra node
            cfg.paths.output_dir = str(tmp_path / output)
            cfg.paths.log_dir = str(tmp_path)
            cfg.paths.data_dir = str(data_root())
        return cfg

    yield _compose
    GlobalHydra.instance().clear()


# Small, fast settings for runs of the real pipeline in tests.
TINY_RUN = (
    "data.train_size=300",
    "data.val_size=200",
    "data.test_size=200",
    "data.eval_batch_size=100",
    "eval.digits_per_cell=1",
    "eval.max_shift_px=3",
    "eval.num_glimpses=4",
    "trainer.num_sanity_val_steps=0",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.accelerator=cpu",
)

# The same for the 128x128 retina data: a coarse 2 x 2 grid with 2 digits per cell.
TINY_RUN_128 = (
    *TINY_RUN,
    "data=mnist128",
    "curriculum=eccentricity",
    "eval.grid_eccentricities_px=[10.0,40.0]",
    "eval.grid_contrasts=[0.7,0.3]",
    "eval.grid_digits_per_cell=2",
    "eval.batch_size=100",
)
