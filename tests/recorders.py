"""A test callback that records, per training epoch, what really reached the model."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback


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
        self.epochs[trainer.current_epoch]["global_step"] = trainer.global_step
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.epochs))
