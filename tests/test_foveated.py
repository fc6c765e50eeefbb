"""Foveated convolutions (Harris et al. 2019) and model=foveanet / foveanet_control."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import TINY_RUN_128
from stn_fovea.errors import ConfigError
from stn_fovea.models.foveated import FoveaNet, FoveatedConv2d
from stn_fovea.train import train


def changed_levels(conv: FoveatedConv2d, row: int, col: int) -> list[int]:
    """Which levels' output channels change when one input pixel does."""
    image = torch.zeros(1, 1, 48, 48)
    before = conv(image)
    image[0, 0, row, col] = 1.0
    after = conv(image)
    levels = len(conv.branches)
    pairs = zip(before.chunk(levels, 1), after.chunk(levels, 1), strict=True)
    return [level for level, (old, new) in enumerate(pairs) if not torch.equal(old, new)]


def test_each_level_sees_only_its_centre_crop_and_all_are_half_the_input():
    torch.manual_seed(0)
    conv = FoveatedConv2d(1, 32, size=48, levels=4)
    assert conv(torch.zeros(2, 1, 48, 48)).shape == (2, 32, 24, 24)
    # crops: level 0 the whole 48, level 1 rows 12-35, level 2 rows 18-29, level 3 rows 21-26
    assert changed_levels(conv, 2, 2) == [0]  # the periphery: the coarse whole-image branch only
    assert changed_levels(conv, 13, 13) == [0, 1]
    assert changed_levels(conv, 19, 28) == [0, 1, 2]
    assert changed_levels(conv, 24, 23) == [0, 1, 2, 3]  # the fovea: every branch


def test_the_control_is_a_plain_conv_and_bad_sizes_are_one_line():
    assert isinstance(FoveaNet(foveated=False).first, torch.nn.Conv2d)
    assert FoveaNet()(torch.rand(3, 1, 48, 48)).shape == (3, 10)
    with pytest.raises(ConfigError, match="divisible"):
        FoveatedConv2d(1, 30, size=48, levels=4)
    with pytest.raises(ConfigError, match="divisible"):
        FoveatedConv2d(1, 32, size=44, levels=4)


@pytest.mark.parametrize("model", ["foveanet", "foveanet_control"])
def test_foveanet_trains_on_the_retina_data_and_reports_its_gaze_error(compose_train, mnist_root, model):
    cfg = compose_train(*TINY_RUN_128, f"model={model}", "curriculum=none", "trainer.max_epochs=1")
    train(cfg)
    metrics = (Path(cfg.paths.output_dir) / "eval" / "metrics.json").read_text()
    assert '"gaze_error_px"' in metrics
