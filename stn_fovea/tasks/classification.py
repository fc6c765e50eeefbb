"""Digit classification: a loss on the model's logits and torchmetrics on its predictions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from torch import Tensor, nn
from torchmetrics import Metric, MetricCollection

from stn_fovea.errors import ConfigError
from stn_fovea.models.transformer import ModelOutput


class Task(Protocol):
    """What :class:`~stn_fovea.models.module.GlimpseModule` needs of a task (``conf/task``)."""

    sweep_metric: str

    def attach(self, net: nn.Module) -> None: ...

    def new_metrics(self) -> MetricCollection: ...

    def loss(self, output: ModelOutput, batch: Mapping[str, Any]) -> Tensor: ...

    def update(self, metrics: MetricCollection, output: ModelOutput, batch: Mapping[str, Any]) -> None: ...


class Classification(nn.Module):
    """The task of every model that names a digit.

    Args:
        loss: module mapping (logits (B, classes), labels (B,)) to a scalar, e.g. ``nn.CrossEntropyLoss``.
        metrics: name -> metric updated with (logits, labels); logged as ``<source>/<name>``.
        sweep_metric: the metric a sweep optimises, ``test/<protocol>/<metric>``; ``train`` returns it.
    """

    def __init__(
        self, loss: nn.Module, metrics: Mapping[str, Metric], sweep_metric: str = "test/general/acc"
    ) -> None:
        super().__init__()
        if not metrics:
            raise ConfigError("task.metrics needs at least one metric, e.g. acc (MulticlassAccuracy)")
        self.criterion = loss
        self.templates = MetricCollection(dict(metrics))
        self.sweep_metric = sweep_metric

    def attach(self, net: nn.Module) -> None:
        """Called with the model the task trains (a task that needs more than the logits checks it)."""

    def new_metrics(self) -> MetricCollection:
        """A fresh set of the task's metrics, for one batch source."""
        return self.templates.clone()

    def loss(self, output: ModelOutput, batch: Mapping[str, Any]) -> Tensor:
        return self.criterion(output.logits, batch["label"])

    def update(self, metrics: MetricCollection, output: ModelOutput, batch: Mapping[str, Any]) -> None:
        metrics.update(output.logits, batch["label"])
