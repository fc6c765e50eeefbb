"""The What/Where retina bank (whatwhere.md 3.2 and 9.3): the published radii, the landmarks of the
second reading (row sums and energies of the outer ring, from SLIP's median normalisation), where each
filter lies, the reference's row layout, and the on-disk cache."""

from __future__ import annotations

import pytest
import torch

from stn_fovea.models.retina import SLIP_NORMALIZE, _fourier_grid, _invert, _retina_filter
from stn_fovea.models.where_retina import (
    RetinaBankSpec,
    WhereRetina,
    load_or_build_bank,
    where_retina_bank,
    where_retina_filter,
)

SPEC = RetinaBankSpec()  # the bank of SLIP 20191113 and master: median, max (the dataclass's default)
ZERO_SUM = RetinaBankSpec(normalization="slip_20171205")  # median, pre-processing, max (model=what_where)


def reference_filter(ring: int, azimuth: int, orientation: int, phase: int) -> torch.Tensor:
    return where_retina_filter(SPEC, orientation, azimuth, ring, phase)


def test_the_rings_lie_at_the_published_radii():
    published = [2.33, 3.29, 4.63, 6.54, 9.21, 12.99, 18.32, 25.83, 36.42, 51.35]
    assert [round(SPEC.radius_px(ring), 2) for ring in range(10)] == published


def test_the_outer_ring_has_the_landmarks_of_the_median_normalisation():
    # whatwhere.md 9.1.1 / 9.3: filters are not zero-sum at ring 9 (mean |row sum| about 59 over the cos
    # and sin filters, max about 186) and the energies span 5.5 (ring 0) to 666 (ring 9); a mean
    # normalisation makes the row sums about 0.
    outer = outer_ring(SPEC)
    sums = torch.tensor([float(f.sum()) for f in outer]).abs()
    assert sums.mean().item() == pytest.approx(59, abs=3) and sums.max().item() == pytest.approx(186, abs=3)
    assert max(float((f**2).sum()) for f in outer) == pytest.approx(666, rel=0.02)
    inner = [reference_filter(0, a, o, p) for o in range(6) for a in range(0, 24, 6) for p in range(2)]
    assert min(float((f**2).sum()) for f in inner) == pytest.approx(5.5, rel=0.1)
    for kernel in outer[:6] + inner[:6]:
        assert kernel.abs().max().item() == pytest.approx(1.0)
        assert kernel.flatten().quantile(0.5).item() == pytest.approx(0.0, abs=1e-12)


def outer_ring(spec: RetinaBankSpec) -> list[torch.Tensor]:
    return [
        where_retina_filter(spec, o, a, 9, p) for o in range(6) for a in range(0, 24, 3) for p in range(2)
    ]


def test_slip_20171205_filters_sum_to_zero_and_differ_from_the_median_bank_only_by_the_preprocessing():
    # whatwhere.md 9.7: the release on PyPI when the reference ran pre-processed after the median
    for kernel in outer_ring(ZERO_SUM):
        assert abs(float(kernel.sum())) < 1e-10 and kernel.abs().max().item() == pytest.approx(1.0)
    median = where_retina_filter(SPEC, 2, 5, 9, 0)  # median subtracted, then max: redo the two last steps
    mask = _retina_filter(_fourier_grid(128)[2], 128)
    expected = _invert(torch.fft.fftshift(torch.fft.fft2(median), dim=(-2, -1)) * mask)
    torch.testing.assert_close(where_retina_filter(ZERO_SUM, 2, 5, 9, 0), expected / expected.abs().max())


def test_the_order_of_the_normalisation_steps_matters(monkeypatch):
    # pre-processing BEFORE the median does not give zero-sum filters (ring-9 sums down to about -190)
    monkeypatch.setitem(SLIP_NORMALIZE, "preprocess_first", ("preprocess", "median", "max"))
    sums = [float(kernel.sum()) for kernel in outer_ring(RetinaBankSpec(normalization="preprocess_first"))]
    assert min(sums) == pytest.approx(-190, abs=5)
    with pytest.raises(ValueError, match="normalization must be one of"):
        RetinaBankSpec(normalization="slip_2017")


@pytest.mark.parametrize(("azimuth", "direction"), [(0, (1.0, 0.0)), (6, (0.0, 1.0)), (12, (-1.0, 0.0))])
def test_azimuth_0_points_down_the_rows_and_6_along_the_columns(azimuth, direction):
    # ring 6 (even: not staggered), energy centroid of the cos filter
    energy = reference_filter(6, azimuth, 0, 0) ** 2
    rows = torch.arange(128, dtype=torch.float64)
    centroid = torch.stack(((energy.sum(1) * rows).sum(), (energy.sum(0) * rows).sum())) / energy.sum()
    expected = 64 + SPEC.radius_px(6) * torch.tensor(direction, dtype=torch.float64)
    assert torch.linalg.norm(centroid - expected).item() < 1.5


def test_the_matrix_rows_follow_the_reference_layout_and_the_cache_returns_the_same(tmp_path):
    spec = RetinaBankSpec(n_orientations=2, n_azimuths=3, n_eccentricities=2, ecc_max=0.2)
    bank = where_retina_bank(spec)
    matrix = load_or_build_bank(spec, tmp_path)
    for theta, az, ecc, phi in [(0, 0, 0, 0), (1, 2, 1, 1), (0, 1, 1, 0), (1, 0, 0, 1)]:
        row = ((theta * 3 + az) * 2 + ecc) * 2 + phi
        torch.testing.assert_close(matrix[row], bank[theta, az, ecc, phi].flatten().float())
    (cached,) = tmp_path.glob("where_retina_*.pt")
    assert torch.equal(load_or_build_bank(spec, tmp_path), matrix)
    assert RetinaBankSpec(n_orientations=2, n_azimuths=3, n_eccentricities=2).key() != spec.key()
    retina = WhereRetina(spec, str(tmp_path))
    images = torch.rand(3, 1, 128, 128, generator=torch.Generator().manual_seed(0))
    expected = images.reshape(3, -1).double() @ bank.reshape(-1, 128 * 128).T
    torch.testing.assert_close(retina(images).double(), expected, rtol=1e-5, atol=1e-4)
    assert retina.out_features == 2 * 3 * 2 * 2
    with pytest.raises(ValueError, match="expects"):
        retina(torch.zeros(1, 1, 64, 64))
