"""The one LightningModule: loss, metrics, optimisers, schedulers and logging for any glimpse model."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler
from torchmetrics.classification import MulticlassAccuracy

from stn_fovea.errors import ConfigError
from stn_fovea.models.transformer import GlimpseClassifier, GlimpseOutput

OptimizerFactory = Callable[[Iterable[Any]], Optimizer]
SchedulerFactory = Callable[[Optimizer], LRScheduler]


class GlimpseModule(L.LightningModule):
    """Trains a :class:`GlimpseClassifier` with cross-entropy.

    Batches are dicts with "image" (B, C, H, W), "label" (B,) and "source" (the split name used in
    metric names: "train", "val", "val_level", "test/<protocol>").

    Args:
        net: the model (transformer + classifier).
        optimizer: partial optimiser, called with the parameter groups.
        scheduler: partial LR scheduler, called with the optimiser, or None.
        scheduler_interval: "epoch" or "step".
        localization_lr_scale: learning-rate multiplier of the transformer's parameters (1 = the
            reference; the STN paper lowers it to stabilise localisation).
    """

    def __init__(
        self,
        net: GlimpseClassifier,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        scheduler_interval: str = "epoch",
        localization_lr_scale: float = 1.0,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        if scheduler_interval not in ("epoch", "step"):
            raise ConfigError(f"scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
        if localization_lr_scale <= 0:
            raise ConfigError(f"localization_lr_scale must be positive, got {localization_lr_scale}")
        self.net = net
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.scheduler_interval = scheduler_interval
        self.localization_lr_scale = localization_lr_scale
        self.num_classes = num_classes
        self.accuracy = nn.ModuleDict()

    def forward(self, image: Tensor) -> GlimpseOutput:
        return self.net(image)

    @staticmethod
    def _metric_key(source: str) -> str:
        # ModuleDict keys may not contain "." nor shadow nn.Module attributes such as "train".
        return "acc_" + source.replace("/", "__")

    def _metric(self, source: str) -> MulticlassAccuracy:
        key = self._metric_key(source)
        if key not in self.accuracy:
            self.accuracy[key] = MulticlassAccuracy(self.num_classes, average="micro").to(self.device)
        return self.accuracy[key]

    def _step(self, batch: dict[str, Any]) -> Tensor:
        source = batch["source"]
        logits = self(batch["image"]).logits
        loss = F.cross_entropy(logits, batch["label"])
        metric = self._metric(source)
        metric(logits, batch["label"])
        training = source == "train"
        options = dict(on_step=training, on_epoch=True, batch_size=len(logits), add_dataloader_idx=False)
        self.log(f"{source}/loss", loss, prog_bar=source in ("train", "val"), **options)
        self.log(
            f"{source}/acc",
            metric,
            prog_bar=source in ("train", "val"),
            metric_attribute=f"accuracy.{self._metric_key(source)}",
            **options,
        )
        return loss

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        return self._step(batch)

    def validation_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._step(batch)

    def test_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._step(batch)

    def parameter_groups(self) -> list[dict[str, Any]]:
        """Classifier and transformer parameters, the latter with ``localization_lr_scale`` applied."""
        transformer = self.net.transformer
        if transformer is None or self.localization_lr_scale == 1.0:
            return [{"params": list(self.net.parameters())}]
        base_lr = getattr(self.optimizer_factory, "keywords", {}).get("lr")
        if base_lr is None:
            raise ConfigError("localization_lr_scale needs the optimiser's lr in its config")
        transformer_ids = {id(p) for p in transformer.parameters()}
        return [
            {"params": [p for p in self.net.parameters() if id(p) not in transformer_ids]},
            {"params": list(transformer.parameters()), "lr": base_lr * self.localization_lr_scale},
        ]

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(self.parameter_groups())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": self.scheduler_interval},
        }

    @torch.no_grad()
    def predict_glimpses(self, image: Tensor) -> GlimpseOutput:
        """Forward pass in eval mode, for figures; restores the training mode afterwards."""
        was_training = self.training
        self.eval()
        try:
            return self(image)
        finally:
            self.train(was_training)
