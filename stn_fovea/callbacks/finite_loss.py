"""Stop a run whose training loss is no longer finite, with a clear message (and a checkpoint)."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from stn_fovea.errors import UserError


class DivergedError(UserError):
    """The training loss became NaN or infinite."""


class StopOnNonFiniteLoss(Callback):
    """Raise :class:`DivergedError` within ``check_every_n_steps`` steps of a non-finite training loss.

    The flag is kept on the training device and read every n steps, so that a GPU run does not wait on
    every step. The raised error stops the run; the ``ExceptionCheckpoint`` callback saves a checkpoint,
    and in a sweep only this job fails.
    """

    def __init__(self, check_every_n_steps: int = 20) -> None:
        super().__init__()
        if check_every_n_steps < 1:
            raise ValueError(f"check_every_n_steps must be >= 1, got {check_every_n_steps}")
        self.check_every_n_steps = check_every_n_steps
        self._finite: torch.Tensor | None = None

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        finite = torch.isfinite(loss.detach()).all()
        self._finite = finite if self._finite is None else self._finite & finite
        if trainer.global_step % self.check_every_n_steps == 0:
            self._check(trainer)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._check(trainer)  # validation runs inside the training epoch, before its end hooks

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._check(trainer)

    def _check(self, trainer: L.Trainer) -> None:
        if self._finite is not None and not bool(self._finite):
            raise DivergedError(
                f"training diverged: the loss is not finite (epoch {trainer.current_epoch}, step "
                f"{trainer.global_step}). Lower the learning rate (optimizer.lr=...) or try "
                "model.localization_lr_scale=0.1."
            )
