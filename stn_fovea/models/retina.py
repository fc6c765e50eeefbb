"""POLO's log-polar retina code: a Laplacian pyramid of centre crops read by log-Gabor filters.

Reference: ``int-lab-book : src/POLO/PYramid2.py`` with the ``LogGabor``/``SLIP`` filter definitions
(whatwhere.md 5.2), rebuilt in torch. Conventions follow SLIP: images are (rows, cols); a filter at
azimuth ``az`` and radius ``r`` is centred at (c + r cos az, c + r sin az) with c = width / 2, and
orientations are angles of the frequency vector measured from the row axis towards the column axis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

NORMALIZE_STEPS = ("preprocess", "mean", "median", "max")
POLO_NORMALIZE = ("preprocess", "mean", "max")  # POLO's filters (PYramid2 with its SLIP)
# The What/Where retina (whatwhere.md 9.1.1, 9.7): SLIP master and 20191113 subtract the median and divide
# by max|.|, no pre-processing, so that the filters do not sum to 0; SLIP 20171205, the release on PyPI
# when the reference ran, pre-processed after the median: zero-sum filters (the DC term removed).
SLIP_NORMALIZE = {"slip_20191113": ("median", "max"), "slip_20171205": ("median", "preprocess", "max")}


def _fourier_grid(width: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """SLIP's centred (fftshifted) grid: f_x (rows), f_y (cols), |f| (1e-12 at DC) and angle, float64."""
    axis = torch.arange(-(width // 2), (width - 1) // 2 + 1, dtype=torch.float64) / width
    f_x, f_y = torch.meshgrid(axis, axis, indexing="ij")
    radius = torch.sqrt(f_x**2 + f_y**2)
    radius[width // 2, width // 2] = 1e-12
    return f_x, f_y, radius, torch.atan2(f_y, f_x)


def _retina_filter(radius: Tensor, width: int, df: float = 0.07, sigma: float = 0.5) -> Tensor:
    """SLIP's ``retina`` pre-processing envelope: cut above Nyquist, remove the lowest frequencies."""
    envelope = (1.0 - torch.exp((radius - 0.5) / (0.5 * df))) * (radius < 0.5)
    return envelope * (1.0 - torch.exp(-0.5 * radius**2 / (sigma / width) ** 2))


def _invert(spectrum: Tensor) -> Tensor:
    """Real part of the inverse FFT of a centred spectrum (SLIP ``invert``)."""
    return torch.fft.ifft2(torch.fft.ifftshift(spectrum, dim=(-2, -1))).real


def log_gabor_filter(
    width: int,
    position: tuple[float, float],
    sf_0: float,
    theta: float,
    B_theta: float,
    B_sf: float | None = None,
    phase: float = 0.0,
    normalize: Sequence[str] = POLO_NORMALIZE,
) -> Tensor:
    """One normalised log-Gabor filter of shape (width, width), float64 (LogGabor ``loggabor`` ->
    ``invert`` -> SLIP ``normalize``).

    Args:
        position: (row, col) centre of the filter in pixels.
        sf_0, B_sf: radial band ``exp(-0.5 ln(f / sf_0)^2 / B_sf^2) / f``; ``B_sf=None`` (the POLO
            notebooks' ``inf``) leaves the plain 1/f, so that sf_0 has no effect.
        theta, B_theta: orientation and von Mises bandwidth ``exp(cos(angle - theta) / B_theta^2)``.
        phase: 0 gives the even (cosine) filter, pi/2 the odd one.
        normalize: SLIP ``normalize``'s steps in the order they run, each one of ``NORMALIZE_STEPS``:
            "preprocess" filters the kernel again with the retina envelope (which removes its DC term),
            "mean" / "median" subtract that statistic, "max" divides by the largest absolute value.
            POLO's bank: :data:`POLO_NORMALIZE`; the What/Where retina: :data:`SLIP_NORMALIZE`.
    Returns:
        the filter after those steps (with "max" last, its largest absolute value is 1).
    """
    f_x, f_y, radius, angle = _fourier_grid(width)
    band = 1.0 / radius
    if B_sf is not None:
        band = band * torch.exp(-0.5 * torch.log(radius / sf_0) ** 2 / B_sf**2)
    envelope = (band * torch.exp(torch.cos(angle - theta) / B_theta**2)).to(torch.complex128)
    row, col = position
    if row != 0.0 and col != 0.0:  # LogGabor skips the translation when either coordinate is 0
        envelope = envelope * torch.exp(-2j * math.pi * (row * f_x + col * f_y))
    mask = _retina_filter(radius, width)
    envelope = envelope * mask
    envelope = envelope / torch.sqrt((envelope.abs() ** 2).mean()) * math.sqrt(2.0)
    kernel = _invert(envelope * complex(math.cos(phase), -math.sin(phase)))
    unknown = sorted(set(normalize) - set(NORMALIZE_STEPS))
    if unknown:
        raise ValueError(f"unknown normalisation step(s) {unknown}; the steps are {NORMALIZE_STEPS}")
    for step in normalize:
        if step == "preprocess":
            kernel = _invert(torch.fft.fftshift(torch.fft.fft2(kernel), dim=(-2, -1)) * mask)
        elif step == "mean":
            kernel = kernel - kernel.mean()
        elif step == "median":
            kernel = kernel - kernel.flatten().quantile(0.5)  # numpy's median (the mean of the two middles)
        else:
            kernel = kernel / kernel.abs().max()
    return kernel


def log_polar_bank(
    width: int = 32,
    n_eccentricities: int = 2,
    n_azimuths: int = 16,
    n_orientations: int = 8,
    n_phases: int = 1,
    r_min: float = 8.0,
    r_max: float = 16.0,
    log_density_ratio: float = 2.0,
    B_theta: float = math.pi / 12,
    B_sf: float | None = None,
) -> Tensor:
    """POLO's filter bank ``get_K``: shape (n_eccentricities, n_azimuths, n_orientations, n_phases,
    width, width), float64.

    Eccentricity i sits at radius a exp(b (r_ref - r_min)) + c with r_ref = r_min + i (r_max - r_min) /
    n_ecc (8 and 11.31 px for the defaults) and a preferred frequency 1 / (4 (width / 32) a b
    exp(b (r_ref - r_min))); azimuths are staggered by half a step on odd eccentricities; orientation
    k is k pi / n_orientations relative to the azimuth.
    """
    b = math.log(log_density_ratio) / (r_max - r_min)
    a = (r_max - r_min) / (math.exp(b * (r_max - r_min)) - 1.0)
    c = r_min - a
    centre = width / 2
    bank = torch.empty(
        n_eccentricities, n_azimuths, n_orientations, n_phases, width, width, dtype=torch.float64
    )
    for i_ecc in range(n_eccentricities):
        r_ref = r_min + i_ecc * (r_max - r_min) / n_eccentricities
        growth = math.exp(b * (r_ref - r_min))
        radius, sf_0 = a * growth + c, 1.0 / (4.0 * (width / 32) * a * b * growth)
        for i_az in range(n_azimuths):
            azimuth = (i_az + (i_ecc % 2) / 2) * 2.0 * math.pi / n_azimuths
            position = (centre + radius * math.cos(azimuth), centre + radius * math.sin(azimuth))
            for i_theta in range(n_orientations):
                theta = i_theta * math.pi / n_orientations + azimuth
                for i_phase in range(n_phases):
                    bank[i_ecc, i_az, i_theta, i_phase] = log_gabor_filter(
                        width, position, sf_0, theta, B_theta, B_sf, phase=i_phase * math.pi / n_phases
                    )
    return bank


def cropped_pyramid(image: Tensor, width: int = 32, n_levels: int = 3) -> Tensor:
    """Laplacian pyramid of centre crops (PYramid2 ``cropped_pyramid``), shape (B, n_levels, C, w, w).

    Level k < n_levels - 1 is the centre crop of (current - up(down(current))), with bilinear halving
    and doubling; the last level is the centre crop of the final low-pass image. A level smaller than
    ``width`` is zero-padded around the centre. With a 128 px image, width 32 and 3 levels, level 0 covers
    the central 32 px at full resolution, level 1 the central 64 px at half, level 2 the whole image.
    """
    levels = []
    current = image
    for level in range(n_levels):
        if level < n_levels - 1:
            down = F.interpolate(current, scale_factor=0.5, mode="bilinear", align_corners=False)
            up = F.interpolate(down, size=current.shape[-2:], mode="bilinear", align_corners=False)
            levels.append(_centre_crop(current - up, width))
            current = down
        else:
            levels.append(_centre_crop(current, width))
    return torch.stack(levels, dim=1)


def _centre_crop(image: Tensor, width: int) -> Tensor:
    height, size = image.shape[-2:]
    if height < width or size < width:
        pad_rows, pad_cols = max(width - height, 0), max(width - size, 0)
        image = F.pad(
            image, (pad_cols // 2, pad_cols - pad_cols // 2, pad_rows // 2, pad_rows - pad_rows // 2)
        )
        height, size = image.shape[-2:]
    top, left = (height - width) // 2, (size - width) // 2
    return image[..., top : top + width, left : left + width]


class LogPolarRetina(nn.Module):
    """Image (B, 1, H, W) -> POLO code (B, n_orientations * n_phases * n_levels * n_eccentricities *
    n_azimuths), ordered (orientation x phase, level x eccentricity, azimuth) like PYramid2's
    ``LogGaborReshape``: 8 x 6 x 16 = 768 coefficients with the defaults.

    The filters are a fixed (non-trainable) buffer computed at construction.
    """

    def __init__(self, n_levels: int = 3, **bank_arguments: float | None) -> None:
        """``n_levels`` pyramid levels; ``bank_arguments``: :func:`log_polar_bank`'s (``width``,
        ``n_eccentricities``, ``n_azimuths``, ``n_orientations``, ...), its defaults where not given."""
        super().__init__()
        bank = log_polar_bank(**bank_arguments)  # type: ignore[arg-type]
        self.width, self.n_levels = int(bank.shape[-1]), n_levels
        self.bank_shape = tuple(bank.shape[:4])
        # (width * width, ecc * az * orientation * phase): one matrix product reads every filter.
        self.register_buffer("filters", bank.flatten(0, 3).flatten(1).T.to(torch.float32), persistent=False)
        self.out_features = n_levels * bank.shape[:4].numel()

    def forward(self, image: Tensor) -> Tensor:
        if image.shape[1] != 1:
            raise ValueError(f"LogPolarRetina reads one-channel images, got {image.shape[1]} channels")
        smallest = self.width * 2 ** (self.n_levels - 1)
        if min(image.shape[-2:]) < smallest:
            raise ValueError(
                f"LogPolarRetina with {self.n_levels} levels of {self.width} px crops reads images of at "
                f"least {smallest} px, got {tuple(image.shape[-2:])}"
            )
        crops = cropped_pyramid(image, self.width, self.n_levels)[:, :, 0]  # (B, levels, w, w)
        code = crops.flatten(-2) @ self.filters.to(crops.dtype)  # (B, levels, ecc * az * or * ph)
        ecc, az, orientations, phases = self.bank_shape
        code = code.view(-1, self.n_levels, ecc, az, orientations, phases)
        return code.permute(0, 4, 5, 1, 2, 3).flatten(1)


class PoloLocalization(nn.Module):
    """POLO-ATN's localisation (whatwhere.md 5.1): the log-polar code, then fc 768 -> hidden, ReLU.

    The transformer adds the zero-initialised hidden -> 2 head (the first glimpse is central).
    """

    def __init__(self, retina: LogPolarRetina, hidden: int = 32) -> None:
        super().__init__()
        self.retina = retina
        self.fc = nn.Sequential(nn.Linear(retina.out_features, hidden), nn.ReLU(True))
        self.out_features = hidden

    def forward(self, image: Tensor) -> Tensor:
        return self.fc(self.retina(image))
