"""TensorBoard pictures of what the transformer does: inputs beside glimpses, theta histograms."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger
from torch import Tensor
from torchvision.utils import make_grid

THETA_NAMES = ("a11", "a12", "tx", "a21", "a22", "ty")


def input_glimpse_grid(images: Tensor, glimpses: Tensor, pairs_per_row: int = 4) -> Tensor:
    """A (3, H', W') grid with each input (B, C, H, W) followed by its glimpse, resized to H x W."""
    if glimpses.shape[-2:] != images.shape[-2:]:
        glimpses = F.interpolate(glimpses, size=images.shape[-2:], mode="nearest")
    pairs = torch.stack((images, glimpses), dim=1).flatten(0, 1)
    return make_grid(pairs.float().cpu(), nrow=2 * pairs_per_row, padding=2, pad_value=1.0)


class GlimpseLogger(Callback):
    """Every ``every_n_epochs`` validation epochs, log to TensorBoard:

    - ``glimpses``: ``num_images`` fixed validation inputs beside the glimpses the model reads;
    - ``theta/<name>``: histograms of the six affine parameters over the first validation batch.
    """

    def __init__(self, every_n_epochs: int = 5, num_images: int = 16) -> None:
        super().__init__()
        if every_n_epochs < 1 or num_images < 1:
            raise ValueError("every_n_epochs and num_images must be positive")
        self.every_n_epochs, self.num_images = every_n_epochs, num_images
        self._images: Tensor | None = None

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: dict[str, Any],
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if batch_idx == 0 and dataloader_idx == 0:
            self._images = batch["image"]

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self._images is None:
            return
        if trainer.current_epoch % self.every_n_epochs and trainer.current_epoch + 1 != trainer.max_epochs:
            return
        writers = [logger.experiment for logger in trainer.loggers if isinstance(logger, TensorBoardLogger)]
        if not writers:
            return
        output = pl_module.predict_glimpses(self._images)
        grid = input_glimpse_grid(self._images[: self.num_images], output.glimpse[: self.num_images])
        for writer in writers:
            writer.add_image("glimpses", grid, global_step=trainer.current_epoch)
            if output.theta is not None:
                for name, values in zip(THETA_NAMES, output.theta.flatten(1).T, strict=True):
                    writer.add_histogram(f"theta/{name}", values.cpu(), global_step=trainer.current_epoch)
