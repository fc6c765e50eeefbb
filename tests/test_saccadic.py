"""The saccadic ATN (ours): where each glimpse goes, what each reading is, the loss over the readings,
end-to-end gradients, and a short run measured after each number of saccades."""

import csv
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from conftest import SHORT_RUN_128
from stn_fovea.errors import ConfigError
from stn_fovea.models.classifier import WhatNet
from stn_fovea.models.localization import PeripheralLocalization
from stn_fovea.models.saccadic import SaccadicATN
from stn_fovea.models.sampler import AffineSampler
from stn_fovea.tasks.classification import SaccadeClassification
from stn_fovea.train import train


def saccadic(read: str = "last", saccades: int = 3, aim: str = "residual") -> SaccadicATN:
    torch.manual_seed(0)
    localization = PeripheralLocalization(input_size=128, channels=(4, 4), hidden=8, batch_norm=True)
    sampler = AffineSampler((28, 28))
    return SaccadicATN(localization, WhatNet(), sampler, saccades=saccades, read=read, aim=aim).eval()


def glimpse_centres(model: SaccadicATN) -> torch.Tensor:
    """(B, glimpses, (x, y)): where each glimpse of 2 random images looked, in px from the centre."""
    return model(torch.rand(2, 1, 128, 128)).windows.mean(dim=2) - 63.5


def test_glimpse_zero_is_central_and_each_saccade_goes_where_the_head_says():
    model = saccadic(aim="absolute")
    with torch.no_grad():  # a head that always says: 16 px right, 8 px down (tx = 16 / 64, ty = 8 / 64)
        model.head.bias.copy_(torch.tensor([0.25, 0.125]))
    centres = glimpse_centres(model)
    torch.testing.assert_close(centres[:, 0], torch.zeros(2, 2), atol=1e-4, rtol=0)
    for step in (1, 2, 3):
        torch.testing.assert_close(centres[:, step], torch.tensor([[16.0, 8.0]] * 2), atol=1e-4, rtol=0)
    output = model(torch.rand(2, 1, 128, 128))
    assert output.glimpses.shape == (2, 4, 1, 28, 28) and output.thetas.shape == (2, 4, 2, 3)
    assert model(torch.rand(2, 1, 128, 128), saccades=1).glimpses.shape[1] == 2


def test_a_residual_aim_sends_saccade_one_where_the_periphery_says_and_then_moves_by_the_head():
    model = saccadic(aim="residual")
    with torch.no_grad():  # saccade 1: 16 px right, 8 px down; each later one: 8 more px right
        model.first.bias.copy_(torch.tensor([0.25, 0.125]))
        model.head.bias.copy_(torch.tensor([0.125, 0.0]))
    centres = glimpse_centres(model)
    torch.testing.assert_close(centres[:, 0], torch.zeros(2, 2), atol=1e-4, rtol=0)
    for step, x in ((1, 16.0), (2, 24.0), (3, 32.0)):
        torch.testing.assert_close(centres[:, step], torch.tensor([[x, 8.0]] * 2), atol=1e-4, rtol=0)


@pytest.mark.parametrize("read", ["last", "all"])
def test_the_reading_after_k_saccades(read):
    model = saccadic(read)
    output = model(torch.rand(3, 1, 128, 128))
    per_glimpse = model.classifier(output.glimpses.flatten(0, 1)).unflatten(0, (3, 4))
    if read == "last":  # the classifier on glimpse k
        expected = per_glimpse
    else:  # the mean log-probabilities of glimpses 0..k
        log_probs = F.log_softmax(per_glimpse, dim=-1)
        expected = log_probs.cumsum(dim=1) / torch.arange(1, 5).view(1, 4, 1)
    torch.testing.assert_close(output.extras["saccade_logits"], expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(output.logits, expected[:, -1])


def test_the_loss_averages_the_readings_after_every_saccade():
    model, task = saccadic(), SaccadeClassification(nn.CrossEntropyLoss(), {"acc": MulticlassAccuracy(10)})
    with torch.no_grad():  # saccades that go somewhere: readings that differ
        model.head.weight.normal_(std=0.5)
        model.head.bias.copy_(torch.tensor([0.3, -0.2]))
    output, labels = model(torch.rand(3, 1, 128, 128)), torch.tensor([1, 5, 7])
    readings = output.extras["saccade_logits"]
    assert not torch.allclose(readings[:, 0], readings[:, -1])
    expected = torch.stack([F.cross_entropy(readings[:, k], labels) for k in range(4)]).mean()
    torch.testing.assert_close(task.loss(output, {"label": labels}), expected)
    with pytest.raises(ConfigError, match="needs a model that saccades"):
        task.attach(WhatNet())
    skip_central = SaccadeClassification(
        nn.CrossEntropyLoss(), {"acc": MulticlassAccuracy(10)}, first_reading=1
    )
    skip_central.attach(model)
    without_central = torch.stack([F.cross_entropy(readings[:, k], labels) for k in range(1, 4)]).mean()
    torch.testing.assert_close(skip_central.loss(output, {"label": labels}), without_central)
    with pytest.raises(ConfigError, match="leaves no reading to train"):
        SaccadeClassification(nn.CrossEntropyLoss(), {"acc": MulticlassAccuracy(10)}, first_reading=4).attach(
            model
        )


@pytest.mark.parametrize("aim", ["absolute", "residual"])
def test_the_classification_loss_reaches_where_every_saccade_looks(aim):
    model = saccadic(aim=aim).train()
    heads = ("cell", "head") if aim == "absolute" else ("cell", "head", "first")
    with torch.no_grad():  # past initialisation (the zero heads let nothing through)
        for head in heads[1:]:
            getattr(model, head).weight.normal_(std=0.1)
    output = model(torch.rand(4, 1, 128, 128))
    F.cross_entropy(output.logits, torch.tensor([0, 1, 2, 3])).backward()
    for name in ("localization", *heads):
        grads = [p.grad for p in getattr(model, name).parameters() if p.requires_grad]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), name
    expected = {p for name in ("localization", *heads) for p in getattr(model, name).parameters()}
    assert set(model.localization_parameters()) == expected


def test_a_short_run_is_measured_after_each_number_of_saccades(compose_train):
    cfg = compose_train(*SHORT_RUN_128, "model=saccadic_atn")
    metrics = train(cfg)
    run = Path(cfg.paths.output_dir)
    assert {"test/general/acc", "test/c07/acc"} <= set(metrics["test"])
    rows = list(csv.DictReader((run / "eval" / "grid.csv").open()))
    assert sorted({row["saccades"] for row in rows}) == ["0", "1", "2", "3"]
    assert len(rows) == 4 * 2 * 2  # saccades x contrasts x radii
    assert (run / "eval" / "glimpse_boxes.png").is_file()
