"""WhereNet, the What/Where model's "where" MLP (whatwhere.md 3.4, 9.5): 2880 retina coefficients ->
240 logits of the colliculus map (the predicted accuracy of a saccade to each cell)."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn


class WhereNet(nn.Module):
    """Linear -> ReLU [-> BatchNorm] per hidden layer, dropout before the last Linear.

    Args:
        in_features, hidden, out_features: 2880 -> (1000, 1000) -> 240 in the reference.
        batch_norm: BatchNorm1d after each hidden ReLU (the Fig 4 runs had it off).
        dropout: p of the dropout before the output layer (0.5 in the Fig 4 runs).
        dropout_at_eval: the reference calls ``F.dropout(x, p)`` without ``training=``, so dropout stays
            on at evaluation and predictions are stochastic: faithful by default, off with False.
    """

    def __init__(
        self,
        in_features: int = 2880,
        hidden: Sequence[int] = (1000, 1000),
        out_features: int = 240,
        batch_norm: bool = False,
        dropout: float = 0.5,
        dropout_at_eval: bool = True,
    ) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        layers: list[nn.Module] = []
        width = in_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            if batch_norm:
                layers.append(nn.BatchNorm1d(size))
            width = size
        self.hidden = nn.Sequential(*layers)
        self.out = nn.Linear(width, out_features)
        self.dropout, self.dropout_at_eval = dropout, dropout_at_eval

    def forward(self, features: Tensor) -> Tensor:
        hidden = self.hidden(features)
        hidden = F.dropout(hidden, self.dropout, training=self.training or self.dropout_at_eval)
        return self.out(hidden)
