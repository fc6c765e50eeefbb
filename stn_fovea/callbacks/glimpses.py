"""TensorBoard pictures of what the transformer does: glimpse boxes on the inputs, inputs beside
glimpses, and histograms of the pose (theta entries, scale, translation)."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger
from torch import Tensor
from torchvision.utils import draw_keypoints, make_grid

THETA_NAMES = ("a11", "a12", "tx", "a21", "a22", "ty")
BOX_EDGES = [(0, 1), (1, 2), (2, 3), (3, 0)]


def display_range(images: Tensor) -> tuple[float, float]:
    """The grey levels black and white stand for: [0, 1], widened to the images' own range where they
    leave it (standardised data such as data=mnist's), so that nothing is clipped to white."""
    return min(0.0, images.min().item()), max(1.0, images.max().item())


def to_display(x: Tensor, value_range: tuple[float, float]) -> Tensor:
    """``x`` mapped linearly from ``value_range`` to [0, 1] (then clamped: glimpses may overshoot)."""
    low, high = value_range
    return ((x.float() - low) / (high - low)).clamp(0, 1)


def input_glimpse_grid(images: Tensor, glimpses: Tensor, pairs_per_row: int = 4) -> Tensor:
    """A (3, H', W') grid with each input (B, C, H, W) followed by its glimpse, resized to H x W, both
    in the inputs' :func:`display_range`."""
    if glimpses.shape[-2:] != images.shape[-2:]:
        glimpses = F.interpolate(glimpses, size=images.shape[-2:], mode="nearest")
    value_range = display_range(images)
    pairs = torch.stack((to_display(images, value_range), to_display(glimpses, value_range)), dim=1)
    return make_grid(pairs.flatten(0, 1).cpu(), nrow=2 * pairs_per_row, padding=2, pad_value=1.0)


def draw_glimpse_boxes(images: Tensor, corners: Tensor, per_row: int = 4) -> Tensor:
    """A (3, H', W') uint8 grid of the inputs (B, 1, H, W), in their :func:`display_range`, with each
    glimpse's outline in red.

    Args:
        corners: (B, G, 4, 2) pixel (x, y) corners of the G glimpses of every input (``ModelOutput.windows``).
    """
    drawn, value_range = [], display_range(images)
    for image, boxes in zip(images, corners, strict=True):
        rgb = (to_display(image, value_range) * 255).to(torch.uint8).expand(3, -1, -1).cpu()
        drawn.append(draw_keypoints(rgb, boxes.cpu(), BOX_EDGES, colors="red", radius=1, width=1))
    return make_grid(torch.stack(drawn), nrow=per_row, padding=2, pad_value=255)


def pose_summary(theta: Tensor) -> dict[str, Tensor]:
    """Per-sample scale sqrt(|det A|) and translation (tx, ty) of (B, 2, 3) thetas (normalised units)."""
    return {
        "scale": torch.linalg.det(theta[:, :, :2]).abs().sqrt(),
        "tx": theta[:, 0, 2],
        "ty": theta[:, 1, 2],
    }


def where_maps(net: Any, extras: dict[str, Tensor], shifts: Tensor | None, count: int) -> Tensor | None:
    """A grid of predicted (sigmoid) and target colliculus maps side by side, or None for a model
    without them."""
    if "where_logits" not in extras or shifts is None or not hasattr(net, "map_picture"):
        return None
    predicted = torch.sigmoid(extras["where_logits"][:count])
    target = net.where_targets(shifts[:count])
    pairs = torch.stack((net.map_picture(predicted), net.map_picture(target)), dim=1).flatten(0, 1)
    return make_grid(pairs.float().cpu().clamp(0, 1), nrow=8, padding=2, pad_value=1.0)


class GlimpseLogger(Callback):
    """Every ``every_n_epochs`` validation epochs, log to TensorBoard, on fixed validation inputs:

    - ``glimpse_boxes``: ``num_images`` inputs with the outline of the window each glimpse reads;
    - ``glimpses``: the inputs beside the glimpses the model reads;
    - ``theta/<name>``: histograms of the six affine parameters over the first validation batch;
    - ``pose/scale``, ``pose/tx``, ``pose/ty``: histograms of scale and translation;
    - ``where_maps`` (What/Where): each input's predicted colliculus map beside its target, drawn in
      image space (the glimpse boxes show the fixations).
    """

    def __init__(self, every_n_epochs: int = 5, num_images: int = 16) -> None:
        super().__init__()
        if every_n_epochs < 1 or num_images < 1:
            raise ValueError("every_n_epochs and num_images must be positive")
        self.every_n_epochs, self.num_images = every_n_epochs, num_images
        self._images: Tensor | None = None
        self._shifts: Tensor | None = None

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
            self._images, self._shifts = batch["image"], batch.get("shift")

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self._images is None:
            return
        if trainer.current_epoch % self.every_n_epochs and trainer.current_epoch + 1 != trainer.max_epochs:
            return
        writers = [logger.experiment for logger in trainer.loggers if isinstance(logger, TensorBoardLogger)]
        if not writers:
            return
        output = pl_module.predict_glimpses(self._images)
        shown = self._images[: self.num_images]
        grid = input_glimpse_grid(shown, output.glimpses[: self.num_images, -1])
        step = trainer.current_epoch
        for writer in writers:
            writer.add_image("glimpses", grid, global_step=step)
            if output.windows is not None and bool(torch.isfinite(output.windows).all()):
                boxes = draw_glimpse_boxes(shown, output.windows[: self.num_images])
                writer.add_image("glimpse_boxes", boxes, global_step=step)
            maps = where_maps(pl_module.net, output.extras, self._shifts, self.num_images)
            if maps is not None:
                writer.add_image("where_maps", maps, global_step=step)
            if output.thetas is None:
                continue
            thetas = output.thetas.flatten(0, 1)  # every glimpse of every input
            for name, values in zip(THETA_NAMES, thetas.flatten(1).T, strict=True):
                writer.add_histogram(f"theta/{name}", values.cpu(), global_step=step)
            for name, values in pose_summary(thetas).items():
                writer.add_histogram(f"pose/{name}", values.cpu(), global_step=step)
