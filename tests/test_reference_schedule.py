"""The 128x128 reference schedules, epoch by epoch (whatwhere.md 5.3 and its details): the LR of every
epoch, driven by the experiment's own optimiser, scheduler and curriculum in a real Lightning loop."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class LevelOnly(L.LightningDataModule):
    """One batch per epoch; takes every curriculum level without checking it."""

    def set_train_level(self, **level) -> None:
        self.level = level

    def check_level(self, **level) -> None:
        pass

    def train_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(torch.zeros(1, 1)), batch_size=1)


class Linear(L.LightningModule):
    def __init__(self, optimizer, scheduler) -> None:
        super().__init__()
        self.layer = nn.Linear(1, 1)
        self.optimizer, self.scheduler = optimizer, scheduler

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).sum()

    def configure_optimizers(self):
        optimizer = self.optimizer(self.parameters())
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": self.scheduler(optimizer)}}


class LearningRates(Callback):
    def __init__(self) -> None:
        self.lrs: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


def learning_rates(cfg) -> list[float]:
    """The LR each epoch trains at, under the experiment's optimiser, scheduler and curriculum."""
    curriculum, record = instantiate(cfg.curriculum), LearningRates()
    trainer = L.Trainer(
        max_epochs=curriculum.total_epochs,
        callbacks=[curriculum, record],  # the curriculum first, as train.py orders its callbacks
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(Linear(instantiate(cfg.optimizer), instantiate(cfg.scheduler)), datamodule=LevelOnly())
    return record.lrs


def expected(lr: float, step: int, gamma: float) -> list[float]:
    """The reference: 90 epochs at lr with StepLR(step, gamma), then ONE new optimiser at lr / 10 with
    a new StepLR(step, gamma) for the 20 epochs of the two contrast stages together."""
    first = [lr * gamma ** (epoch // step) for epoch in range(90)]
    return first + [lr / 10 * gamma ** (epoch // step) for epoch in range(20)]


@pytest.mark.parametrize(
    "experiment, lr, step, gamma",
    [
        ("atn_reference", 0.01, 10, 0.5),
        ("polo_atn_reference", 0.005, 10, 0.5),
        ("stn128_reference", 0.01, 30, 0.1),
    ],
)
def test_every_epoch_of_a_reference_schedule_trains_at_the_reference_lr(
    compose_train, experiment, lr, step, gamma
):
    lrs = learning_rates(compose_train(f"experiment={experiment}"))
    assert lrs == pytest.approx(expected(lr, step, gamma), rel=1e-9)
    if experiment == "atn_reference":  # the notebook's log: 1e-3 for c=0.5, then 5e-4 for c=0.3
        assert lrs[89:] == pytest.approx([0.01 * 0.5**8, *[1e-3] * 10, *[5e-4] * 10])
