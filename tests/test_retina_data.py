"""The 128x128 retina generator: placement, contrast, mask, determinism, speed-ups kept exact."""

import math

import numpy as np
import pytest
import torch

from stn_fovea.data.counter_rng import sample_keys
from stn_fovea.data.mask import disc, retina_mask
from stn_fovea.data.mixing import opaque_max_mix, paste_opaque
from stn_fovea.data.placement import sample_radial_shifts, translate
from stn_fovea.data.retina_digits import RetinaDigits
from stn_fovea.errors import ConfigError


def dot_digits(batch: int) -> torch.Tensor:
    """'Digits' that are a 2x2 bright square at the patch centre (rows/cols 13-14 of 28)."""
    digits = torch.zeros(batch, 28, 28, dtype=torch.uint8)
    digits[:, 13:15, 13:15] = 255
    return digits


def keys(count: int, *parts) -> torch.Tensor:
    return sample_keys(torch.arange(count), 0, "test", *parts)


def test_digit_centre_lies_at_the_requested_radius():
    # Without noise (amplitude 0) and mask, the dot is the only pixel above the 0.5 background.
    for radius in (4.444, 17.5, 40.0):
        recipe = RetinaDigits(radius_px=radius, noise=0.0, mask=False)
        batch = recipe(dot_digits(400), keys(400, radius))
        bright = (batch.images[:, 0] > 0.5).float()
        rows = (bright.sum(-1) * torch.arange(128.0)).sum(-1) / bright.sum((-2, -1))
        cols = (bright.sum(-2) * torch.arange(128.0)).sum(-1) / bright.sum((-2, -1))
        distance = torch.sqrt((rows - 63.5) ** 2 + (cols - 63.5) ** 2)  # image centre is 63.5
        # int() truncation per axis: never farther than r, at most sqrt(2) px closer, ~0.5 px on average
        assert float(distance.max()) <= radius + 1e-4
        assert float(distance.min()) > radius - math.sqrt(2)
        assert float((radius - distance).mean()) < 1.0
        assert torch.equal(batch.shifts.float(), torch.stack((rows, cols), dim=-1) - 63.5)
        # the angle is uniform: all four quadrants are visited about equally
        quadrant = (rows > 63.5).long() * 2 + (cols > 63.5).long()
        assert torch.bincount(quadrant, minlength=4).min() > 60


def test_radial_draw_is_half_normal_clipped_at_the_maximum():
    shifts = sample_radial_shifts(keys(20_000, "r"), 20.0, 40.0).float()
    radius = shifts.norm(dim=-1)
    assert float(radius.max()) <= 40.0
    # |N(0, 1)| * 20 exceeds 40 with probability 2 * (1 - Phi(2)) = 4.6 %: those sit at the clip
    assert 0.03 < float((radius > 38.5).float().mean()) < 0.065
    assert 13.0 < float(radius.mean()) < 16.5  # E|N| * 20 = 15.96, minus truncation
    assert torch.all(sample_radial_shifts(keys(100, "z"), 0.0, 40.0) == 0)


def test_contrast_is_fixed_or_drawn_within_bounds_and_sets_the_brightest_stroke():
    digits = dot_digits(500)
    drawn = RetinaDigits(contrast=(0.3, 0.7))(digits, keys(500, "c"))
    assert float(drawn.contrast.min()) >= 0.3 and float(drawn.contrast.max()) <= 0.7
    assert float(drawn.contrast.std()) > 0.1
    fixed = RetinaDigits(contrast=0.5, noise=0.0, mask=False)(digits[:8], keys(8, "c"))
    assert torch.all(fixed.contrast == 0.5)
    # before the mask renormalises, the brightest stroke is 0.5 + c / 2 over a 0.5 background
    assert torch.allclose(fixed.images.amax(dim=(-2, -1)), torch.full((8, 1), 0.75))
    with pytest.raises(ConfigError):
        RetinaDigits(contrast=(0.7, 0.3))


def test_mask_renormalises_the_whole_image_then_sets_grey_outside_the_disc():
    recipe = RetinaDigits(eccentricity_std_px=40.0)
    images = recipe(dot_digits(16), keys(16, "m")).images[:, 0]
    unmasked = recipe.with_level(mask=False)(dot_digits(16), keys(16, "m")).images[:, 0]
    inside = disc(128)
    assert torch.all(images[:, ~inside] == 0.5)
    low = unmasked.amin(dim=(-2, -1), keepdim=True)
    stretched = (unmasked - low) / (unmasked.amax(dim=(-2, -1), keepdim=True) - low)
    assert torch.allclose(images[:, inside], stretched[:, inside], atol=1e-6)
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    # the disc is x^2 + y^2 < 1 on linspace(-1, 1, 128): radius 64 px around (63.5, 63.5)
    assert bool(inside[63, 0]) is False and bool(inside[64, 1]) is True and bool(inside[0, 0]) is False
    flat = retina_mask(torch.full((1, 8, 8), 0.3))
    assert torch.all(flat[0, ~disc(8)] == 0.5)


def test_paste_equals_mixing_a_translated_full_canvas():
    digits = torch.randint(0, 256, (6, 28, 28), dtype=torch.uint8).float()
    digits[:, :3] = 0  # MNIST digits have a dark border
    background = torch.rand(6, 128, 128) * 0.75 + 0.125
    shifts = torch.tensor([[0, 0], [40, 0], [-40, 3], [12, -29], [-5, -5], [28, 28]])
    contrast = torch.tensor([0.7, 0.5, 0.3, 0.6, 0.45, 0.35])
    canvas = translate(torch.nn.functional.pad(digits, (50, 50, 50, 50)), shifts)
    expected = opaque_max_mix(canvas, (background - 0.125) / 0.75, contrast, 0.75)
    pasted = paste_opaque(background.clone(), digits, shifts + 50, contrast)
    assert torch.allclose(pasted, expected, atol=1e-6)


def test_generator_is_deterministic_batch_independent_and_level_keyed():
    recipe = RetinaDigits(eccentricity_std_px=13.3, contrast=(0.5, 0.7))
    digits = dot_digits(6)
    first = recipe(digits, sample_keys(torch.arange(6), 0, "train", *recipe.level))
    again = recipe(digits, sample_keys(torch.arange(6), 0, "train", *recipe.level))
    assert torch.equal(first.images, again.images) and first.images.shape == (6, 1, 128, 128)
    alone = recipe(digits[2:3], sample_keys(torch.tensor([2]), 0, "train", *recipe.level))
    assert torch.equal(alone.images[0], first.images[2])
    other = recipe.with_level(contrast=(0.3, 0.7))
    assert other.level != recipe.level
    assert RetinaDigits(radius_px=10.0).level != RetinaDigits().level


def test_bad_recipes_are_config_errors():
    for bad in ({"eccentricity_max_px": 60.0}, {"radius_px": -1.0}, {"eccentricity_std_px": -2.0}):
        with pytest.raises(ConfigError):
            RetinaDigits(**bad)
    with pytest.raises(ConfigError, match="unknown dataset parameter"):
        RetinaDigits().with_level(shift_std_px=3.0)


def test_generator_matches_the_reference_pipeline_statistics():
    """Our generator against the reference pipeline (numpy + MotionClouds), on a bar 'digit' at the centre.

    What survives the reference's min-max renormalisation: the image is max(0.5 + c (u - 0.5),
    0.5 + a (n - 0.5)) stretched to [0, 1], so it carries the ratio of the contrast c to the noise
    amplitude a, not each one (c and a scaled together give the same image). The statistics compared:
    - the stroke level, the median of the bar's pixels: about 0.5 + c / (2 a) of the noise range
      (0.85 at c = 0.5, a = 0.75); it moves with c, with a, and falls to the background without a digit;
    - the mean and spread of the whole disc (the noise texture, which the renormalisation leaves as it is;
      alone they cannot tell the contrast, the amplitude, nor whether there is a digit);
    - the grey 0.5 outside the disc.
    """
    pytest.importorskip("MotionClouds")
    from stn_fovea.data.reference_pipeline import ReferencePipeline

    count = 48
    digits = torch.zeros(count, 28, 28, dtype=torch.uint8)
    digits[:, 6:22, 12:16] = 255  # a 16 x 4 px bar; at the centre, rows 56:72 and cols 62:66 of 128
    for index in range(count):  # a marker dot of its own: the reference seeds its noise by the digit
        digits[index, 1 + index // 24, 2 + index % 24] = 255
    reference = ReferencePipeline(eccentricity_std_px=0.0, contrast=0.5, noise=0.75)
    theirs = torch.tensor(
        np.stack([reference(digits[index].numpy(), index) for index in range(count)]), dtype=torch.float32
    )
    inside = disc(128)

    def statistics(images: torch.Tensor) -> dict[str, float]:
        bar = images[:, 56:72, 62:66].flatten(1)
        return {
            "stroke": float(bar.median(dim=1).values.mean()),
            "mean": float(images[:, inside].mean()),
            "std": float(images[:, inside].std()),
        }

    def mismatches(ours: torch.Tensor) -> list[str]:
        """The statistics of ``ours`` that differ from the reference's (stroke level by more than 0.03,
        measured 0.005 apart for the same settings; mean and spread by more than 5 %)."""
        mine, target = statistics(ours), statistics(theirs)
        tolerance = {"stroke": 0.03, "mean": 0.05 * target["mean"], "std": 0.05 * target["std"]}
        return [name for name in target if abs(mine[name] - target[name]) > tolerance[name]]

    def generate(contrast: float = 0.5, noise: float = 0.75, blank: bool = False) -> torch.Tensor:
        recipe = RetinaDigits(eccentricity_std_px=0.0, contrast=contrast, noise=noise)
        return recipe(torch.zeros_like(digits) if blank else digits, keys(count, "ref")).images[:, 0]

    ours = generate()
    assert mismatches(ours) == []
    assert torch.all(theirs[:, ~inside] == 0.5) and torch.all(ours[:, ~inside] == 0.5)
    # the test tells the reference settings from others: stroke levels measured 0.70 (c 0.3), 0.98
    # (c 0.7), 1.0 (a 0.5: the strokes become the image maximum), 0.76 (a 1.0), 0.49 (no digit)
    for wrong in ({"contrast": 0.3}, {"contrast": 0.7}, {"noise": 0.5}, {"noise": 1.0}, {"blank": True}):
        assert "stroke" in mismatches(generate(**wrong)), wrong
