"""WhereNet (whatwhere.md 3.4, 9.5): the reference's layers, and its dropout quirk as a switch."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from stn_fovea.models.where_net import WhereNet


def test_the_reference_layers():
    net = WhereNet()
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(2880, 1000), (1000, 1000), (1000, 240)]
    assert not any(isinstance(m, nn.BatchNorm1d) for m in net.modules())  # the Fig 4 runs: BN off
    with_bn = WhereNet(batch_norm=True)
    kinds = [type(m) for m in with_bn.hidden]
    assert kinds == [nn.Linear, nn.ReLU, nn.BatchNorm1d, nn.Linear, nn.ReLU, nn.BatchNorm1d]  # BN after ReLU


def test_dropout_stays_on_at_evaluation_unless_switched_off():
    features = torch.rand(8, 2880, generator=torch.Generator().manual_seed(0))
    faithful = WhereNet(in_features=2880, hidden=(64, 64), out_features=240).eval()
    assert not torch.equal(faithful(features), faithful(features))  # stochastic, as the reference
    deterministic = WhereNet(hidden=(64, 64), dropout_at_eval=False).eval()
    assert torch.equal(deterministic(features), deterministic(features))
    deterministic.train()
    assert not torch.equal(deterministic(features), deterministic(features))  # still dropout in training
    with pytest.raises(ValueError, match="dropout"):
        WhereNet(dropout=1.0)
