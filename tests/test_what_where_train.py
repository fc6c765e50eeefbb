"""What/Where as a model of the framework: the retina-code cache, the Where targets and task, the frozen
What net, and short runs of `train model=what_where` and of its evaluation from a checkpoint."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import Tensor, nn

from conftest import SMALL_RETINA, TINY, compose_config
from stn_fovea.checkpoint import read_checkpoint
from stn_fovea.data.sample_cache import SampleCache
from stn_fovea.errors import ConfigError, find_user_error
from stn_fovea.evaluate import evaluate
from stn_fovea.models.classifier import WhatNet
from stn_fovea.models.colliculus import Colliculus
from stn_fovea.models.module import GlimpseModule
from stn_fovea.models.transformer import CentralGlimpse, GlimpseClassifier
from stn_fovea.models.what_where import WhatWhere
from stn_fovea.models.where_net import WhereNet
from stn_fovea.tasks.where_map import WhereMap
from stn_fovea.train import train


class CountingEncoder:
    def __init__(self) -> None:
        self.rows = 0

    def __call__(self, images: Tensor) -> Tensor:
        self.rows += len(images)
        return images.flatten(1)[:, :3] * 2


def test_the_cache_encodes_each_sample_once_and_keeps_at_most_max_items():
    images = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    encoder, cache = CountingEncoder(), SampleCache(max_items=4)
    first = cache.encode(images[:3], torch.tensor([10, 11, 12]), encoder)
    torch.testing.assert_close(first, images[:3].flatten(1)[:, :3] * 2)
    # ids 11 and 12 come back in another order, beside three new ones: only those are encoded
    again = cache.encode(images[[2, 1, 3, 4, 5]], torch.tensor([12, 11, 13, 14, 15]), encoder)
    torch.testing.assert_close(again, images[[2, 1, 3, 4, 5]].flatten(1)[:, :3] * 2)
    assert encoder.rows == 3 + 3 and len(cache) == 4  # full: 14 and 15 were encoded, not kept
    cache.encode(images[[5]], torch.tensor([15]), encoder)
    assert encoder.rows == 7


def tiny_colliculus() -> Colliculus:
    """4 cells whose weights are single pixels at (rows, cols) offsets (0, 0), (5, 0), (0, -7), (-20, 9)."""
    bank = torch.zeros(1, 2, 2, 1, 128, 128)
    for (azimuth, ring), (i, j) in zip(
        [(0, 0), (0, 1), (1, 0), (1, 1)], [(0, 0), (5, 0), (0, -7), (-20, 9)], strict=True
    ):
        bank[0, azimuth, ring, 0, 64 + i, 64 + j] = 1.0
    return Colliculus(bank)


def what_where(accuracy_map: Tensor | None) -> WhatWhere:
    retina = nn.Sequential(nn.AdaptiveAvgPool2d(8), nn.Flatten())
    return WhatWhere(
        WhatNet(),
        WhereNet(64, (16,), 4),
        retina,  # type: ignore[arg-type]
        lambda image, recentre=True: image,  # type: ignore[arg-type]
        tiny_colliculus(),
        accuracy_map=accuracy_map,
    )


def ramp_map(scale: float) -> Tensor:
    """Map value scale * (100 a + b) at [a, b]: every cell tells which shift it is."""
    index = torch.arange(55, dtype=torch.float32)
    return scale * (100 * index.view(-1, 1) + index.view(1, -1))


def test_targets_read_the_map_at_each_cell_relative_to_the_digit_and_follow_a_loaded_map():
    model = what_where(ramp_map(1e-5))
    shifts = torch.tensor([[0, 0], [3, -2], [-10, 12]])
    targets = model.where_targets(shifts)
    # a cell peaked at offset p sees the map pasted on the digit (map index 27 on it) at 27 + p - shift
    for n, (i, j) in enumerate(shifts.tolist()):
        for cell, (p, q) in enumerate([(0, 0), (5, 0), (0, -7), (-20, 9)]):
            a, b = 27 + p - i, 27 + q - j
            assert targets[n, cell].item() == pytest.approx(1e-5 * (100 * a + b), abs=1e-6)
    # a checkpoint's map replaces the one it was built with, and so do the targets made from it
    model.load_state_dict(what_where(ramp_map(2e-5)).state_dict())
    torch.testing.assert_close(model.where_targets(shifts), 2 * targets)
    with pytest.raises(ValueError, match="within"):
        model.where_targets(torch.tensor([[65, 0]]))
    # the TensorBoard picture of a map puts each cell's value where its weights lie
    picture = model.map_picture(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))[0, 0]
    assert [picture[64 + i, 64 + j].item() for i, j in [(0, 0), (5, 0), (0, -7), (-20, 9)]] == [1, 2, 3, 4]
    with pytest.raises(RuntimeError, match="no accuracy map"):
        what_where(None).where_targets(shifts)


def module(net: nn.Module, task: WhereMap) -> GlimpseModule:
    return GlimpseModule(net, task, optimizer=lambda groups: torch.optim.Adam(groups, lr=1e-3))


def where_task() -> WhereMap:
    from torchmetrics.classification import MulticlassAccuracy

    return WhereMap(nn.BCEWithLogitsLoss(), {"acc": MulticlassAccuracy(10, average="micro")})


def test_the_where_task_trains_the_where_net_alone_on_the_targets_of_each_digit():
    net = what_where(ramp_map(1e-5))
    trained = module(net, where_task())
    groups = trained.configure_optimizers().param_groups
    assert {id(p) for group in groups for p in group["params"]} == {id(p) for p in net.where_net.parameters()}
    trained.train()
    assert trained.training and net.where_net.training and net.what.training  # Lightning: none in eval
    crops = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    frozen = net.read_what(crops)  # the frozen What reads without its dropout, and stays in train mode
    assert torch.equal(frozen, net.read_what(crops)) and net.what.training
    assert torch.equal(frozen, copy.deepcopy(net.what).eval()(crops))
    images = torch.rand(2, 1, 128, 128, generator=torch.Generator().manual_seed(1))
    batch = {"image": images, "shift": torch.tensor([[3, -2], [-10, 12]]), "label": torch.tensor([1, 2])}
    output = net(images)
    expected = nn.functional.binary_cross_entropy_with_logits(
        output.extras["where_logits"], net.where_targets(batch["shift"])
    )
    torch.testing.assert_close(trained.task.loss(output, batch), expected)
    with pytest.raises(ConfigError, match="model=what_where"):
        module(GlimpseClassifier(WhatNet(), CentralGlimpse(28)), where_task())  # type: ignore[arg-type]


# -- short runs of the real pipeline --------------------------------------------------------------------


@pytest.fixture(scope="module")
def what_run(tiny_runs) -> Path:
    """The session's one-epoch What on 28x28 digits with its 55 x 55 shift map (one digit per shift)."""
    return next((tiny_runs("what") / "checkpoints").glob("best-*.ckpt"))


def what_where_config(root: Path, *overrides: str):
    return compose_config(
        root, *TINY, "model=what_where", *SMALL_RETINA, "trainer.max_epochs=2",
        "evaluators.eccentricity_grid.eccentricities_px=[10.0,40.0]",
        "evaluators.eccentricity_grid.digits_per_cell=3",
        "evaluators.eccentricity_grid.saccades=[0,1,2]", *overrides,
    )  # fmt: skip


@pytest.fixture
def denormals_restored():
    """train() sets torch's process-wide flush-denormal mode: back to torch's default after the test."""
    yield
    torch.set_flush_denormal(False)


def denormals_flushed() -> bool:
    return (torch.tensor([1e-39]) * 2.0).item() == 0.0


def test_train_what_where_trains_the_where_net_and_measures_each_number_of_saccades(
    what_run, tmp_path, denormals_restored
):
    cfg = what_where_config(tmp_path, f"model.what_ckpt={what_run}")
    assert what_where_config(tmp_path, "data.contrast=0.3").evaluators.eccentricity_grid.contrasts == [0.3]
    assert cfg.data.noise == 1.0 and cfg.curriculum._target_ is None and cfg.optimizer.lr == 1e-4
    assert not denormals_flushed()
    train(cfg)
    assert denormals_flushed()  # model=what_where's flush_denormal: dead units' Adam moments stay fast
    run = Path(cfg.paths.output_dir)
    best = next((run / "checkpoints").glob("best-*.ckpt"))
    weights = read_checkpoint(best)["state_dict"]
    what = read_checkpoint(what_run)["state_dict"]
    for key, value in what.items():  # the What net read with is the checkpoint's, and stayed frozen
        if key.startswith("net.classifier."):
            assert torch.equal(weights["net.what." + key[len("net.classifier.") :]], value)
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert {"train/loss_epoch", "val/acc", "test/c07/acc"} <= set(events.Tags()["scalars"])
    assert {"glimpse_boxes", "where_maps", "eval/eccentricity_grid"} <= set(events.Tags()["images"])
    # Adam stepped the Where net's parameters (two Linear layers: 4 tensors), and only those, each batch
    state = read_checkpoint(run / "checkpoints" / "last.ckpt")["optimizer_states"][0]["state"]
    where_shapes = sorted(tuple(v.shape) for k, v in weights.items() if k.startswith("net.where_net."))
    assert sorted(tuple(s["exp_avg"].shape) for s in state.values()) == where_shapes
    assert {float(s["step"]) for s in state.values()} == {2.0 * 3}  # 2 epochs of 3 batches (300 digits)
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert sorted(metrics["grid"]["saccades"]) == ["0", "1", "2"]
    with (run / "eval" / "grid.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    # measured at the contrast the Where net was trained at, as the reference did
    assert [(r["saccades"], r["contrast"], r["eccentricity_px"]) for r in rows] == [
        (k, "0.7", e) for k in "012" for e in ("10.000", "40.000")
    ]
    # its evaluation from the checkpoint alone (no What checkpoint needed), at the STN study's noise
    GlobalHydra.instance().clear()
    out = tmp_path / "evaluation"
    evaluated = evaluate(
        compose_config(
            tmp_path, f"ckpt_path={best}", "noise=0.75", config_name="evaluate", output="evaluation"
        )
    )
    assert evaluated["noise"] == 0.75 and (out / "grid.csv").is_file()
    assert evaluated["train_noise"] == 1.0 and evaluated["seed"] == 1234 and evaluated["train_epochs"] == 2

    # a model option changed at evaluation only, and a setting the model does not have
    def as_trained(checkpoint: Path, output: str) -> dict:
        GlobalHydra.instance().clear()
        option = "+model.net.reencode_as_trained=true"
        return evaluate(
            compose_config(tmp_path, f"ckpt_path={checkpoint}", option, config_name="evaluate", output=output)
        )

    assert as_trained(best, "as_trained")["model_changes"] == ["model.net.reencode_as_trained=True"]
    # a checkpoint written before the option existed: its model's constructor still takes it
    older = torch.load(best, weights_only=False)
    del older["stn_fovea"]["config"]["model"]["net"]["reencode_as_trained"]
    torch.save(older, tmp_path / "older.ckpt")
    assert as_trained(tmp_path / "older.ckpt", "older")["model_changes"] == [
        "model.net.reencode_as_trained=True"
    ]
    GlobalHydra.instance().clear()
    unknown = compose_config(tmp_path, f"ckpt_path={best}", "+model.net.nothing=1", config_name="evaluate")
    with pytest.raises(ConfigError, match=r"no setting \['model.net.nothing'\]"):
        evaluate(unknown)


def user_error(cfg) -> str:
    """The user-facing error a run stops with (as the command line prints it), or fail."""
    with pytest.raises(Exception) as raised:
        train(cfg)
    cause = find_user_error(raised.value)
    assert cause is not None, f"not a user error: {raised.value!r}"
    return f"{type(cause).__name__}: {cause}"


def test_a_missing_or_wrong_what_checkpoint_is_one_clear_error(what_run, tmp_path):
    assert (
        "ConfigError: model=what_where reads digits with a trained What net: pass model.what_ckpt="
        in user_error(what_where_config(tmp_path))
    )
    checkpoint = torch.load(what_run, weights_only=False)
    checkpoint["stn_fovea"]["config"]["data"]["size"] = 128
    wrong_size = tmp_path / "what128.ckpt"
    torch.save(checkpoint, wrong_size)
    message = user_error(what_where_config(tmp_path, f"model.what_ckpt={wrong_size}"))
    assert message.startswith("CheckpointError:") and "is a What trained on 128x128 images" in message
    checkpoint["stn_fovea"]["config"]["model"]["net"]["transformer"]["_target_"] = "x.SpatialTransformer"
    checkpoint["stn_fovea"]["config"]["model_name"] = "stn"
    not_what = tmp_path / "stn.ckpt"
    torch.save(checkpoint, not_what)
    message = user_error(what_where_config(tmp_path, f"model.what_ckpt={not_what}"))
    assert message.startswith("CheckpointError:") and "is a stn checkpoint, not a What one" in message
    message = user_error(
        what_where_config(tmp_path, f"model.what_ckpt={what_run}", "model.accuracy_map=/no.npy")
    )
    assert message.startswith("ConfigError: no What accuracy map at /no.npy")
    message = user_error(what_where_config(tmp_path, "model.what_ckpt=/no/what.ckpt"))
    assert (
        message
        == "CheckpointError: model.what_ckpt=/no/what.ckpt does not exist; give the checkpoint of a What run"
    )
    # the map of the run's best checkpoint does not belong to its last one
    message = user_error(what_where_config(tmp_path, f"model.what_ckpt={what_run.parent / 'last.ckpt'}"))
    assert (
        message.startswith("ConfigError:") and f"was made from {what_run.name}, not from last.ckpt" in message
    )
    checkpoint = torch.load(what_run, weights_only=False)
    checkpoint["state_dict"]["net.classifier.fc2.weight"] = torch.zeros(11, 500)  # 11 classes
    other = tmp_path / "what11.ckpt"
    torch.save(checkpoint, other)
    accuracy_map = what_run.parents[1] / "eval" / "shift_map.npy"
    message = user_error(
        what_where_config(tmp_path, f"model.what_ckpt={other}", f"model.accuracy_map={accuracy_map}")
    )
    assert message.startswith("ConfigError:") and "its classifier does not fit model.net.what" in message


def test_the_reference_accuracy_map_is_a_target_option_shipped_with_the_package(what_run, tmp_path):
    cfg = what_where_config(tmp_path, f"model.what_ckpt={what_run}", "model.accuracy_map=reference")
    module = instantiate(cfg.model)
    published = module.net.accuracy_map  # whatwhere.md 9.8: centre .8447, max .8478 at (+1, 0), min .0173
    assert published.shape == (55, 55) and published[27, 27].item() == pytest.approx(0.8447, abs=1e-6)
    assert published.max().item() == pytest.approx(published[28, 27].item()) == pytest.approx(0.8478)
    assert published.min().item() == pytest.approx(0.0173, abs=1e-6)
    own = instantiate(what_where_config(tmp_path, f"model.what_ckpt={what_run}").model).net.accuracy_map
    assert not torch.equal(own, published)  # the What run's own map (one digit per shift) otherwise
