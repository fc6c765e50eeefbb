"""Test callbacks and a test pose: what reached the model in each epoch, a meeting of a sweep's runs in
training, a hold at an epoch end during which a test stops the job (preemption), a pose that starts
off the image."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from stn_fovea.models.pose import TranslationPose


class EpochRecorder(Callback):
    """Writes {epoch: {shift_std_px, level, max_abs_shift, lr, global_step}} to ``path`` every epoch."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.epochs: dict[int, dict[str, float]] = {}

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx: int) -> None:
        recipe = trainer.datamodule.train_recipe
        record = self.epochs.setdefault(
            trainer.current_epoch,
            {
                "shift_std_px": getattr(recipe, "shift_std_px", None),
                "level": list(recipe.level),
                "stage": {
                    name: getattr(recipe, name)
                    for name in ("eccentricity_std_px", "radius_px", "contrast")
                    if hasattr(recipe, name)
                },
                "max_abs_shift": 0,
                "lr": trainer.optimizers[0].param_groups[0]["lr"],
                "first_index": int(batch["index"][0]),
            },
        )
        record["max_abs_shift"] = max(record["max_abs_shift"], int(batch["shift"].abs().max()))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module) -> None:
        if trainer.current_epoch not in self.epochs:  # resumed after its last batch: nothing trained
            return
        self.epochs[trainer.current_epoch]["global_step"] = trainer.global_step
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.epochs))


class Rendezvous(Callback):
    """At fit start, each run of a sweep announces itself in the folder ``path`` and waits up to
    ``seconds`` for ``parties`` runs to have done so. Writes {"pid", "met"} to ``<path>/<pid>.json``:
    ``met`` is true only when the runs trained at the same time, however short their training is."""

    def __init__(self, path: str, parties: int = 2, seconds: float = 180.0) -> None:
        self.path, self.parties, self.seconds = Path(path), parties, seconds

    def on_fit_start(self, trainer: L.Trainer, pl_module) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        pid = os.getpid()
        (self.path / f"{pid}.here").touch()
        deadline = time.time() + self.seconds
        while len(list(self.path.glob("*.here"))) < self.parties and time.time() < deadline:
            time.sleep(0.1)
        met = len(list(self.path.glob("*.here"))) >= self.parties
        (self.path / f"{pid}.json").write_text(json.dumps({"pid": pid, "met": met}))


class HoldAtEpoch(Callback):
    """At the end of training epoch ``epoch``, once per run directory: write ``<path>`` (this process's
    pid), then wait up to ``seconds`` for a signal to stop the job (a preemption in a test)."""

    def __init__(self, path: str, epoch: int = 1, seconds: float = 120.0) -> None:
        self.path, self.epoch, self.seconds = Path(path), epoch, seconds

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module) -> None:
        if trainer.current_epoch != self.epoch or self.path.exists():
            return
        self.path.write_text(str(os.getpid()))
        deadline = time.time() + self.seconds
        while time.time() < deadline:
            time.sleep(0.1)


class FailAt(Callback):
    """Raises at the start of batch ``batch`` of epoch ``epoch``: a crash in the middle of an epoch."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch = epoch, batch

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx: int) -> None:
        if (trainer.current_epoch, batch_idx) == (self.epoch, self.batch):
            raise RuntimeError(f"planted crash at epoch {self.epoch}, batch {batch_idx}")


class FailAfterLastBatch(Callback):
    """Raises after the last batch of training epoch ``epoch``, in the hook ``hook``: that batch's
    on_train_batch_end, on_validation_start (the epoch's validation) or on_train_epoch_end."""

    HOOKS = ("on_train_batch_end", "on_validation_start", "on_train_epoch_end")

    def __init__(self, epoch: int, hook: str) -> None:
        if hook not in self.HOOKS:
            raise ValueError(f"hook must be one of {self.HOOKS}, got {hook}")
        self.epoch, self.hook = epoch, hook

    def _fail(self, trainer: L.Trainer, hook: str) -> None:
        if (hook, trainer.current_epoch) == (self.hook, self.epoch) and not trainer.sanity_checking:
            raise RuntimeError(f"planted crash in {hook} after the last batch of epoch {self.epoch}")

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if batch_idx == trainer.num_training_batches - 1:
            self._fail(trainer, "on_train_batch_end")

    def on_validation_start(self, trainer: L.Trainer, pl_module) -> None:
        self._fail(trainer, "on_validation_start")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module) -> None:
        self._fail(trainer, "on_train_epoch_end")


class OffImagePose(TranslationPose):
    """A translation that starts at tx = ty = 5: unbounded, the window starts wholly off the image."""

    def initial_params(self) -> torch.Tensor:
        return torch.full((2,), 5.0)
