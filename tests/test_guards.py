"""Guards: each test fails on one named fault (a checkpoint's weights left unused, a curriculum level that
does not reach the render keys, an LR restart that keeps the optimiser state, a resume across a restart
that drifts, a detached theta, a transformer that does not learn where to look)."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate as hydra_instantiate
from lightning.pytorch.callbacks import Callback
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import TINY_RUN, TINY_RUN_128, data_root
from recorders import FailAfterLastBatch
from stn_fovea.checkpoint import load_module, read_checkpoint
from stn_fovea.data.datamodule import TRAIN, NoisyMNIST
from stn_fovea.data.retina_digits import RetinaDigits
from stn_fovea.data.shifted_digits import ShiftedDigits
from stn_fovea.evaluate import evaluate
from stn_fovea.run_setup import build_model
from stn_fovea.train import train


def test_evaluating_the_best_checkpoint_at_the_run_settings_reproduces_its_test_accuracy(compose_train):
    # An easy setting (no shift, low noise, high contrast) so that the trained model is far from a fresh
    # one (chance, 10 %): a fresh model cannot reproduce its accuracy by luck.
    run = compose_train(
        *TINY_RUN,
        "model=stn",
        "optimizer=adam",
        "optimizer.lr=3e-3",
        "evaluate=false",
        "evaluators.shift_map=null",  # only the protocols' accuracy is compared
        "evaluators.glimpses=null",
        "data.train_size=1500",
        "data.noise=0.2",
        "data.contrast=0.7",
        "data.val_protocol.shift_std_px=0",
        "curriculum.epochs_per_stage=1",
        "curriculum.stages=[{shift_std_px:0},{shift_std_px:0},{shift_std_px:0}]",
    )
    metrics = train(run)
    # measured 0.66; a model with fresh weights (what evaluate would measure if it dropped the checkpoint's
    # weights) names 22-24 of the 200 digits (0.11-0.12)
    assert metrics["test"]["test/central/acc"] > 0.4
    cfg = compose_train(
        f"ckpt_path={metrics['best_checkpoint']}",
        config_name="evaluate",
        output="evaluation",
    )
    evaluated = evaluate(cfg)
    count = evaluated["test_digits"]
    assert count == 200 and evaluated["noise"] == 0.2
    assert set(evaluated["accuracy"]) == {"central", "general"}
    for protocol, accuracy in evaluated["accuracy"].items():
        # the same fixed test images and the same weights: the same digits named right
        assert round(accuracy * count) == round(metrics["test"][f"test/{protocol}/acc"] * count), protocol


def small_datamodule(size: int) -> NoisyMNIST:
    """A 28x28 (shift) or 128x128 (retina) NoisyMNIST on the first 200 training digits, set up."""
    if size == 28:
        recipe, protocol = ShiftedDigits, {"shift_std_px": 15.0}
        fields = {"shift_std_px": 0.0, "contrast": [0.3, 0.7], "noise": 0.75}
    else:
        recipe, protocol = RetinaDigits, {"eccentricity_std_px": 40.0}
        fields = {"eccentricity_std_px": 10.0, "contrast": 0.7, "noise": 0.75}
    datamodule = NoisyMNIST(
        recipe,
        data_dir=data_root(),
        batch_size=20,
        val_size=100,
        train_size=200,
        test_size=100,
        val_protocol=protocol,
        test_protocols={"general": protocol},
        **fields,
    )
    datamodule.setup("fit")
    return datamodule


def epochs_of(output_dir: str) -> dict[int, dict]:
    """The per-epoch record of tests/recorders.py's EpochRecorder."""
    return {int(k): v for k, v in json.loads((Path(output_dir) / "epochs.json").read_text()).items()}


@pytest.mark.parametrize(
    ("size", "stage"),
    [
        (28, {"shift_std_px": 3.0}),
        (28, {"contrast": 0.5}),
        (28, {"noise": 0.5}),
        (128, {"eccentricity_std_px": 30.0}),
        (128, {"contrast": [0.3, 0.7]}),
        (128, {"noise": 0.5}),
    ],
    ids=["28-shift", "28-contrast", "28-noise", "128-eccentricity", "128-contrast", "128-noise"],
)
def test_a_curriculum_stage_reaches_the_keys_and_images_of_training_batches(size, stage):
    """A stage that changes any one recipe field gives training samples new keys and new images:
    two stages never share a draw (recipe.py: the level "enters every sample's key")."""
    datamodule = small_datamodule(size)
    batch = next(iter(datamodule.train_dataloader()))
    before_keys = datamodule.sample_keys(TRAIN, batch["index"])
    before = datamodule.render(batch)["image"]
    datamodule.set_train_level(**stage)
    after_keys = datamodule.sample_keys(TRAIN, batch["index"])
    after = datamodule.render(batch)["image"]
    assert not torch.equal(before, after), "the new stage renders the same images"
    # every sample gets a key of its own at the new level (none is shared with the old level)
    shared = set(before_keys.tolist()) & set(after_keys.tolist())
    assert not shared, f"{len(shared)} of {len(before_keys)} samples keep their key at the new level"


class OptimiserStateRecorder(Callback):
    """Writes {epoch: {"momentum": bool, "lr": float}} to ``path``: whether the optimiser holds momentum
    buffers, and its LR, when the first training batch of each epoch that this process trains starts
    (before its step; batch 0 unless the run resumed in the middle of the epoch)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.epochs: dict[int, dict] = {}

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.current_epoch not in self.epochs:
            optimizer = trainer.optimizers[0]
            buffers = [state.get("momentum_buffer") for state in optimizer.state.values()]
            self.epochs[trainer.current_epoch] = {
                "momentum": any(buffer is not None for buffer in buffers),
                "lr": optimizer.param_groups[0]["lr"],
            }
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.epochs))


# Three stages of one epoch each on the 128x128 data; the third restarts the optimiser at 0.1 x its LR.
RESTART_STAGES = (
    "curriculum.epochs_per_stage=1",
    "curriculum.stages=[{eccentricity_std_px:5,contrast:0.7},{eccentricity_std_px:10,contrast:0.7},"
    "{eccentricity_std_px:10,contrast:[0.3,0.7],lr_restart:0.1}]",
)
SMALL_128 = (*TINY_RUN_128, "data.train_size=200", "data.val_size=100", "data.test_size=50", "evaluate=false")
# Four batches an epoch at SGD 0.01 with momentum, three epochs (the third restarts at 0.1 x the LR), and
# the optimiser's momentum and LR at the first batch each epoch trains
MOMENTUM_RUN_128 = (
    *SMALL_128,
    *RESTART_STAGES,
    "model=peripheral_atn",
    "data.batch_size=50",
    "optimizer.lr=0.01",
    "optimizer.momentum=0.9",
    "trainer.max_epochs=3",
    "+callbacks.state._target_=test_guards.OptimiserStateRecorder",
    "+callbacks.state.path=${paths.output_dir}/state.json",
)


def crashed(compose_train, *overrides: str) -> Path:
    """Train with ``overrides`` (one of them plants a crash, recorders.FailAt or FailAfterLastBatch), in
    run/; the on_exception.ckpt the crash leaves."""
    crashing = compose_train(*overrides, output="run")
    with pytest.raises(RuntimeError, match="planted crash"):
        train(crashing)
    return Path(crashing.paths.output_dir) / "checkpoints" / "on_exception.ckpt"


def test_an_lr_restart_clears_the_optimiser_state(compose_train):
    cfg = compose_train(
        *SMALL_128,
        *RESTART_STAGES,
        "model=peripheral_atn",
        "optimizer.lr=0.01",
        "optimizer.momentum=0.9",
        "trainer.max_epochs=4",
        "+callbacks.state._target_=test_guards.OptimiserStateRecorder",
        "+callbacks.state.path=${paths.output_dir}/state.json",
    )
    train(cfg)
    state = json.loads((Path(cfg.paths.output_dir) / "state.json").read_text())
    record = {int(epoch): facts for epoch, facts in state.items()}
    # epoch 0: no step yet; epoch 1: a new stage without restart keeps momentum; epoch 2: the restart
    # starts a fresh optimiser; epoch 3: momentum again
    assert [record[epoch]["momentum"] for epoch in range(4)] == [False, True, False, True]
    assert [record[epoch]["lr"] for epoch in range(4)] == pytest.approx([0.01, 0.01, 0.001, 0.001])
    # TensorBoard shows the LR each epoch trained at: the restart in its own epoch, not one epoch late
    events = EventAccumulator(str(Path(cfg.paths.output_dir) / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    assert [event.value for event in events.Scalars("lr-SGD/pg1")] == pytest.approx(
        [0.01, 0.01, 0.001, 0.001]
    )


def test_a_run_resumed_in_the_middle_of_an_epoch_trains_the_rest_of_it_at_that_epochs_stage(compose_train):
    """A crash in stage 1's epoch leaves on_exception.ckpt mid-epoch; resumed from it, Lightning restores
    the loops after on_fit_start and skips that epoch's on_train_epoch_start: the curriculum must still
    set stage 1 (std 10 px), not stage 0 (5 px)."""
    common = (
        *SMALL_128,
        *RESTART_STAGES,
        "model=peripheral_atn",
        "data.batch_size=50",
        "trainer.max_epochs=2",
        "+callbacks.record._target_=recorders.EpochRecorder",
        "+callbacks.record.path=${paths.output_dir}/epochs.json",
    )
    stopped = crashed(compose_train, *common, "+callbacks.fail._target_=recorders.FailAt",
                      "+callbacks.fail.epoch=1", "+callbacks.fail.batch=2")  # fmt: skip
    progress = read_checkpoint(stopped)["loops"]["fit_loop"]["epoch_loop.batch_progress"]
    assert progress["current"]["completed"] == 2  # two of epoch 1's four batches trained
    resumed = compose_train(*common, f"ckpt_path={stopped}", output="resumed")
    train(resumed)
    epochs = epochs_of(resumed.paths.output_dir)
    assert list(epochs) == [1] and epochs[1]["stage"]["eccentricity_std_px"] == 10


@pytest.mark.parametrize("hook", FailAfterLastBatch.HOOKS)
def test_a_run_resumed_from_a_crash_after_an_epochs_last_batch_still_restarts_the_lr(compose_train, hook):
    """A crash after epoch 1's last batch leaves on_exception.ckpt; resumed from it, the next epoch (2)
    opens the stage with the LR restart. Resumed from the last batch's end, Lightning skips epoch 2's
    on_train_epoch_start (the case that failed: 0.01, momentum kept); from the validation or the epoch's
    end it does not (guards against a change of Lightning): the restart must happen at epoch 2, a fresh
    optimiser at 0.1 x its LR, as in a run that never stopped."""
    common = (
        *MOMENTUM_RUN_128,
        "+callbacks.record._target_=recorders.EpochRecorder",
        "+callbacks.record.path=${paths.output_dir}/epochs.json",
    )
    stopped = crashed(compose_train, *common, "+callbacks.fail._target_=recorders.FailAfterLastBatch",
                      "+callbacks.fail.epoch=1", f"+callbacks.fail.hook={hook}")  # fmt: skip
    resumed = compose_train(*common, f"ckpt_path={stopped}", output="resumed")
    train(resumed)
    epochs = epochs_of(resumed.paths.output_dir)
    assert list(epochs) == [2]
    assert epochs[2]["stage"]["contrast"] == [0.3, 0.7]
    state = json.loads((Path(resumed.paths.output_dir) / "state.json").read_text())
    assert state == {"2": {"momentum": False, "lr": pytest.approx(0.001)}}  # 0.1 x the initial 0.01


@pytest.mark.parametrize("written_before_the_state", [False, True])
def test_a_run_resumed_in_the_middle_of_its_restart_epoch_does_not_restart_again(
    compose_train, written_before_the_state
):
    """The restart of epoch 2 was made before the crash at its batch 2: resumed there, the optimiser
    keeps the momentum it built since the restart (a second restart would clear it). Also from a
    checkpoint written before the curriculum kept the epoch of its restart (no state of its own)."""
    stopped = crashed(compose_train, *MOMENTUM_RUN_128, "+callbacks.fail._target_=recorders.FailAt",
                      "+callbacks.fail.epoch=2", "+callbacks.fail.batch=2")  # fmt: skip
    if written_before_the_state:
        checkpoint = read_checkpoint(stopped)
        del checkpoint["callbacks"]["Curriculum"]
        stopped = stopped.with_name("before_the_state.ckpt")
        torch.save(checkpoint, stopped)
    resumed = compose_train(*MOMENTUM_RUN_128, f"ckpt_path={stopped}", output="resumed")
    train(resumed)
    state = json.loads((Path(resumed.paths.output_dir) / "state.json").read_text())
    assert state == {"2": {"momentum": True, "lr": pytest.approx(0.001)}}


def test_a_128_run_resumed_just_before_and_just_after_an_lr_restart_is_exact(compose_train):
    """4 epochs straight == 2 epochs, resumed to 3 (the restart is the resumed run's first epoch), resumed
    to 4 (the restart lies in the checkpoint's past): same weights, same LR, level and batches."""
    common = (
        *SMALL_128,
        *RESTART_STAGES,
        "model=peripheral_atn",
        "optimizer.lr=0.01",
        "optimizer.momentum=0.9",
        "scheduler=step",
        "scheduler.step_size=1",
        "scheduler.gamma=0.5",
        "+callbacks.record._target_=recorders.EpochRecorder",
        "+callbacks.record.path=${paths.output_dir}/epochs.json",
    )
    straight = compose_train(*common, "trainer.max_epochs=4", output="straight")
    train(straight)
    full = epochs_of(straight.paths.output_dir)
    # StepLR halves the LR each epoch; the restart at epoch 2 starts again from 0.1 x 0.01
    assert [full[epoch]["lr"] for epoch in range(4)] == pytest.approx([0.01, 0.005, 0.001, 0.0005])

    previous = compose_train(*common, "trainer.max_epochs=2", output="part0")
    train(previous)
    for part, stop in ((1, 3), (2, 4)):
        last = Path(previous.paths.output_dir) / "checkpoints" / "last.ckpt"
        resumed = compose_train(
            *common, f"trainer.max_epochs={stop}", f"ckpt_path={last}", output=f"part{part}"
        )
        train(resumed)
        tail = epochs_of(resumed.paths.output_dir)
        assert tail == {stop - 1: full[stop - 1]}  # level, LR, global step and first batch
        previous = resumed

    end_straight = read_checkpoint(Path(straight.paths.output_dir) / "checkpoints" / "last.ckpt")
    end_resumed = read_checkpoint(Path(previous.paths.output_dir) / "checkpoints" / "last.ckpt")
    assert end_straight["state_dict"].keys() == end_resumed["state_dict"].keys()
    for name, value in end_straight["state_dict"].items():
        assert torch.allclose(value, end_resumed["state_dict"][name], atol=1e-6), name
    # the momentum both runs built since the restart (the weights move little at the restarted LR)
    straight_state = end_straight["optimizer_states"][0]["state"]
    resumed_state = end_resumed["optimizer_states"][0]["state"]
    assert straight_state.keys() == resumed_state.keys() and straight_state
    for index, state in straight_state.items():
        buffer = resumed_state[index]["momentum_buffer"]
        assert torch.allclose(state["momentum_buffer"], buffer, rtol=1e-4, atol=1e-7), index


@pytest.mark.parametrize(("model", "data"), [("stn", "mnist28"), ("peripheral_atn", "mnist128")])
def test_the_task_loss_reaches_every_localisation_parameter(compose_train, model, data):
    """theta must stay in the graph: the classification loss trains the localisation net through the
    sampler. The pose head starts at zero weights, which blocks the gradient to the layers below it, so
    the check comes after one SGD step (as in training), on the second batch."""
    cfg = compose_train(f"data={data}", f"model={model}", "trainer.accelerator=cpu")
    torch.manual_seed(0)
    module = build_model(cfg, hydra_instantiate(cfg.data))
    net = module.net
    located = net.localization_parameters()
    assert located
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    size = int(cfg.data.size)
    for _ in range(2):
        batch = {"image": torch.rand(16, 1, size, size), "label": torch.randint(0, 10, (16,))}
        optimizer.zero_grad()
        module.task.loss(module(batch["image"]), batch).backward()
        optimizer.step()
    names = {id(parameter): name for name, parameter in net.named_parameters()}
    without = [names[id(p)] for p in located if p.grad is None or not torch.any(p.grad != 0)]
    assert not without, f"no gradient reaches {without}"


QUIET_CPU = (
    "trainer.num_sanity_val_steps=0",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.accelerator=cpu",
)


def pearson(x: torch.Tensor, y: torch.Tensor) -> float:
    x, y = x.double() - x.double().mean(), y.double() - y.double().mean()
    return float((x * y).sum() / (x.norm() * y.norm()))


def test_the_peripheral_atn_learns_to_look_where_the_digit_is(compose_train):
    """A seeded short run on off-centre digits: afterwards the glimpse window follows each held-out
    digit's offset (theta maps glimpse to image coordinates, so tx * W / 2 is the window's column offset
    in pixels and ty * H / 2 its row offset). The retina data at 64 px (digits up to 18 px off-centre,
    radius std 8 px), a window of half the image (scale 0.5: 32 px read through 28 glimpse px), low noise:
    the cheapest setting where the pose learns in a few hundred steps. One epoch with centred digits
    teaches the classifier to read, then the digits move away from the centre."""
    where = "{eccentricity_std_px:8,contrast:0.7}"
    cfg = compose_train(
        *QUIET_CPU,
        "data=mnist128",
        "data.size=64",
        "data.eccentricity_max_px=18",
        "data.noise=0.3",
        "data.contrast=0.7",
        "data.batch_size=32",
        "data.train_size=1600",
        "data.val_size=100",
        "data.test_size=300",
        "data.eval_batch_size=100",
        "data.resample_every_epoch=true",
        f"data.val_protocol={where}",
        "~data.test_protocols",
        f"+data.test_protocols={{where:{where}}}",
        "data.headline_protocol=where",
        "evaluators=none",
        "evaluate=false",
        "model=peripheral_atn",
        "model.net.transformer.pose.scale=0.5",
        "model.localization_lr_scale=0.3",
        "optimizer=adam",
        "optimizer.lr=1e-3",
        "curriculum.epochs_per_stage=[2,4]",
        "curriculum.stages=[{eccentricity_std_px:0},{eccentricity_std_px:8}]",
        "seed=0",
    )
    train(cfg)
    module = load_module(read_checkpoint(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")).eval()
    datamodule = hydra_instantiate(cfg.data)
    digits = datamodule.test_digits
    index = torch.arange(len(digits.labels))
    images, shifts, _ = datamodule.test_recipes["where"](
        digits.images, datamodule.sample_keys("test/where", index)
    )
    with torch.no_grad():
        theta = module(images).thetas[:, 0]
    size = images.shape[-1]
    window = torch.stack((theta[:, 1, 2], theta[:, 0, 2]), dim=1) * size / 2  # (rows, cols) in pixels
    # measured over seeds 0-6: r 0.77-0.96, the window's spread 0.42-0.95 of the digits' (theta detached:
    # the same window for every image)
    for axis, name in enumerate(("rows", "cols")):
        r = pearson(window[:, axis], shifts[:, axis])
        spread = float(window[:, axis].std() / shifts[:, axis].float().std())
        assert r > 0.5 and spread > 0.25, f"{name}: r = {r:.2f}, window spread {spread:.2f} x the digits'"
