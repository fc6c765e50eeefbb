"""A checkpoint written when training stops on an exception (a crash, Ctrl-C, a cluster's signal)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback


class ExceptionCheckpoint(Callback):
    """Writes ``<dirpath>/<filename>.ckpt`` when training stops on an exception and removes it when the
    run ends, as Lightning's ``OnExceptionCheckpoint`` does, without that callback's side effect: its
    presence makes every ``trainer.fit(ckpt_path=None)`` look for a "last" checkpoint to resume from
    and warn when there is none. ``stn_fovea.train`` picks the checkpoint to resume from itself
    (:func:`stn_fovea.checkpoint.resume_path`: last.ckpt, else this file).

    Args:
        dirpath: the run's checkpoint folder.
        filename: the file's name without ``.ckpt``.
    """

    def __init__(self, dirpath: str | Path, filename: str = "on_exception") -> None:
        super().__init__()
        if not filename:
            raise ValueError("ExceptionCheckpoint needs a file name")
        self.path = Path(dirpath) / f"{filename}.ckpt"

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        trainer.save_checkpoint(self.path)

    def teardown(self, trainer: L.Trainer, *_: Any, **__: Any) -> None:
        trainer.strategy.remove_checkpoint(self.path)
