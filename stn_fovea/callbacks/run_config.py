"""Stores the run's resolved configuration in every checkpoint, so a checkpoint rebuilds its model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

CHECKPOINT_KEY = "stn_fovea"
FORMAT_VERSION = 2  # 2: one NoisyMNIST DataModule with a recipe, task and evaluators in the config


class StoreRunConfig(Callback):
    """Adds ``checkpoint["stn_fovea"] = {"version": ..., "config": <resolved config>}``."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__()
        self.config = dict(config)

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[CHECKPOINT_KEY] = {"version": FORMAT_VERSION, "config": self.config}
