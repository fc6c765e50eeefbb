"""The What/Where colliculus (whatwhere.md 9.4): cells are weighted averages, saccades land where the
weights peak (the published radii), and targets paste the What accuracy map on the digit."""

from __future__ import annotations

import pytest
import torch

from stn_fovea.models.colliculus import Colliculus
from stn_fovea.models.where_retina import RetinaBankSpec, where_retina_filter

SPEC = RetinaBankSpec()


@pytest.fixture(scope="module")
def two_azimuths() -> Colliculus:
    """The cells of azimuths 0 (down the rows) and 6 (along the columns) of every ring: 240 filters."""
    bank = torch.stack(
        [
            torch.stack(
                [
                    torch.stack(
                        [
                            torch.stack([where_retina_filter(SPEC, o, a, r, p) for p in range(2)])
                            for r in range(10)
                        ]
                    )
                    for a in (0, 6)
                ]
            )
            for o in range(6)
        ]
    )
    return Colliculus(bank)


def test_cells_are_weighted_averages_and_saccades_land_at_the_published_radii(two_azimuths):
    assert two_azimuths.num_cells == 20
    torch.testing.assert_close(two_azimuths.weights.sum(dim=(-2, -1)), torch.ones(20))
    radii = two_azimuths.cell_offsets.float().norm(dim=1)
    # the published radii are means over the 24 azimuths of whole-pixel peaks: one azimuth's peak lies
    # within 2 px of them (measured: 2, 3, 5, 6.1, 9.1, 12.2, 19.0, 27.1, 36.1); ring 9 spans 48.7-55.6 px
    # and is not clamped to the fixation's 50 px (the reference clamps only the sum of the saccades)
    published = torch.tensor([2.3, 3.3, 4.4, 6.4, 9.4, 12.2, 17.9, 26.7, 37.9])
    for ring_radii in (radii[:10], radii[10:]):
        torch.testing.assert_close(ring_radii[:9], published, atol=2.0, rtol=0)
        assert 50 < ring_radii[9] <= 55.6
    rows, cols = two_azimuths.cell_offsets[8].tolist()  # azimuth 0, ring 8: down the rows
    assert rows > 30 and abs(cols) < 6
    rows, cols = two_azimuths.cell_offsets[18].tolist()  # azimuth 6, ring 8: along the columns
    assert cols > 30 and abs(rows) < 6


def test_a_flat_map_gives_flat_targets_and_a_peak_follows_the_digit(two_azimuths):
    flat = two_azimuths.target_table(torch.full((55, 55), 0.1), max_shift_px=40)
    assert flat.shape == (81, 81, 20)
    torch.testing.assert_close(flat, torch.full_like(flat, 0.1))
    # a What net right only on the centred digit: the target peaks on the cell under the digit
    peaked = torch.full((55, 55), 0.1)
    peaked[27, 27] = 1.0
    table = two_azimuths.target_table(peaked, max_shift_px=40)
    # map index 27 sits on pixel 64 (+ the digit's offset): the half-pixel convention of whatwhere.md 9.1.7
    for i, j in [(0, 0), (5, -3), (-40, 40)]:
        expected = 0.1 + 0.9 * two_azimuths.weights[:, 64 + i, 64 + j]
        torch.testing.assert_close(table[i + 40, j + 40], expected, atol=1e-6, rtol=0)
    for shift, cell in [((37, 0), 8), ((0, 37), 18), ((-37, 0), None), ((19, 0), 6)]:
        target = table[shift[0] + 40, shift[1] + 40]
        if cell is None:
            assert target.max() < 0.1 + 1e-3  # nothing up the rows among these cells
        else:
            assert int(target.argmax()) == cell, (shift, target)
    with pytest.raises(ValueError, match="55x55"):
        two_azimuths.target_table(torch.zeros(28, 28), 40)
