"""The one LightningModule: a model, its task (loss and metrics), optimisers, schedulers and logging."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler
from torchmetrics import MetricCollection

from stn_fovea.errors import ConfigError
from stn_fovea.models.sampler import AffineSampler, on_image
from stn_fovea.models.transformer import ModelOutput
from stn_fovea.tasks.classification import Task

OptimizerFactory = Callable[[Iterable[Any]], Optimizer]
SchedulerFactory = Callable[[Optimizer], LRScheduler]

# the share of a training epoch's glimpse windows that read the image, one value per glimpse index of a
# several-glimpse model (ON_IMAGE/<index>); StopOnLostGlimpse stops a run where it is 0
ON_IMAGE = "train/glimpse_on_image"


class GlimpseModule(L.LightningModule):
    """Trains any model that returns a :class:`ModelOutput` on its task.

    Batches are dicts with "image" (B, C, H, W), "label" (B,) and "source" (the split name used in
    metric names: "train", "val", "val_level", "test/<protocol>").

    Args:
        net: the model; ``localization_parameters()`` (if it has one) names the parameters that decide
            where to look.
        task: the loss and the metrics (``conf/task``).
        optimizer: partial optimiser, called with the parameter groups.
        scheduler: partial LR scheduler, called with the optimiser, or None.
        scheduler_interval: "epoch" or "step".
        localization_lr_scale: learning-rate multiplier of the localisation parameters (1 = the
            reference; the STN paper lowers it to stabilise localisation).
    """

    def __init__(
        self,
        net: nn.Module,
        task: Task,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        scheduler_interval: str = "epoch",
        localization_lr_scale: float = 1.0,
    ) -> None:
        super().__init__()
        if scheduler_interval not in ("epoch", "step"):
            raise ConfigError(f"scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
        if localization_lr_scale <= 0:
            raise ConfigError(f"localization_lr_scale must be positive, got {localization_lr_scale}")
        self.net, self.task = net, task
        task.attach(net)
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.scheduler_interval = scheduler_interval
        self.localization_lr_scale = localization_lr_scale
        self.metrics = nn.ModuleDict()
        # a window off the image reads nothing of it, unless reflection padding mirrors the image there
        self.watch_windows = not any(
            isinstance(sampler, AffineSampler) and sampler.padding_mode == "reflection"
            for sampler in net.modules()
        )

    def forward(self, image: Tensor, **options: Any) -> ModelOutput:
        """The net's output; ``options`` go to the net (e.g. ``saccades=`` for What/Where)."""
        return self.net(image, **options)

    @staticmethod
    def _metric_key(source: str) -> str:
        # ModuleDict keys may not contain "." nor shadow nn.Module attributes such as "train".
        return "of_" + source.replace("/", "__")

    def _metrics(self, source: str) -> MetricCollection:
        key = self._metric_key(source)
        if key not in self.metrics:
            # in train mode, whatever the mode now: a set first made during validation would otherwise
            # stay in eval mode into training (Lightning restores only the modes it saw before)
            self.metrics[key] = self.task.new_metrics().to(self.device).train()
        return self.metrics[key]

    def _step(self, batch: dict[str, Any]) -> Tensor:
        source = batch["source"]
        # a net with a per-sample cache (What/Where's retina codes) gets the ids of the rendered images
        reads_ids = getattr(self.net, "reads_sample_ids", False) and "sample_id" in batch
        output = self(batch["image"], sample_ids=batch["sample_id"]) if reads_ids else self(batch["image"])
        loss = self.task.loss(output, batch)
        metrics = self._metrics(source)
        self.task.update(metrics, output, batch)
        training = source == "train"
        shown = source in ("train", "val")
        options = dict(
            on_step=training, on_epoch=True, batch_size=len(batch["label"]), add_dataloader_idx=False
        )
        if training and self.watch_windows and output.windows is not None:
            self._log_windows_on_image(output.windows, batch["image"].shape[-2:], options)
        # under DDP: the evaluation loss averaged over the processes (the metrics sum their own states)
        self.log(f"{source}/loss", loss, prog_bar=shown, sync_dist=not training, **options)
        key = self._metric_key(source)
        for name, metric in metrics.items():
            self.log(
                f"{source}/{name}",
                metric,
                prog_bar=shown,
                metric_attribute=f"metrics.{key}.{name}",
                **options,
            )
        return loss

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        return self._step(batch)

    def validation_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._step(batch)

    def test_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._step(batch)

    def _log_windows_on_image(self, windows: Tensor, image_size: torch.Size, options: dict[str, Any]) -> None:
        """The share of the windows (B, G, 4, 2) that read the image, per glimpse index when G > 1: read
        by StopOnLostGlimpse, shown in TensorBoard. Synced at the epoch's end only, so that every
        process of a DDP run stops, or none."""
        shares = on_image(windows, image_size).float().mean(dim=0)
        for index, share in enumerate(shares):
            name = ON_IMAGE if len(shares) == 1 else f"{ON_IMAGE}/{index}"
            self.log(name, share, **{**options, "on_step": False, "sync_dist": True})

    def parameter_groups(self) -> list[dict[str, Any]]:
        """The trainable parameters (frozen ones, e.g. What/Where's What net, are left out), the
        localisation's with ``localization_lr_scale`` applied."""
        trainable = [p for p in self.net.parameters() if p.requires_grad]
        located = [p for p in getattr(self.net, "localization_parameters", list)() if p.requires_grad]
        if not located or self.localization_lr_scale == 1.0:
            return [{"params": trainable}]
        base_lr = getattr(self.optimizer_factory, "keywords", {}).get("lr")
        if base_lr is None:
            raise ConfigError("localization_lr_scale needs the optimiser's lr in its config")
        located_ids = {id(p) for p in located}
        return [
            {"params": [p for p in trainable if id(p) not in located_ids]},
            {"params": located, "lr": base_lr * self.localization_lr_scale},
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
    def predict_glimpses(self, image: Tensor) -> ModelOutput:
        """Forward pass in eval mode, for figures; restores the training mode afterwards."""
        was_training = self.training
        self.eval()
        try:
            return self(image)
        finally:
            self.train(was_training)
