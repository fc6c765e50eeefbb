"""Known-answer tests of the evaluators: fake models whose answers depend only on where the digit is,
how bright it is and what its label is, so that every cell of a map, grid or table is known exactly.

The synthetic digit of label k is a bright bar 2 rows high (rows 13-14) and 2k + 2 columns wide
(columns 13-k .. 14+k): its centre is the frame's centre (13.5, 13.5) whatever the label, so the fake
reads the digit's offset from the bar's centroid, its label from the bar's width and the contrast from the
bar's brightness (0.5 + c / 2 over a 0.5 background when the noise is 0).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import NamedTuple

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from stn_fovea.data.counter_rng import sample_keys
from stn_fovea.data.mnist import Digits
from stn_fovea.data.retina_digits import RetinaDigits
from stn_fovea.data.shifted_digits import ShiftedDigits
from stn_fovea.errors import ConfigError
from stn_fovea.evaluation.eccentricity_grid import EccentricityGrid
from stn_fovea.evaluation.evaluator import EvaluationContext, evaluate_model, read_batch
from stn_fovea.evaluation.grid_cells import GridCells, eccentricity_grid_accuracy
from stn_fovea.evaluation.protocols import ProtocolAccuracy
from stn_fovea.evaluation.reference import ECCENTRICITY_GRID_128, GRID_REFERENCE_NOISE
from stn_fovea.evaluation.shift_map import ShiftMap, ring_means, shift_accuracy_map
from stn_fovea.models.pose import scaled_translation
from stn_fovea.models.sampler import AffineSampler, glimpse_corners
from stn_fovea.models.transformer import CentralGlimpse, GlimpseClassifier, ModelOutput

# Labels in a scrambled order, so that a digit read with another digit's label is named wrong.
LABELS = [3, 8, 1, 9, 0, 6, 2, 7, 5, 4]


def bar_digits(labels: list[int] = LABELS) -> Digits:
    images = torch.zeros(len(labels), 28, 28, dtype=torch.uint8)
    for image, k in zip(images, labels, strict=True):
        image[13:15, 13 - k : 15 + k] = 255
    return Digits(images, torch.tensor(labels, dtype=torch.int64))


class BarReading(NamedTuple):
    """What the fake reads from a batch of images: the digit's (rows, cols) offset from the image centre
    in whole pixels (B, 2), the contrast (B,), the label (B,), and the top-left pixel (B,), which the
    digit never covers: noise, or 0.5 without noise."""

    offset: Tensor
    contrast: Tensor
    label: Tensor
    corner: Tensor


def read(images: Tensor) -> BarReading:
    """The bar is the set of pixels at the image's peak (the tests keep the noise below the strokes)."""
    x = images[:, 0]
    height, width = x.shape[-2:]
    peak = x.amax(dim=(-2, -1))
    bar = (x >= peak.view(-1, 1, 1) - 1e-4).float()
    area = bar.sum(dim=(-2, -1))
    rows = (bar.sum(-1) * torch.arange(height)).sum(-1) / area - (height - 1) / 2
    cols = (bar.sum(-2) * torch.arange(width)).sum(-1) / area - (width - 1) / 2
    label = (bar.amax(-2).sum(-1) / 2 - 1).round().long()
    return BarReading(torch.stack((rows, cols), -1).round(), 2 * (peak - 0.5), label, x[:, 0, 0])


class Oracle(nn.Module):
    """A fake GlimpseModule: names the digit right where ``rule(reading)`` says, else label + 1 (mod 10).

    It keeps every batch of images it receives in ``seen`` and what it read in ``readings``.
    """

    def __init__(self, rule: Callable[[BarReading], Tensor]) -> None:
        super().__init__()
        self.rule = rule
        self.seen: list[Tensor] = []
        self.readings: list[BarReading] = []

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def forward(self, images: Tensor) -> ModelOutput:
        reading = read(images)
        self.seen.append(images.clone())
        self.readings.append(reading)
        answer = torch.where(self.rule(reading), reading.label, (reading.label + 1) % 10)
        return ModelOutput(logits=nn.functional.one_hot(answer, 10).float(), glimpses=images.unsqueeze(1))


def in_lower_left_patch(reading: BarReading) -> Tensor:
    """Right only for a digit moved 1 px down or more and 0 to 3 px left: an asymmetric patch."""
    rows, cols = reading.offset.unbind(-1)
    return (rows >= 1) & (cols >= -3) & (cols <= 0)


def bright_labels(reading: BarReading) -> Tensor:
    """Right on the labels below 10 x contrast, wherever the digit is: accuracy = contrast on 0..9."""
    return reading.label + 0.5 < 10 * reading.contrast


def near_and_bright(reading: BarReading) -> Tensor:
    """Right on every digit within 6 px of the centre, on the labels below 10 x contrast within 20 px,
    and never beyond."""
    radius = reading.offset.norm(dim=-1)
    return (radius <= 6) | ((radius <= 20) & bright_labels(reading))


def noise_coin(reading: BarReading) -> Tensor:
    """Right when the noise at the top-left pixel is above 0.5: a coin tossed by the sample's key, so
    the accuracy changes if a cell's samples do."""
    return reading.corner > 0.5


def patch_map(max_shift_px: int) -> Tensor:
    """The expected map of ``in_lower_left_patch``: element [i + max, j + max] is shift (i, j)."""
    side = 2 * max_shift_px + 1
    expected = torch.zeros(side, side)
    for i in range(-max_shift_px, max_shift_px + 1):
        for j in range(-max_shift_px, max_shift_px + 1):
            expected[i + max_shift_px, j + max_shift_px] = float(i >= 1 and -3 <= j <= 0)
    return expected


def clean_28(**changes) -> ShiftedDigits:
    """The 28x28 recipe without noise or quantisation: background 0.5, strokes 0.5 + c / 2."""
    return ShiftedDigits(**{"contrast": 0.8, "noise": 0.0, "quantize": False, **changes})


def clean_128(**changes) -> RetinaDigits:
    """The 128x128 recipe without noise or mask: background 0.5, strokes 0.5 + c / 2."""
    return RetinaDigits(**{"contrast": 0.7, "noise": 0.0, "mask": False, **changes})


def fake_datamodule(**attributes) -> SimpleNamespace:
    """What the evaluation context reads of a datamodule; keys as NoisyMNIST: (seed, source, index)."""
    defaults = {"seed": 0, "eval_batch_size": 7}
    namespace = SimpleNamespace(**{**defaults, **attributes})
    namespace.sample_keys = lambda source, index: sample_keys(index, namespace.seed, source)
    return namespace


# -- shift map ----------------------------------------------------------------------------------------
def test_shift_map_is_exactly_the_patch_where_the_fake_is_right():
    accuracy = shift_accuracy_map(
        Oracle(in_lower_left_patch),
        clean_28(),
        bar_digits(),
        seed=0,
        max_shift_px=4,
        digits_per_cell=3,
        batch_size=7,  # cells straddle batches
    )
    assert accuracy.shape == (9, 9)
    # element [i + 4, j + 4] is i rows down, j columns right: 2 down and 1 left is right, 2 up is not
    assert accuracy[4 + 2, 4 - 1] == 1.0 and accuracy[4 - 2, 4 - 1] == 0.0 and accuracy[4 - 1, 4 + 2] == 0.0
    assert torch.equal(accuracy, patch_map(4))


def test_ring_means_average_the_cells_at_each_rounded_radius_up_to_max():
    # value i^2 + j^2 on a 7 x 7 map; round(sqrt) puts d^2 = 1, 2 in ring 1; 4, 5 in ring 2; 8, 9, 10 in
    # ring 3; d^2 = 13, 18 round to 4 > max = 3 and are left out
    offsets = torch.arange(-3, 4, dtype=torch.float32)
    squared = offsets.view(-1, 1) ** 2 + offsets.view(1, -1) ** 2
    rings = ring_means(squared)
    assert list(rings) == [0, 1, 2, 3]
    expected = {
        0: 0.0,
        1: (4 * 1 + 4 * 2) / 8,
        2: (4 * 4 + 8 * 5) / 12,
        3: (4 * 8 + 4 * 9 + 8 * 10) / 16,
    }
    assert rings == pytest.approx(expected)


def test_shift_map_evaluator_writes_the_map_and_its_metrics(tmp_path):
    datamodule = fake_datamodule(
        test_recipes={"central": clean_28(contrast=0.3), "general": clean_28(shift_std_px=15.0)}
    )
    evaluator = ShiftMap(protocol="general", max_shift_px=4, digits_per_cell=3)
    evaluator.check(datamodule)
    with pytest.raises(ConfigError, match="'nowhere'"):
        ShiftMap(protocol="nowhere").check(datamodule)
    context = EvaluationContext(Oracle(in_lower_left_patch), datamodule, bar_digits(), tmp_path, "fake")
    metrics = evaluator(context)
    expected = patch_map(4)
    assert np.array_equal(np.load(tmp_path / "shift_map.npy"), expected.numpy())
    assert (tmp_path / "shift_map.png").is_file() and (tmp_path / "ring_means.png").is_file()
    shift_map = metrics["shift_map"]
    assert shift_map["protocol"] == "general" and shift_map["max_shift_px"] == 4
    assert shift_map["digits_per_cell"] == 3
    assert metrics["contrast"] == [0.8, 0.8]  # the general protocol's, not the central one's 0.3
    assert shift_map["centre"] == 0.0 and shift_map["max"] == 1.0
    # ring 1 holds the 8 cells at distance 1 and sqrt 2, of which (1, 0) and (1, -1) are in the patch
    assert shift_map["ring_means"][1] == pytest.approx(2 / 8)
    assert shift_map["ring_means"] == pytest.approx(ring_means(expected))


# -- eccentricity grid --------------------------------------------------------------------------------
# Rows are contrasts, columns eccentricities, both in the order given (neither sorted). A digit at
# eccentricity e lands between e - sqrt 2 and e px from the centre. 5 of the 10 digits, drawn with seed
# 0 over the whole set (indices 1, 3, 4, 5, 7: labels 8, 9, 0, 6, 7): the fake is right on all 5 at
# 4.4 px, on none at 30 px, and at 8.9 px on 2 of them at c = 0.7 (labels < 7) and 1 at c = 0.3
# (labels < 3): every cell of a row differs, and so do the rows.
GRID_CONTRASTS = (0.7, 0.3)
GRID_COLUMNS = [
    "model",
    "saccades",
    "contrast",
    "eccentricity_px",
    "accuracy",
    "digits",
    "reference_accuracy",
    "gaze_error_px",
    "gaze_toward",
]
GRID_ECCENTRICITIES = (8.889, 30.0, 4.444)
GRID_EXPECTED = [[0.4, 0.0, 1.0], [0.2, 0.0, 1.0]]


def test_grid_rows_are_contrasts_and_columns_are_eccentricities():
    result = eccentricity_grid_accuracy(
        Oracle(near_and_bright),
        GridCells(
            clean_128(),
            bar_digits(),
            seed=0,
            eccentricities_px=GRID_ECCENTRICITIES,
            contrasts=GRID_CONTRASTS,
            digits_per_cell=5,
            batch_size=2,
        ),
    )
    assert result.accuracy.shape == (2, 3)
    torch.testing.assert_close(result.accuracy, torch.tensor(GRID_EXPECTED, dtype=torch.float64))
    assert torch.isnan(result.gaze_error_px).all() and torch.isnan(result.gaze_toward).all()  # no windows


def test_grid_evaluator_writes_cells_in_contrast_then_eccentricity_order(tmp_path, monkeypatch):
    datamodule = fake_datamodule(train_recipe=clean_128(), eval_batch_size=4)
    evaluator = EccentricityGrid(GRID_ECCENTRICITIES, GRID_CONTRASTS, digits_per_cell=5)
    evaluator.check(datamodule)
    # the published cells were measured at noise 0.75: none is shown beside a grid at another noise
    (tmp_path / "other").mkdir()
    other = evaluator(
        EvaluationContext(Oracle(near_and_bright), datamodule, bar_digits(), tmp_path / "other", "stn128")
    )
    with (tmp_path / "other" / "grid.csv").open() as handle:
        assert {row["reference_accuracy"] for row in csv.DictReader(handle)} == {""}
    assert other["grid"]["reference_means"] == {}
    monkeypatch.setitem(GRID_REFERENCE_NOISE, "stn128", 0.0)  # as if the study had measured without noise
    # a model the reference measured: its cell sits beside ours where the radius is one of its 40 k / 9
    context = EvaluationContext(Oracle(near_and_bright), datamodule, bar_digits(), tmp_path, "stn128")
    metrics = evaluator(context)["grid"]
    published = ECCENTRICITY_GRID_128["stn128"]
    with (tmp_path / "grid.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows == [
        GRID_COLUMNS,
        ["stn128", "", "0.7", "8.889", "0.4000", "5", f"{published[0.7][1]:.4f}", "", ""],
        ["stn128", "", "0.7", "30.000", "0.0000", "5", "", "", ""],
        ["stn128", "", "0.7", "4.444", "1.0000", "5", f"{published[0.7][0]:.4f}", "", ""],
        ["stn128", "", "0.3", "8.889", "0.2000", "5", f"{published[0.3][1]:.4f}", "", ""],
        ["stn128", "", "0.3", "30.000", "0.0000", "5", "", "", ""],
        ["stn128", "", "0.3", "4.444", "1.0000", "5", f"{published[0.3][0]:.4f}", "", ""],
    ]
    assert (tmp_path / "grid.png").is_file()
    assert metrics["accuracy"] == {"0.7": GRID_EXPECTED[0], "0.3": GRID_EXPECTED[1]}  # 2 / 5, 1 / 5 exactly
    assert metrics["mean_over_eccentricities"] == pytest.approx({"0.7": 1.4 / 3, "0.3": 1.2 / 3})
    assert metrics["digits_per_cell"] == 5
    assert metrics["gaze_error_px"] is None and metrics["gaze_toward"] is None


class Saccader(Oracle):
    """A fake What/Where: after k saccades it names right the digits within 10 k px of the centre, its
    first window is the central one and every later window sits on the digit. It records the number of
    saccades it was asked for."""

    def __init__(self) -> None:
        super().__init__(lambda reading: torch.ones_like(reading.label, dtype=torch.bool))
        self.net = SimpleNamespace(saccades=1)
        self.asked: list[int] = []

    def forward(self, images: Tensor, saccades: int = 1) -> ModelOutput:  # type: ignore[override]
        self.asked.append(saccades)
        output = super().forward(images)
        reading = self.readings[-1]
        radius = reading.offset.norm(dim=-1)
        wrong = (reading.label + 1) % 10
        answers = [torch.where(radius <= 10 * k, reading.label, wrong) for k in range(saccades + 1)]
        logits = nn.functional.one_hot(torch.stack(answers, dim=1), 10).float()
        height, width = images.shape[-2:]
        centre = torch.tensor([(width - 1) / 2, (height - 1) / 2])
        corners = torch.tensor([[-14.0, -14.0], [14.0, -14.0], [14.0, 14.0], [-14.0, 14.0]])
        on_digit = centre + reading.offset.flip(-1)  # (rows, cols) -> (x, y)
        places = [centre.expand_as(on_digit)] + [on_digit] * saccades
        windows = torch.stack([place.unsqueeze(1) + corners for place in places], dim=1)
        return ModelOutput(logits[:, -1], output.glimpses, windows=windows, extras={"saccade_logits": logits})


def test_the_saccade_grid_scores_each_number_of_saccades_from_one_run(tmp_path, monkeypatch):
    monkeypatch.setitem(GRID_REFERENCE_NOISE, "what_where", 0.0)  # the fake's clean images: noise 0
    # radii 8.9, 30, 4.4 px: after 0 saccades none is right, after 1 or 2 those within 10 or 20 px
    # (8.9 and 4.4), after 3 all. Asked for [3, 0, 1], the grid runs the model once per batch with 3
    # saccades and writes one grid per count, in increasing order, each beside the What/Where figures.
    datamodule = fake_datamodule(train_recipe=clean_128(), eval_batch_size=4)
    evaluator = EccentricityGrid(GRID_ECCENTRICITIES, (0.7,), digits_per_cell=5, saccades=[3, 0, 1])
    saccader = Saccader()
    metrics = evaluator(EvaluationContext(saccader, datamodule, bar_digits(), tmp_path, "what_where"))["grid"]
    assert set(saccader.asked) == {3}
    expected = {"0": [0.0, 0.0, 0.0], "1": [1.0, 0.0, 1.0], "3": [1.0, 1.0, 1.0]}
    assert {k: grid["accuracy"]["0.7"] for k, grid in metrics["saccades"].items()} == expected
    assert metrics["saccades"]["0"]["gaze_toward"] == {"0.7": [0.0, 0.0, 0.0]}  # the central window
    assert metrics["saccades"]["1"]["gaze_toward"] == {"0.7": [1.0, 1.0, 1.0]}  # on the digit
    assert metrics["saccades"]["1"]["reference_means"]["0.7"] == pytest.approx(0.771, abs=5e-4)
    with (tmp_path / "grid.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["saccades"], row["eccentricity_px"], row["accuracy"]) for row in rows] == [
        (k, radius, f"{value:.4f}")
        for k, values in expected.items()
        for radius, value in zip(("8.889", "30.000", "4.444"), values, strict=True)
    ]
    fig4 = {"0": 0.756, "1": 0.879, "3": 0.890}  # whatwhere.md 4.1, contrast 0.7, 8.9 px
    assert {
        row["saccades"]: row["reference_accuracy"] for row in rows if row["eccentricity_px"] == "8.889"
    } == {k: f"{v:.4f}" for k, v in fig4.items()}
    assert (tmp_path / "grid.png").is_file()


def test_the_saccade_grid_refuses_a_model_that_does_not_saccade(tmp_path):
    datamodule = fake_datamodule(train_recipe=clean_128(), eval_batch_size=4)
    evaluator = EccentricityGrid(GRID_ECCENTRICITIES, (0.7,), digits_per_cell=5, saccades=[0, 1])
    oracle = Oracle(near_and_bright)
    oracle.net = nn.Identity()
    with pytest.raises(ConfigError, match="saccades is for a model that saccades"):
        evaluator(EvaluationContext(oracle, datamodule, bar_digits(), tmp_path, "stn128"))
    with pytest.raises(ConfigError, match="saccades must be"):
        EccentricityGrid(saccades=[-1])


class Gazer(Oracle):
    """An Oracle that also looks: its glimpse is a 28 px window centred at ``along`` x the digit's offset
    from the image centre plus ``aside`` x that offset turned a quarter (x, y) -> (-y, x)."""

    def __init__(self, rule: Callable[[BarReading], Tensor], along: float, aside: float = 0.0) -> None:
        super().__init__(rule)
        self.along, self.aside = along, aside

    def forward(self, images: Tensor) -> ModelOutput:
        output = super().forward(images)
        rows, cols = self.readings[-1].offset.unbind(-1)
        offset = torch.stack((cols, rows), -1)  # (x, y)
        turned = torch.stack((-rows, cols), -1)
        height, width = images.shape[-2:]
        centre = torch.tensor([(width - 1) / 2, (height - 1) / 2]) + self.along * offset + self.aside * turned
        corners = torch.tensor([[-14.0, -14.0], [14.0, -14.0], [14.0, 14.0], [-14.0, 14.0]])
        output.windows = (centre.unsqueeze(1) + corners).unsqueeze(1)  # (B, 1, 4, 2)
        return output


def test_the_grid_measures_how_far_and_how_well_the_glimpse_went_towards_the_digit():
    # The window's centre is 0.5 x the digit's offset plus 0.25 x it turned: it is sqrt(0.5^2 + 0.25^2)
    # x the radius from the digit, and its projection on the digit's direction is 0.5 x the radius.
    # A (rows, cols) <-> (x, y) mix-up, a sign error or a sum over the wrong axis changes both numbers.
    run = dict(recipe=clean_128(), digits=bar_digits(), seed=0, contrasts=(0.7,), digits_per_cell=10)
    gazer = Gazer(near_and_bright, along=0.5, aside=0.25)
    result = eccentricity_grid_accuracy(
        gazer, GridCells(eccentricities_px=(0.0, 12.0, 30.0), batch_size=4, **run)
    )
    offsets = torch.cat([reading.offset for reading in gazer.readings]).double()
    radius = offsets.norm(dim=-1).view(3, 10).mean(dim=1)  # whole-pixel shifts: ~ the cell's radius
    assert radius[0] == 0 and 11 < radius[1] <= 12 and 29 < radius[2] <= 30
    torch.testing.assert_close(result.gaze_error_px[0], radius * (0.5**2 + 0.25**2) ** 0.5)
    torch.testing.assert_close(result.gaze_toward[0, 1:], torch.tensor([0.5, 0.5], dtype=torch.float64))
    assert torch.isnan(result.gaze_toward[0, 0])  # no direction to go at radius 0
    # a window on the digit: no error, all the way
    on_digit = eccentricity_grid_accuracy(
        Gazer(near_and_bright, along=1.0), GridCells(eccentricities_px=(12.0,), batch_size=4, **run)
    )
    assert float(on_digit.gaze_error_px) == 0.0 and float(on_digit.gaze_toward) == 1.0


def test_the_grid_evaluator_writes_the_gaze_beside_the_accuracy(tmp_path):
    datamodule = fake_datamodule(train_recipe=clean_128(), eval_batch_size=4)
    evaluator = EccentricityGrid((0.0, 20.0), (0.7,), digits_per_cell=5)
    context = EvaluationContext(Gazer(near_and_bright, along=0.75), datamodule, bar_digits(), tmp_path, "x")
    metrics = evaluator(context)["grid"]
    with (tmp_path / "grid.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["gaze_toward"] for row in rows] == ["", "0.750"]
    assert rows[0]["gaze_error_px"] == "0.00" and 4.5 < float(rows[1]["gaze_error_px"]) <= 5.0  # r / 4
    assert metrics["gaze_toward"]["0.7"] == [None, pytest.approx(0.75)]
    assert (tmp_path / "grid.png").is_file()


def test_the_gaze_of_the_real_glimpses_is_where_they_read():
    # The central crop reads the digit at offset 0 (gaze 0); a sampler translated by 2 x offset / size
    # reads the digit wherever it is (gaze == digit): the windows' geometry agrees with read_batch's.
    recipe, digits = clean_128(radius_px=20.0), bar_digits()
    index = torch.arange(len(LABELS))
    keys = sample_keys(index, 0, "test")
    offsets = recipe.sample(keys).shifts.flip(-1).float()  # (x, y)
    assert offsets.abs().sum() > 0

    class Following(nn.Module):  # a fixed pose: the theta that centres each batch's digit
        def forward(self, image: Tensor) -> ModelOutput:
            theta = scaled_translation(torch.full((len(image),), 0.25), *(2 * offsets / 128).unbind(-1))
            window = glimpse_corners(theta, image.shape[-2:])
            glimpse = AffineSampler((28, 28))(image, theta)
            return ModelOutput(
                torch.zeros(len(image), 10), glimpse.unsqueeze(1), theta.unsqueeze(1), window.unsqueeze(1)
            )

    central = GlimpseClassifier(nn.Sequential(nn.Flatten(), nn.LazyLinear(10)), CentralGlimpse(28))
    central.device = torch.device("cpu")
    following = Following()
    following.device = torch.device("cpu")
    assert torch.equal(read_batch(central, recipe, digits, index, keys).gaze, torch.zeros(len(index), 2))
    reading = read_batch(following, recipe, digits, index, keys)
    torch.testing.assert_close(reading.digit, offsets)
    torch.testing.assert_close(reading.gaze, offsets, atol=1e-4, rtol=0)


# -- test protocols -----------------------------------------------------------------------------------
def test_protocol_accuracy_names_each_protocols_own_accuracy(tmp_path):
    # right on the labels below 10 x contrast: 8 of the 10 digits when bright, 3 when dim; 10 digits in
    # batches of 4, so the last batch is short
    datamodule = fake_datamodule(
        test_recipes={"bright": clean_28(contrast=0.8), "dim": clean_28(contrast=0.3, shift_std_px=2.0)},
        train_recipe=clean_28(),
        test_digits=bar_digits(),
        eval_batch_size=4,
    )
    evaluators = {"protocols": ProtocolAccuracy(reference="central_general_28")}
    metrics = evaluate_model(Oracle(bright_labels), datamodule, evaluators, tmp_path, "stn")
    assert metrics["accuracy"] == pytest.approx({"bright": 0.8, "dim": 0.3})
    assert metrics["reference"]["central"] == 0.8764  # the published table of the model named "stn"
    assert metrics["test_digits"] == 10
    assert json.loads((tmp_path / "metrics.json").read_text())["accuracy"] == metrics["accuracy"]


# -- keyed cells ----------------------------------------------------------------------------------------
def test_shift_map_cells_are_the_same_for_every_model_and_batch_size():
    # with noise (strokes at 0.95 over noise in [0.35, 0.65]) a cell's images depend on its samples' keys
    run = dict(
        recipe=clean_28(contrast=0.9, noise=0.3),
        digits=bar_digits(),
        seed=0,
        max_shift_px=4,
        digits_per_cell=3,
    )
    coin_small, coin_large, patch = Oracle(noise_coin), Oracle(noise_coin), Oracle(in_lower_left_patch)
    map_small = shift_accuracy_map(coin_small, batch_size=7, **run)
    map_large = shift_accuracy_map(coin_large, batch_size=50, **run)
    shift_accuracy_map(patch, batch_size=243, **run)
    seen = torch.cat(coin_small.seen)
    assert seen.shape == (81 * 3, 1, 28, 28)
    assert torch.equal(seen, torch.cat(coin_large.seen)) and torch.equal(seen, torch.cat(patch.seen))
    assert torch.equal(map_small, map_large)
    # each cell draws its own noise: digit 0's corner differs in all 81 cells, the coin falls every way
    assert len(torch.unique(seen[::3, 0, 0, 0])) == 81
    assert torch.unique(map_small * 3).round().tolist() == [0, 1, 2, 3]  # right on 0 to 3 of 3


def test_grid_cells_are_the_same_for_every_model_and_batch_size():
    run = dict(
        recipe=clean_128(noise=0.3),
        digits=bar_digits(),
        seed=0,
        eccentricities_px=(8.0, 30.0),
        contrasts=(0.9, 0.8),
        digits_per_cell=5,
    )
    first, second = Oracle(near_and_bright), Oracle(noise_coin)
    accuracy = eccentricity_grid_accuracy(first, GridCells(batch_size=2, **run)).accuracy
    eccentricity_grid_accuracy(second, GridCells(batch_size=5, **run))
    seen = torch.cat(first.seen)
    assert seen.shape == (4 * 5, 1, 128, 128)
    assert torch.equal(seen, torch.cat(second.seen))
    # the noise does not fool the fake: at 6.6 to 8 px it is right on the labels < 9 (< 8) of 3, 8, 1, 9, 0
    torch.testing.assert_close(accuracy, torch.tensor([[0.8, 0.0], [0.6, 0.0]], dtype=torch.float64))
    # as the reference's (seed = index), a digit keeps its angle in every cell, and each cell draws its own
    # noise. Digit 0 in cells (0.9, 8), (0.9, 30), (0.8, 8), (0.8, 30): readings 0, 5, 10, 15
    offsets = torch.cat([reading.offset for reading in first.readings])[::5]
    corners = torch.cat([reading.corner for reading in first.readings])[::5]
    assert 6.5 < offsets[0].norm() <= 8 and 28.5 < offsets[1].norm() <= 30  # trunc: up to sqrt 2 px less
    assert torch.equal(offsets[0], offsets[2]) and torch.equal(offsets[1], offsets[3])
    angles = torch.atan2(*offsets.T.flip(0))
    assert (angles - angles[0]).abs().max() < 0.2  # 1 px of truncation at 8 px turns it 0.13 rad at most
    assert len(torch.unique(corners)) == 4
