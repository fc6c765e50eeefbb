"""The What/Where log-polar retina (whatwhere.md 3.2, exactly as 9.3): 2880 log-Gabor filters over the
whole 128x128 image, 10 eccentricities x 24 azimuths x 6 orientations x 2 phases, applied as one
(2880, 16384) matrix product. The bank takes seconds to build; :class:`WhereRetina` keeps it on disk,
keyed by its parameters, when given a cache folder.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from stn_fovea.models.retina import SLIP_NORMALIZE, log_gabor_filter


@dataclass(frozen=True)
class RetinaBankSpec:
    """The parameters of the bank (the reference's hard-coded constants of ``local_filter``).

    Ring i (0 = innermost) lies at eccentricity ``ecc_max * rho^-(n_eccentricities - i)`` of the half
    diagonal (radius 90.51 x ecc px at 128: 2.33 ... 51.35 px), with a preferred frequency
    ``min(sf_0_ratio / 2 / ecc, sf_0_max)``; odd rings are staggered by half an azimuth step; the
    orientation is measured from the azimuth; phase p is p pi / 2.

    ``normalization`` names the SLIP release whose ``normalize`` made the filters (whatwhere.md 9.7):
    "slip_20171205" (median, pre-processing, max|.|: zero-sum filters, the release on PyPI when the
    reference ran) or "slip_20191113" (median, max|.|, as SLIP's master: the outer ring's filters sum to
    up to about 186, so the whitening's +0.5 offsets their coefficients).
    """

    size: int = 128
    n_orientations: int = 6
    n_azimuths: int = 24
    n_eccentricities: int = 10
    n_phases: int = 2
    rho: float = 1.41
    ecc_max: float = 0.8
    sf_0_ratio: float = 0.03
    sf_0_max: float = 0.45
    B_sf: float = 0.4
    B_theta: float = math.pi / 12
    normalization: str = "slip_20191113"  # checkpoints from before the option read with this bank

    def __post_init__(self) -> None:
        if self.normalization not in SLIP_NORMALIZE:
            raise ValueError(
                f"normalization must be one of {sorted(SLIP_NORMALIZE)} (the SLIP release whose normalize "
                f"made the filters), got {self.normalization!r}"
            )

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(orientations, azimuths, eccentricities, phases): the reference's C-order row layout."""
        return self.n_orientations, self.n_azimuths, self.n_eccentricities, self.n_phases

    def eccentricity(self, ring: int) -> float:
        return self.ecc_max * self.rho ** -(self.n_eccentricities - ring)

    def radius_px(self, ring: int) -> float:
        return math.hypot(self.size, self.size) / 2 * self.eccentricity(ring)

    def azimuth(self, ring: int, index: int) -> float:
        """Radians; 0 points down the rows, pi / 2 along the columns."""
        return (index + 0.5 * (ring % 2)) * 2 * math.pi / self.n_azimuths

    def key(self) -> str:
        """A short digest of every parameter: the bank's file name in a cache."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:16]


def where_retina_filter(
    spec: RetinaBankSpec, orientation: int, azimuth: int, ring: int, phase: int
) -> Tensor:
    """One filter (size, size), float64, normalised by ``spec.normalization``; its max |.| is 1."""
    radius, psi, centre = spec.radius_px(ring), spec.azimuth(ring, azimuth), spec.size / 2
    return log_gabor_filter(
        spec.size,
        (centre + radius * math.cos(psi), centre + radius * math.sin(psi)),
        min(spec.sf_0_ratio / 2 / spec.eccentricity(ring), spec.sf_0_max),
        orientation * math.pi / spec.n_orientations + psi,
        spec.B_theta,
        spec.B_sf,
        phase=phase * math.pi / 2,
        normalize=SLIP_NORMALIZE[spec.normalization],
    )


def where_retina_bank(spec: RetinaBankSpec) -> Tensor:
    """Every filter, float64, shape (*spec.shape, size, size)."""
    bank = torch.empty(*spec.shape, spec.size, spec.size, dtype=torch.float64)
    for index in itertools.product(*(range(count) for count in spec.shape)):
        bank[index] = where_retina_filter(spec, *index)
    return bank


def load_or_build_bank(spec: RetinaBankSpec, cache_dir: str | Path | None = None) -> Tensor:
    """The bank as a (filters, pixels) float32 matrix, read from ``cache_dir`` when it is there and
    written there after a build (never partially: a temporary file is renamed)."""
    path = None if cache_dir is None else Path(cache_dir) / f"where_retina_{spec.key()}.pt"
    if path is not None and path.is_file():
        return torch.load(path, weights_only=True)
    matrix = where_retina_bank(spec).reshape(-1, spec.size * spec.size).float()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")  # processes building it at once do not mix
        torch.save(matrix, partial)
        partial.replace(path)
    return matrix


class WhereRetina(nn.Module):
    """Encode (B, 1, size, size) images as (B, 2880) retina coefficients: ``M @ image.ravel()``.

    The coefficients are not normalised (the filters' energies span two orders of magnitude), as in
    the reference; the product runs in float64 so that TF32 or float32 accumulation cannot blur them.

    Args:
        spec: the bank's parameters (the reference's by default).
        cache_dir: where the built bank is kept (None: build it every time).
    """

    def __init__(self, spec: RetinaBankSpec | None = None, cache_dir: str | None = None) -> None:
        super().__init__()
        self.spec = spec or RetinaBankSpec()
        # float64 once here, not at every forward (rebuilt or read, never checkpointed)
        matrix = load_or_build_bank(self.spec, cache_dir).double()
        self.register_buffer("matrix", matrix, persistent=False)

    @property
    def out_features(self) -> int:
        return int(self.matrix.shape[0])

    def bank(self) -> Tensor:
        """The filters as (orientations, azimuths, rings, phases, size, size), e.g. for the colliculus."""
        spec = self.spec
        shape = (spec.n_orientations, spec.n_azimuths, spec.n_eccentricities, spec.n_phases)
        return self.matrix.view(*shape, spec.size, spec.size)

    def forward(self, image: Tensor) -> Tensor:
        size = self.spec.size
        if image.shape[-3:] != (1, size, size):
            raise ValueError(f"WhereRetina expects (B, 1, {size}, {size}) images, got {tuple(image.shape)}")
        flat = image.reshape(len(image), -1).double()
        return (flat @ self.matrix.T).to(image.dtype)
