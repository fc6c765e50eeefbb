"""Which checkpoints a run keeps and what it reports of them: the best by validation, the "best test
epoch" some papers report (never instead of it), and the training time over every attempt."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import Callback, ModelCheckpoint, Timer

from stn_fovea.data.datamodule import TEST_EACH_EPOCH, NoisyMNIST
from stn_fovea.errors import ConfigError


def training_seconds(callbacks: list[Callback]) -> float | None:
    """The run's training wall time in seconds: the epochs it kept, over every attempt of a resumed run
    (Lightning's Timer keeps it in each checkpoint; work redone after an interruption is not counted);
    None without a Timer among the callbacks."""
    timer = next((cb for cb in callbacks if isinstance(cb, Timer)), None)
    return None if timer is None else round(timer.time_elapsed("train"), 1)


def test_monitors(callbacks: list[Callback]) -> list[ModelCheckpoint]:
    """The checkpoints that monitor the per-epoch test score (``test_each_epoch/...``): they keep the
    "best test epoch" some papers report, never the run's own best checkpoint."""
    checkpoints = (cb for cb in callbacks if isinstance(cb, ModelCheckpoint))
    return [cb for cb in checkpoints if str(cb.monitor or "").startswith(f"{TEST_EACH_EPOCH}/")]


def test_selected(callbacks: list[Callback]) -> dict[str, Any]:
    """The "best test epoch" of a run that scored its test set every epoch (data.test_each_epoch) and
    kept that epoch's checkpoint: reported beside the validation-selected numbers, never instead."""
    for callback in test_monitors(callbacks):
        if callback.best_model_score is not None:
            return {
                "test_selected": {
                    "metric": callback.monitor,
                    "accuracy": float(callback.best_model_score),
                    "checkpoint": callback.best_model_path,
                }
            }
    return {}


def check_test_selection(callbacks: list[Callback], datamodule: NoisyMNIST) -> None:
    """A checkpoint that monitors the per-epoch test score needs the data to compute that score."""
    logged = f"{TEST_EACH_EPOCH}/{datamodule.headline_protocol}/"
    for callback in test_monitors(callbacks):
        monitor = str(callback.monitor)
        if not datamodule.test_each_epoch or not monitor.startswith(logged):
            raise ConfigError(
                f"a checkpoint monitors {monitor}, but this run scores "
                + (f"{logged}* each epoch" if datamodule.test_each_epoch else "no test set each epoch")
                + ": set data.test_each_epoch=true (and keep data.headline_protocol), or remove that "
                "callback (callbacks.test_selected=null)"
            )


def best_model_checkpoint(callbacks: list[Callback]) -> ModelCheckpoint | None:
    """The checkpoint callback that keeps the run's best model, the one trainer.test scores: the first
    that monitors a metric, never one that monitors the per-epoch test score."""
    peeking = test_monitors(callbacks)
    checkpoints = (cb for cb in callbacks if isinstance(cb, ModelCheckpoint) and cb.monitor)
    return next((cb for cb in checkpoints if cb not in peeking), None)
