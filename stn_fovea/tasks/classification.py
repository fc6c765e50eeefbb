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


class SaccadeClassification(Classification):
    """Classification after every saccade of a model that reads several glimpses (``model=saccadic_atn``):
    the loss is the mean of the criterion on the reading after 0, 1, ..., k saccades
    (``extras["saccade_logits"]``), so that every glimpse is trained to be read and every saccade to
    help; the metrics score the final reading, as for any model.

    Args:
        first_reading: the loss averages the readings after ``first_reading``, ..., k saccades: 0 (the
            default) trains the classifier on the central glimpse too; 1 leaves the central glimpse,
            which rarely holds the digit, out of the loss. The metrics are the same either way.
        loss, metrics, sweep_metric: as :class:`Classification`.
    """

    def __init__(
        self,
        loss: nn.Module,
        metrics: Mapping[str, Metric],
        sweep_metric: str = "test/general/acc",
        first_reading: int = 0,
    ) -> None:
        super().__init__(loss, metrics, sweep_metric)
        if first_reading < 0:
            raise ConfigError(
                f"task.first_reading must be 0 or more (a number of saccades), got {first_reading}"
            )
        self.first_reading = first_reading

    def attach(self, net: nn.Module) -> None:
        if not hasattr(net, "saccades"):
            raise ConfigError(
                f"task=saccade_classification needs a model that saccades (model=saccadic_atn), got "
                f"{type(net).__name__}: use task=classification"
            )
        if self.first_reading > net.saccades:
            raise ConfigError(
                f"task.first_reading={self.first_reading} leaves no reading to train: the model makes "
                f"{net.saccades} saccades (model.net.saccades); use 0..{net.saccades}"
            )

    def loss(self, output: ModelOutput, batch: Mapping[str, Any]) -> Tensor:
        readings = output.extras["saccade_logits"][:, self.first_reading :]
        labels = batch["label"].repeat_interleave(readings.shape[1])
        return self.criterion(readings.flatten(0, 1), labels)
