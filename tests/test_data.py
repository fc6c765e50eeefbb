import math

import pytest
import torch

from stn_fovea.data.counter_rng import sample_keys
from stn_fovea.data.mixing import minmax_normalise, opaque_max_mix, sample_contrast
from stn_fovea.data.noise import (
    michelson_rectify,
    motion_cloud_envelope,
    motion_cloud_noise,
    radial_frequency,
)
from stn_fovea.data.placement import sample_gaussian_shifts, translate
from stn_fovea.data.recipe import contrast_range
from stn_fovea.data.shifted_digits import ShiftedDigits
from stn_fovea.errors import ConfigError


def blob_digits(batch: int = 4) -> torch.Tensor:
    """Synthetic 'digits': a bright 4x2 bar at rows 12-15, cols 13-14."""
    digits = torch.zeros(batch, 28, 28, dtype=torch.uint8)
    digits[:, 12:16, 13:15] = 255
    return digits


def centre_of_mass(images: torch.Tensor) -> torch.Tensor:
    rows = torch.arange(images.shape[-2], dtype=torch.float32)
    cols = torch.arange(images.shape[-1], dtype=torch.float32)
    mass = images.sum(dim=(-2, -1))
    return torch.stack(
        ((images.sum(-1) * rows).sum(-1) / mass, (images.sum(-2) * cols).sum(-1) / mass), dim=-1
    )


def test_translate_moves_content_down_and_right_by_the_shift():
    digits = blob_digits(3).float()
    shifts = torch.tensor([[3, -2], [0, 0], [-12, 10]])
    moved = translate(digits, shifts)
    expected = centre_of_mass(digits) + shifts.float()
    assert torch.allclose(centre_of_mass(moved), expected)
    # content leaving the frame is lost, the uncovered part takes the fill value
    assert translate(digits, torch.tensor([[27, 0]] * 3)).sum() == 0
    filled = translate(torch.zeros(1, 5, 5), torch.tensor([[2, 0]]), fill=0.5)
    assert torch.all(filled[0, :2] == 0.5) and torch.all(filled[0, 2:] == 0.0)


def test_gaussian_shifts_truncate_and_clip():
    keys = sample_keys(torch.arange(20_000), 0, "train", 5.0)
    assert torch.all(sample_gaussian_shifts(keys, 0.0, 25) == 0)
    shifts = sample_gaussian_shifts(keys, 5.0, 25).float()
    # int() truncation toward zero shrinks |N(0, 5)| by ~0.5 px on average
    assert 4.3 < float(shifts.std()) < 5.0
    assert abs(float(shifts.mean())) < 0.1
    wide = sample_gaussian_shifts(keys, 1000.0, 25)
    assert int(wide.abs().max()) == 25 and float((wide.abs() == 25).float().mean()) > 0.9


def test_contrast_is_fixed_or_uniform_in_range():
    keys = sample_keys(torch.arange(5000), 0)
    assert torch.all(sample_contrast(keys, 0.7, 0.7) == 0.7)
    c = sample_contrast(keys, 0.3, 0.7)
    assert 0.3 <= float(c.min()) < 0.31 and 0.69 < float(c.max()) <= 0.7
    assert abs(float(c.mean()) - 0.5) < 0.01
    for bad in (0.0, 1.5, -0.2, [0.7, 0.3], [0.1, 0.2, 0.3]):
        with pytest.raises(ConfigError):
            contrast_range(bad)


def test_opaque_max_mixing_follows_the_reference_rule():
    digits = blob_digits(2).float()
    noise = torch.full((2, 28, 28), 0.5)
    noise[:, 0, 0] = 1.0
    contrast = torch.tensor([0.7, 0.3])
    mixed = opaque_max_mix(digits, noise, contrast, noise_amplitude=0.75)
    # strokes at 0.5 + c/2 win over a flat background, the background stays at 0.5
    assert torch.allclose(mixed[:, 13, 13], 0.5 + contrast / 2)
    assert torch.all(mixed[:, 5, 5] == 0.5)
    # a noise peak at 1.0 becomes 0.5 + 0.75 / 2 after the amplitude mapping
    assert torch.allclose(mixed[:, 0, 0], torch.tensor(0.875))
    assert torch.equal(minmax_normalise(torch.zeros(1, 3, 3)), torch.zeros(1, 3, 3))


def test_envelope_is_the_isotropic_log_gabor_band():
    env = motion_cloud_envelope(128, sf_0=0.1, B_sf=0.1)
    f = radial_frequency(128)
    assert env[0, 0] == 0
    # E(f) = exp(-0.5 ln(f/sf_0)^2 / ln 2^2) / f: at f = sf_0 it is 1 / sf_0
    at_sf0 = (f - 0.1).abs().argmin()
    assert math.isclose(float(env.flatten()[at_sf0] * f.flatten()[at_sf0]), 1.0, rel_tol=0.02)
    with pytest.raises(ValueError):
        motion_cloud_envelope(28, sf_0=0.0)


def radial_power(images: torch.Tensor, bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    spectrum = torch.fft.rfft2(images - images.mean(dim=(-2, -1), keepdim=True)).abs().pow(2).mean(0)
    f = radial_frequency(images.shape[-1])
    index = (f / 0.5 * bins).long().clamp(max=bins - 1)
    power = torch.zeros(bins).index_add_(0, index.flatten(), spectrum.flatten())
    count = torch.zeros(bins).index_add_(0, index.flatten(), torch.ones_like(spectrum).flatten())
    centres = (torch.arange(bins) + 0.5) / bins * 0.5
    return centres, power / count.clamp_min(1)


@pytest.mark.parametrize("spectral", [False, True])
def test_noise_power_spectrum_follows_the_envelope_and_peaks_near_sf0(spectral):
    noise = motion_cloud_noise(sample_keys(torch.arange(64), 0), 128, sf_0=0.1, B_sf=0.1, spectral=spectral)
    assert noise.shape == (64, 128, 128)
    assert float(noise.min()) >= -1e-6 and float(noise.max()) <= 1.0 + 1e-6
    centres, power = radial_power(noise, bins=32)
    # Power ~ E(f)^2 = f^-2 exp(-ln(f/sf_0)^2 / ln(2)^2): its peak is at sf_0 * exp(-ln(2)^2) = 0.062
    peak = float(centres[power[1:].argmax() + 1])
    assert 0.045 < peak < 0.085, peak
    expected = torch.exp(-(torch.log(centres / 0.1) ** 2) / math.log(2) ** 2) / centres**2
    band = (centres > 0.02) & (centres < 0.3)
    correlation = torch.corrcoef(torch.stack((power[band].log(), expected[band].log())))[0, 1]
    assert float(correlation) > 0.99


def test_michelson_rectification_spans_exactly_zero_to_one_around_half():
    z = torch.randn(3, 16, 16) * 7 + 2
    r = michelson_rectify(z)
    extremes = torch.maximum(r.amax(dim=(1, 2)), 1 - r.amin(dim=(1, 2)))
    assert torch.allclose(extremes, torch.ones(3))
    assert torch.allclose(r.mean(dim=(1, 2)), torch.full((3,), 0.5), atol=1e-6)


@pytest.mark.parametrize(("size", "spectral"), [(64, False), (128, True)])
def test_noise_against_motionclouds_radial_power_spectrum(size, spectral):
    mc = pytest.importorskip("MotionClouds")
    import numpy as np

    fx, fy, ft = mc.get_grids(size, size, 1)
    envelope = mc.envelope_gabor(
        fx, fy, ft, sf_0=0.1, B_sf=0.1, B_theta=np.inf, V_X=0.0, V_Y=0.0, B_V=0.0, alpha=0.0
    )
    reference = torch.tensor(
        np.stack([mc.rectif(mc.random_cloud(envelope, seed=s))[:, :, 0] for s in range(64)]),
        dtype=torch.float32,
    )
    ours = motion_cloud_noise(sample_keys(torch.arange(64), 0), size, spectral=spectral)
    bins = size // 4
    _, p_ref = radial_power(reference, bins)
    _, p_ours = radial_power(ours, bins)
    shape_ref, shape_ours = p_ref / p_ref.sum(), p_ours / p_ours.sum()
    band = slice(1, 3 * bins // 4)
    assert torch.allclose(shape_ours[band], shape_ref[band], rtol=0.25, atol=0.002)
    assert abs(float(ours.std()) / float(reference.std()) - 1.0) < 0.1


def test_generator_is_deterministic_in_range_and_batch_independent():
    recipe = ShiftedDigits(shift_std_px=6.0, noise=0.75)
    digits = blob_digits(8)
    keys = sample_keys(torch.arange(8), 0, "train", *recipe.level)
    first, again = recipe(digits, keys), recipe(digits, keys)
    assert torch.equal(first.images, again.images)
    assert first.images.shape == (8, 1, 28, 28)
    assert float(first.images.min()) >= 0.5 - 0.75 / 2 - 1 / 255 and float(first.images.max()) <= 1.0
    # quantised to 1/255 steps like the reference's uint8 images
    assert torch.allclose(first.images * 255, (first.images * 255).round(), atol=1e-3)
    alone = recipe(digits[3:4], keys[3:4])
    assert torch.equal(alone.images[0], first.images[3])
    other_level = recipe(digits, sample_keys(torch.arange(8), 0, "train", 7.0))
    assert not torch.equal(other_level.images, first.images)


@pytest.mark.parametrize("noise", [0.75, 1.0])
def test_28x28_noise_spans_its_exact_amplitude_within_one_grey_level(noise):
    """Each image's noise reaches 0.5 +- noise / 2 on one side exactly (MotionClouds' rectif) and stays
    inside it: on blank digits, the image's largest deviation from 0.5 is noise / 2 within the 1/255 of
    the reference's uint8 quantisation. Catches a noise amplitude off by any factor (halved: 0.1875)."""
    recipe = ShiftedDigits(noise=noise, contrast=(0.7, 0.7))
    images = recipe(torch.zeros(64, 28, 28, dtype=torch.uint8), sample_keys(torch.arange(64), 0)).images
    low, high = images.amin(dim=(1, 2, 3)), images.amax(dim=(1, 2, 3))
    deviation = torch.maximum(0.5 - low, high - 0.5)
    assert torch.all((deviation - noise / 2).abs() <= 1 / 255), deviation
    assert float(low.min()) >= 0.5 - noise / 2 - 1 / 255 and float(high.max()) <= 0.5 + noise / 2


def test_generator_fixed_contrast_sets_the_stroke_intensity():
    recipe = ShiftedDigits(contrast=(0.7, 0.7), noise=0.0, quantize=False)
    batch = recipe(blob_digits(2), sample_keys(torch.arange(2), 0))
    assert torch.allclose(batch.images.amax(dim=(1, 2, 3)), torch.full((2,), 0.85))
    assert torch.allclose(batch.images.amin(dim=(1, 2, 3)), torch.full((2,), 0.5))


def test_recipe_rejects_bad_values_with_a_config_error():
    with pytest.raises(ConfigError, match="shift_std_px"):
        ShiftedDigits(shift_std_px=-1.0)
    with pytest.raises(ConfigError, match="contrast"):
        ShiftedDigits(contrast=(0.0, 0.5))
    with pytest.raises(ConfigError, match="unknown dataset parameter"):
        ShiftedDigits().with_level(eccentricity=3.0)
