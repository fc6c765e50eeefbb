"""The What/Where model's "where" task (whatwhere.md 3.4, 9.4): learn the colliculus map, the accuracy
the What net would reach after a saccade to each cell, from the image's retina code."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from stn_fovea.errors import ConfigError
from stn_fovea.models.transformer import ModelOutput
from stn_fovea.tasks.classification import Classification


class WhereMap(Classification):
    """Binary cross-entropy between the predicted map (``extras["where_logits"]``) and the targets of
    each digit's offset, made by the model from its What net's accuracy map (``where_targets``).

    The metrics are those of :class:`Classification` on the model's final answer (after its saccades),
    so ``acc`` is the accuracy the map buys, and checkpoints and sweeps compare like the other models.

    Args:
        loss: module mapping (logits (B, cells), targets (B, cells)) to a scalar, e.g.
            ``nn.BCEWithLogitsLoss`` (the reference).
        metrics, sweep_metric: as :class:`Classification`.
    """

    def attach(self, net: nn.Module) -> None:
        targets = getattr(net, "where_targets", None)
        if targets is None:
            raise ConfigError(
                f"task=where_map trains the Where pathway of a What/Where model; {type(net).__name__} has "
                "no colliculus map (use model=what_where, or task=classification)"
            )
        self.targets = targets

    def loss(self, output: ModelOutput, batch: Mapping[str, Any]) -> Tensor:
        return self.criterion(output.extras["where_logits"], self.targets(batch["shift"]))
