"""The classic STN benchmarks' data: RTS MNIST (42x42) and translated cluttered MNIST (60x60)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import TINY
from stn_fovea.data.cluttered_digits import ClutteredDigits
from stn_fovea.data.placement import translate
from stn_fovea.data.rts_digits import RotatedScaledDigits
from stn_fovea.errors import ConfigError
from stn_fovea.run_setup import build_data
from stn_fovea.train import train
from test_evaluators import bar_digits


def centroid(images: torch.Tensor) -> torch.Tensor:
    """(B, 2) intensity centroid (rows, cols) of (B, 1, H, W) images, from the image centre."""
    x = images[:, 0]
    height, width = x.shape[-2:]
    mass = x.sum(dim=(-2, -1))
    rows = (x.sum(-1) * torch.arange(height)).sum(-1) / mass - (height - 1) / 2
    cols = (x.sum(-2) * torch.arange(width)).sum(-1) / mass - (width - 1) / 2
    return torch.stack((rows, cols), dim=-1)


def test_rts_digits_rotate_scale_and_move_inside_the_canvas():
    digits = bar_digits().images  # centred bars: their centroid is the frame's centre
    keys = torch.arange(len(digits))
    batch = RotatedScaledDigits()(digits, keys)
    assert batch.images.shape == (10, 1, 42, 42) and 0 <= batch.images.min() and batch.images.max() <= 1
    # the digit's centre moves by the drawn translation (reported, rounded, as the shift)
    params = RotatedScaledDigits().params(keys)
    assert torch.allclose(centroid(batch.images), params.translate.flip(-1), atol=0.6)
    assert torch.equal(batch.shifts, params.translate.flip(-1).round().long())
    assert params.angle.abs().max() <= 45 and params.scale.min() >= 0.7 and params.scale.max() <= 1.2
    # the scaled 28x28 frame, before rotation, stays on the 42x42 canvas
    assert torch.all(params.translate.abs() + 14 * params.scale.view(-1, 1) <= 21 + 1e-4)
    # an upright bar stays upright without rotation, and turns with it
    still = RotatedScaledDigits(degrees=0.0, scale=(1.0, 1.0))(digits, keys).images
    rows_lit = (still[:, 0] > 0.5).any(-1).sum(-1)
    assert torch.all(rows_lit <= 3)  # the bar is 2 rows high (bilinear may smear it into a third)


def test_rts_settings_are_checked():
    with pytest.raises(ConfigError, match="largest scale"):
        RotatedScaledDigits(size=32)
    with pytest.raises(ConfigError, match="scale"):
        RotatedScaledDigits(scale=(1.0, 0.5))


def test_cluttered_digits_place_the_digit_and_add_clipped_pieces_of_other_digits():
    digits = bar_digits().images
    keys = torch.arange(len(digits))
    bare = ClutteredDigits(pieces=0)(digits, keys)
    padded = torch.nn.functional.pad(digits.float() / 255.0, (16, 16, 16, 16))
    assert torch.equal(bare.images[:, 0], translate(padded, bare.shifts))
    assert bare.shifts.abs().max() <= 16  # the 28x28 frame stays inside the 60x60 canvas
    # clutter cut from all-white digits: six white 6x6 squares on a black canvas, overlaps clipped at 1
    white = torch.full((5, 28, 28), 255, dtype=torch.uint8)
    blank = torch.zeros(len(keys), 28, 28, dtype=torch.uint8)
    cluttered = ClutteredDigits().bind(white)(blank, keys).images
    lit = (cluttered > 0).sum(dim=(1, 2, 3))
    assert cluttered.max() == 1.0 and torch.all((lit >= 36) & (lit <= 6 * 36))
    assert torch.all(cluttered[cluttered > 0] == 1.0)
    # the clutter is a function of the key, and differs between keys
    again = ClutteredDigits().bind(white)(blank[:3], keys[:3]).images
    assert torch.equal(again, cluttered[:3]) and not torch.equal(cluttered[0], cluttered[1])


def test_clutter_needs_its_digits_and_they_are_not_part_of_the_draw():
    with pytest.raises(ConfigError, match="bind"):
        ClutteredDigits()(bar_digits().images, torch.arange(10))
    pool = torch.zeros(3, 28, 28, dtype=torch.uint8)
    assert ClutteredDigits().bind(pool).level == ClutteredDigits().level == (60.0, 6.0, 6.0)


@pytest.mark.parametrize("data", ["rts", "cluttered60"])
def test_a_classic_benchmark_trains_and_is_measured(compose_train, mnist_root, data):
    cfg = compose_train(f"data={data}", "model=stn", "trainer.max_epochs=1", *TINY)
    datamodule = build_data(cfg)
    datamodule.setup("fit")
    assert all(recipe.size == cfg.data.size for recipe in datamodule.test_recipes.values())
    if data == "cluttered60":  # every split's recipe cuts its clutter from the training digits
        assert datamodule.test_recipes["cluttered"].pool is not None
        assert datamodule.val_recipe.pool is not None
    metrics = train(cfg)
    assert metrics["sweep_metric"] == f"test/{cfg.data.headline_protocol}/acc"
    assert (Path(cfg.paths.output_dir) / "eval" / "confusion_matrix.png").is_file()
