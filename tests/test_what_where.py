"""The What/Where saccade loop (whatwhere.md 9.6) with stub pathway parts whose choices are known: where
each crop comes from, how fixations add up and clamp, what each re-encoding sees."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import Tensor, nn

from stn_fovea.data.placement import translate
from stn_fovea.models.transformer import crop_windows
from stn_fovea.models.what_where import WhatWhere

# colliculus cells of the stub: cell c saccades to these (rows, cols) offsets
CELL_OFFSETS = torch.tensor([[0, 0], [10, 0], [0, -7], [30, 25], [-3, 4]])


class SpyWhitening(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[Tensor, bool]] = []

    def forward(self, image: Tensor, recentre: bool = True) -> Tensor:
        self.calls.append((image.clone(), recentre))
        return image


class ChosenCell(nn.Module):
    """A Where net that always predicts the given cell."""

    def __init__(self, cell: int) -> None:
        super().__init__()
        self.cell = cell

    def forward(self, features: Tensor) -> Tensor:
        return nn.functional.one_hot(torch.full((len(features),), self.cell), len(CELL_OFFSETS)).float()


def model(cell: int, saccades: int = 1, **options) -> tuple[WhatWhere, SpyWhitening]:
    whitening = SpyWhitening()
    retina = nn.Flatten()
    colliculus = SimpleNamespace(cell_offsets=CELL_OFFSETS)
    what = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))
    net = WhatWhere(what, ChosenCell(cell), retina, whitening, colliculus, saccades=saccades, **options)  # type: ignore[arg-type]
    return net, whitening


def test_re_encoding_as_trained_is_a_named_option():
    net, whitening = model(cell=3, saccades=3, reencode_as_trained=True)
    net(IMAGES)
    assert [recentre for _, recentre in whitening.calls] == [True, True, True]


IMAGES = torch.rand(3, 1, 128, 128, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("cell", [1, 2, 3, 4])
def test_one_saccade_crops_at_the_chosen_cell(cell):
    net, whitening = model(cell)
    output = net(IMAGES)
    i, j = CELL_OFFSETS[cell].tolist()
    torch.testing.assert_close(output.glimpses[:, -1], IMAGES[:, :, 50 + i : 78 + i, 50 + j : 78 + j])
    torch.testing.assert_close(output.glimpses[:, 0], IMAGES[:, :, 50:78, 50:78])  # k = 0: the control
    centre = output.windows[:, -1].mean(dim=1) - 63.5  # (x, y) offset of the last window from the centre
    torch.testing.assert_close(centre, torch.tensor([[float(j), float(i)]] * 3))
    assert [recentre for _, recentre in whitening.calls] == [True]  # one encoding, with +0.5 and clip
    assert output.extras["fixations"][:, -1].tolist() == [[i, j]] * 3


def test_further_saccades_add_up_clamp_and_re_encode_the_recentred_image():
    net, whitening = model(cell=3, saccades=3)  # +30, +25 each time: 30/25, 50/50 (clamped), 50/50
    output = net(IMAGES)
    assert output.extras["fixations"][0].tolist() == [[0, 0], [30, 25], [50, 50], [50, 50]]
    assert output.glimpses.shape == (3, 4, 1, 28, 28)
    torch.testing.assert_close(output.glimpses[:, -1], IMAGES[:, :, 100:128, 100:128])
    assert [recentre for _, recentre in whitening.calls] == [True, False, False]
    expected = translate(IMAGES[:, 0], -torch.tensor([[30, 25]] * 3), fill=0.5).unsqueeze(1)
    torch.testing.assert_close(whitening.calls[1][0], expected)  # the original image moved, grey around
    assert net(IMAGES, saccades=0).glimpses.shape == (3, 1, 1, 28, 28)  # the control alone


def test_a_crop_outside_the_image_is_refused():
    with pytest.raises(ValueError, match="leaves"):
        crop_windows(IMAGES, torch.tensor([[51, 0]] * 3), 28)


class CellSequence(nn.Module):
    """A Where net that predicts cells[k] at its k-th call (one call per saccade)."""

    def __init__(self, cells: list[int]) -> None:
        super().__init__()
        self.cells, self.calls = cells, 0

    def forward(self, features: Tensor) -> Tensor:
        cell = self.cells[min(self.calls, len(self.cells) - 1)]
        self.calls += 1
        return nn.functional.one_hot(torch.full((len(features),), cell), len(FAR_OFFSETS)).float()


FAR_OFFSETS = torch.tensor([[0, -12], [0, 54]])  # a cell of ring 9 lies 54 px out: beyond the clamp


def test_a_saccade_beyond_the_clamp_is_not_clamped_itself_only_the_fixation_is():
    # whatwhere.md 9.7: -12, then +54 from there: 42 (clamping the cell to 50 first would give 38)
    colliculus = SimpleNamespace(cell_offsets=FAR_OFFSETS)
    what = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))
    net = WhatWhere(what, CellSequence([0, 1]), nn.Flatten(), SpyWhitening(), colliculus, saccades=2)  # type: ignore[arg-type]
    assert net(IMAGES).extras["fixations"][0].tolist() == [[0, 0], [0, -12], [0, 42]]
    net = WhatWhere(what, CellSequence([1]), nn.Flatten(), SpyWhitening(), colliculus, saccades=1)  # type: ignore[arg-type]
    assert net(IMAGES).extras["fixations"][0].tolist() == [[0, 0], [0, 50]]  # one saccade: clamped
