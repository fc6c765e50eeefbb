"""Clean MNIST (data=mnist), its per-sample affine jitter, the tutorial STN with CoordConv, and the
accuracy / macro F1 / confusion-matrix evaluation every classification run now has."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from conftest import TINY
from stn_fovea.data.augment import AffineParams, sample_affine, warp_affine
from stn_fovea.data.clean_digits import CleanDigits
from stn_fovea.data.datamodule import NoisyMNIST
from stn_fovea.errors import ConfigError
from stn_fovea.evaluation.evaluator import EvaluationContext
from stn_fovea.evaluation.protocols import ProtocolAccuracy
from stn_fovea.models.localization import CoordConv2d, TutorialLocalization, coordinate_channels
from stn_fovea.run_setup import build_data
from stn_fovea.train import train
from test_evaluators import Gazer, Oracle, bar_digits, bright_labels, clean_28, fake_datamodule


# -- the per-sample affine jitter -----------------------------------------------------------------------
def torchvision_affine(images: torch.Tensor, params: AffineParams, mode: InterpolationMode) -> torch.Tensor:
    """torchvision's affine, one call per sample with that sample's parameters."""
    return torch.stack(
        [
            TF.affine(
                image,
                angle=float(params.angle[i]),
                translate=[int(v) for v in params.translate[i]],
                scale=float(params.scale[i]),
                shear=[float(v) for v in params.shear[i]],
                interpolation=mode,
            )
            for i, image in enumerate(images)
        ]
    )


def test_batched_warp_is_torchvisions_affine_sample_by_sample(mnist_root):
    digits = bar_digits().images.float().unsqueeze(1) / 255.0
    images = torch.cat((digits, torch.rand(22, 1, 28, 28, generator=torch.Generator().manual_seed(0))))
    keys = torch.arange(len(images))
    params = sample_affine(keys, 28, degrees=30.0, translate=0.2, scale=(0.7, 1.3), shear_deg=20.0)
    # a y shear too, which RandomAffine(shear=x) never draws, so that every term of the matrix is used
    params = params._replace(shear=params.shear + torch.tensor([0.0, 10.0]))
    assert torch.equal(
        warp_affine(images, params), torchvision_affine(images, params, InterpolationMode.NEAREST)
    )
    bilinear = torchvision_affine(images, params, InterpolationMode.BILINEAR)
    assert torch.allclose(warp_affine(images, params, mode="bilinear"), bilinear, atol=1e-5)


def test_affine_draws_are_randomaffines_ranges_and_a_function_of_the_key():
    keys = torch.arange(4000)
    params = sample_affine(keys, 28, degrees=15.0, translate=0.1, scale=(0.85, 1.15), shear_deg=0.15)
    assert params.angle.abs().max() <= 15.0 and params.angle.abs().max() > 14.5
    assert torch.equal(params.translate, params.translate.round())
    assert params.translate.abs().max() == 3.0  # round(U(-2.8, 2.8))
    assert 0.85 <= params.scale.min() < 0.86 and 1.14 < params.scale.max() <= 1.15
    assert params.shear[:, 0].abs().max() <= 0.15 and torch.all(params.shear[:, 1] == 0)
    again = sample_affine(keys.flip(0), 28, 15.0, 0.1, (0.85, 1.15), 0.15)
    assert torch.equal(again.angle, params.angle.flip(0))  # each sample's draw depends on its key only


# -- the recipe ---------------------------------------------------------------------------------------
def test_clean_digits_are_the_standardised_digit_and_jitter_only_when_asked():
    digits = bar_digits().images
    keys = torch.arange(len(digits))
    plain = CleanDigits()(digits, keys)
    assert torch.allclose(plain.images[:, 0], (digits / 255.0 - 0.1307) / 0.3081)
    assert torch.all(plain.shifts == 0) and torch.all(plain.contrast == 1.0)
    unit = CleanDigits(std=None)(digits, keys)
    assert torch.equal(unit.images[:, 0], digits / 255.0)
    jittered = CleanDigits(augment=True, std=None, degrees=0.0, scale=(1.0, 1.0), shear_deg=0.0)(digits, keys)
    # a pure translation: the image is the digit moved by the reported offset (rows, cols)
    for image, digit, (rows, cols) in zip(
        jittered.images[:, 0], digits, jittered.shifts.tolist(), strict=True
    ):
        moved = torch.roll(digit / 255.0, shifts=(rows, cols), dims=(0, 1))  # the bars stay inside the frame
        assert torch.equal(image, moved)
    assert jittered.shifts.abs().sum() > 0


def test_clean_digit_settings_are_checked():
    with pytest.raises(ConfigError, match="28 px"):
        CleanDigits(size=32)
    with pytest.raises(ConfigError, match="scale"):
        CleanDigits(scale=(1.2, 0.8))
    with pytest.raises(ConfigError, match="std"):
        CleanDigits(std=0.0)


def test_the_data_config_jitters_training_images_only(compose_train, mnist_root):
    datamodule: NoisyMNIST = build_data(compose_train("data=mnist", "data.augment=true", *TINY))
    assert datamodule.train_recipe.augment
    assert not datamodule.val_recipe.augment and not datamodule.test_recipes["clean"].augment
    assert datamodule.headline_protocol == "clean"


def test_a_headline_protocol_must_be_a_test_protocol(compose_train):
    cfg = compose_train("data=mnist", "data.headline_protocol=general")
    with pytest.raises(ConfigError, match="headline_protocol=general is not one of"):
        build_data(cfg)


# -- CoordConv ----------------------------------------------------------------------------------------
def test_coordinate_channels_span_minus_one_to_one_and_the_radius_is_centred():
    image = torch.zeros(2, 1, 5, 7)
    out = coordinate_channels(image, with_radius=True)
    assert out.shape == (2, 4, 5, 7)
    rows, cols, radius = out[0, 1], out[0, 2], out[0, 3]
    assert rows[0, 0] == -1 and rows[-1, 0] == 1 and torch.all(rows[:, 0] == rows[:, -1])
    assert cols[0, 0] == -1 and cols[0, -1] == 1
    assert radius[2, 3] == pytest.approx(0.0, abs=1e-6) and radius[0, 0] == pytest.approx(
        2**0.5
    )  # 0 at the centre pixel
    assert coordinate_channels(image).shape == (2, 3, 5, 7)


def test_coordconv_localisation_reads_position():
    torch.manual_seed(0)
    conv = CoordConv2d(1, 4, kernel_size=3, with_radius=True)
    assert conv.conv.in_channels == 4
    # a plain conv of a blank image gives the same output everywhere; a CoordConv does not
    blank = conv(torch.zeros(1, 1, 9, 9))
    assert blank[0, :, 0, 0].sub(blank[0, :, -1, -1]).abs().max() > 1e-3
    features = TutorialLocalization(coord_conv=True, with_radius=True)
    assert features(torch.zeros(3, 1, 28, 28)).shape == (3, 32)


# -- accuracy, macro F1 and the confusion matrix -------------------------------------------------------
class RecordingWriter:
    def __init__(self) -> None:
        self.figures: list[tuple[str, int]] = []

    def add_figure(self, tag: str, figure, global_step: int) -> None:
        self.figures.append((tag, global_step))


def test_protocol_metrics_are_known_for_a_fake_that_misses_the_high_labels(tmp_path):
    # At contrast 0.5 the fake names labels 0-4 right and calls k = 5..9 "k + 1 mod 10". Each label once:
    # class 0 is predicted for 0 and 9 (precision 1/2, recall 1: F1 2/3), classes 1-4 are perfect (F1 1),
    # classes 5-9 are never predicted right (F1 0): macro F1 = (2/3 + 4) / 10.
    datamodule = fake_datamodule(test_recipes={"c05": clean_28(contrast=0.5), "c10": clean_28(contrast=1.0)})
    writer = RecordingWriter()
    context = EvaluationContext(
        Oracle(bright_labels), datamodule, bar_digits(), tmp_path, "fake", tensorboard=writer, global_step=7
    )
    metrics = ProtocolAccuracy()(context)
    assert metrics["accuracy"] == pytest.approx({"c05": 0.5, "c10": 1.0})
    assert metrics["f1_macro"] == pytest.approx({"c05": (2 / 3 + 4) / 10, "c10": 1.0})
    expected = torch.zeros(10, 10, dtype=torch.int64)
    for k in range(10):
        expected[k, k if k < 5 else (k + 1) % 10] = 1  # rows true, columns predicted
    assert torch.equal(torch.tensor(metrics["confusion_matrix"]["c05"]), expected)
    assert torch.equal(torch.tensor(metrics["confusion_matrix"]["c10"]), torch.eye(10, dtype=torch.int64))
    assert (tmp_path / "confusion_matrix.png").is_file()
    assert writer.figures == [("eval/confusion_matrix", 7)]


# -- a run ---------------------------------------------------------------------------------------------
def test_a_clean_mnist_coordconv_run_reports_f1_and_the_confusion_matrix(compose_train, mnist_root):
    cfg = compose_train("data=mnist", "model=stn_coordconv", "trainer.max_epochs=1", *TINY)
    metrics = train(cfg)
    run = Path(cfg.paths.output_dir)
    assert metrics["sweep_metric"] == "test/clean/acc" and "test/clean/acc" in metrics["test"]
    written = json.loads((run / "eval" / "metrics.json").read_text())
    assert written["accuracy"]["clean"] == pytest.approx(metrics["test"]["test/clean/acc"], abs=1e-6)
    matrix = torch.tensor(written["confusion_matrix"]["clean"])
    assert matrix.shape == (10, 10) and int(matrix.sum()) == 200  # every test digit once
    assert written["accuracy"]["clean"] == pytest.approx(float(matrix.trace()) / 200)
    assert 0.0 <= written["f1_macro"]["clean"] <= 1.0
    assert written["noise"] == 0.0 and written["train_noise"] == 0.0
    assert (run / "eval" / "confusion_matrix.png").is_file()
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert "eval/confusion_matrix" in events.Tags()["images"]


def test_the_stn_challenge_experiments_are_the_notes_recipes(compose_train):
    table = compose_train("experiment=stn_challenge")
    assert table.model_name == "stn_tutorial" and table.data.batch_size == 64 and not table.data.augment
    assert table.optimizer.lr == 0.01 and table.optimizer.momentum == 0.0
    assert (table.scheduler.step_size, table.scheduler.gamma, table.trainer.max_epochs) == (15, 0.5, 30)
    assert table.model.net.transformer.sampler.padding_mode == "border"
    assert not table.model.net.classifier.batch_norm
    assert not table.model.net.transformer.localization.get("coord_conv", False)
    coord = compose_train("experiment=stn_challenge", "model=stn_coordconv")
    assert coord.model.net.transformer.localization.coord_conv
    assert coord.model.net.transformer.sampler.padding_mode == "border"
    mvp = compose_train("experiment=stn_challenge_mvp")
    assert mvp.data.augment and mvp.model.net.classifier.batch_norm and mvp.trainer.max_epochs == 45
    assert mvp.model.net.transformer.localization.coord_conv


def test_the_best_test_epoch_is_reported_beside_the_validation_choice(compose_train, mnist_root):
    cfg = compose_train("experiment=stn_challenge", "trainer.max_epochs=3", "optimizer.lr=0.05", *TINY)
    metrics = train(cfg)
    run = Path(cfg.paths.output_dir)
    written = json.loads((run / "eval" / "metrics.json").read_text())
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    per_epoch = [event.value for event in events.Scalars("test_each_epoch/clean/acc")]
    val = [event.value for event in events.Scalars("val/acc")]
    assert len(per_epoch) == 3
    selected = written["test_selected"]
    assert selected["accuracy"] == pytest.approx(max(per_epoch))  # the last update, not a restored state
    assert Path(selected["checkpoint"]).is_file()
    # the same test images as trainer.test: the score at the validation-chosen epoch is the test score
    chosen = max(range(3), key=lambda epoch: val[epoch])
    assert per_epoch[chosen] == pytest.approx(metrics["test"]["test/clean/acc"], abs=1e-6)


def test_a_run_saved_without_a_headline_protocol_takes_general_or_its_first(mnist_root):
    from stn_fovea.data.shifted_digits import ShiftedDigits

    def datamodule(protocols):
        return NoisyMNIST(ShiftedDigits, data_dir=mnist_root, download=False, test_protocols=protocols)

    assert datamodule({"central": {}, "general": {}}).headline_protocol == "general"
    assert datamodule({"where": {}, "easy": {}}).headline_protocol == "where"


def test_a_test_selected_checkpoint_without_per_epoch_test_scores_stops_at_start(compose_train):
    cfg = compose_train("experiment=stn_challenge", "data.test_each_epoch=false", *TINY)
    with pytest.raises(ConfigError, match="data.test_each_epoch=true"):
        train(cfg)
    assert not (Path(cfg.paths.output_dir) / "checkpoints").exists()  # before any training


def test_protocol_gaze_error_is_the_mean_distance_from_the_window_centre_to_the_digit(tmp_path):
    # The window's centre is a quarter of the way to the digit: 3/4 of the digit's offset from it.
    recipe = clean_28(shift_std_px=3.0, shift_max_px=4)  # the widest bar (9) stays inside the frame
    datamodule = fake_datamodule(test_recipes={"shifted": recipe})
    context = EvaluationContext(Gazer(bright_labels, along=0.25), datamodule, bar_digits(), tmp_path, "fake")
    metrics = ProtocolAccuracy()(context)
    keys = datamodule.sample_keys("test/shifted", torch.arange(10))
    offsets = recipe.sample(keys).shifts.float()
    assert offsets.norm(dim=-1).mean() > 1  # the digits did move
    assert metrics["gaze_error_px"]["shifted"] == pytest.approx(float(0.75 * offsets.norm(dim=-1).mean()))
    blind = EvaluationContext(Oracle(bright_labels), datamodule, bar_digits(), tmp_path, "fake")
    assert "gaze_error_px" not in ProtocolAccuracy()(blind)  # no window, no gaze
