"""Short runs of the real pipeline: outputs, curriculum timing, resume continuity, evaluation."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import TINY_RUN
from stn_fovea.checkpoint import read_checkpoint
from stn_fovea.evaluate import evaluate
from stn_fovea.train import train

RECORD = (
    "+callbacks.recorder._target_=recorders.EpochRecorder",
    "+callbacks.recorder.path=${paths.output_dir}/epochs.json",
)


def epochs(output_dir: str) -> dict[int, dict]:
    return {int(k): v for k, v in json.loads((Path(output_dir) / "epochs.json").read_text()).items()}


@pytest.mark.parametrize("model", ["what", "stn"])
def test_a_short_run_writes_checkpoints_logs_figures_and_metrics(compose_train, model):
    cfg = compose_train(
        *TINY_RUN,
        f"model={model}",
        "curriculum.epochs_per_stage=1",
        "curriculum.stages=[{shift_std_px:0},{shift_std_px:2}]",
        "callbacks.glimpses.every_n_epochs=1",
    )
    metrics = train(cfg)
    run = Path(cfg.paths.output_dir)
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert len(list((run / "checkpoints").glob("best-*.ckpt"))) == 1
    assert (run / "config_resolved.yaml").is_file()
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {
        "train/loss_epoch",
        "val/acc",
        "val_level/acc",
        "curriculum/shift_std_px",
        "test/general/acc",
    } <= scalars
    assert any(tag.startswith("lr-") for tag in scalars)
    assert "glimpses" in events.Tags()["images"]
    assert ("theta/tx" in events.Tags()["histograms"]) == (model == "stn")
    for figure in ("shift_map.png", "glimpses.png", "ring_means.png", "metrics.json"):
        assert (run / "eval" / figure).is_file()
    assert np.load(run / "eval" / "shift_map.npy").shape == (7, 7)
    written = json.loads((run / "eval" / "metrics.json").read_text())
    # the evaluation re-renders the same fixed test sets as trainer.test: same numbers
    for protocol in ("central", "general"):
        assert written["accuracy"][protocol] == pytest.approx(
            metrics["test"][f"test/{protocol}/acc"], abs=1e-6
        )
    assert written["model"] == model and written["channels_last"] is True
    # channels_last (train.yaml's default) trained the convolutions in NHWC: the checkpoint keeps it
    weights = read_checkpoint(run / "checkpoints" / "last.ckpt")["state_dict"]
    kernels = [w for w in weights.values() if w.dim() == 4 and w.shape[1] > 1]
    assert kernels and all(
        w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous() for w in kernels
    )


def test_curriculum_switches_on_the_intended_epoch(compose_train):
    cfg = compose_train(
        *TINY_RUN,
        *RECORD,
        "model=what",
        "evaluate=false",
        "curriculum.epochs_per_stage=2",
        "curriculum.stages=[{shift_std_px:0},{shift_std_px:4},{shift_std_px:8}]",
        "trainer.max_epochs=5",
    )
    train(cfg)
    record = epochs(cfg.paths.output_dir)
    assert [record[e]["shift_std_px"] for e in range(5)] == [0, 0, 4, 4, 8]
    assert [record[e]["max_abs_shift"] == 0 for e in range(5)] == [True, True, False, False, False]
    events = EventAccumulator(str(Path(cfg.paths.output_dir) / "tensorboard"))
    events.Reload()
    assert [e.value for e in events.Scalars("curriculum/shift_std_px")] == [0, 0, 4, 4, 8]


def test_resume_continues_curriculum_optimiser_and_scheduler_exactly(compose_train):
    common = (
        *TINY_RUN,
        *RECORD,
        "model=stn",
        "evaluate=false",
        "optimizer.momentum=0.9",
        "scheduler=step",
        "scheduler.step_size=1",
        "curriculum.epochs_per_stage=2",
        "curriculum.stages=[{shift_std_px:0},{shift_std_px:3}]",
    )
    straight = compose_train(*common, "trainer.max_epochs=4", output="straight")
    train(straight)
    first_half = compose_train(*common, "trainer.max_epochs=2", output="first_half")
    train(first_half)
    # ckpt_path=last: the run directory's own last.ckpt; the run goes on in that directory
    resumed = compose_train(*common, "trainer.max_epochs=4", "ckpt_path=last", output="first_half")
    train(resumed)

    full, tail = epochs(straight.paths.output_dir), epochs(resumed.paths.output_dir)
    assert sorted(tail) == [2, 3]
    for epoch in (2, 3):
        assert tail[epoch] == full[epoch]  # level, lr (StepLR), global step and batch order
    end_straight = read_checkpoint(Path(straight.paths.output_dir) / "checkpoints" / "last.ckpt")
    end_resumed = read_checkpoint(Path(resumed.paths.output_dir) / "checkpoints" / "last.ckpt")
    for name, value in end_straight["state_dict"].items():
        assert torch.allclose(value, end_resumed["state_dict"][name], atol=1e-6), name
    momentum = [s["momentum_buffer"] for s in end_resumed["optimizer_states"][0]["state"].values()]
    assert momentum and all(buffer is not None for buffer in momentum)


def test_evaluate_entry_point_on_a_checkpoint(compose_train, tiny_runs):
    overrides = (
        "evaluators.shift_map.digits_per_cell=2",
        "evaluators.shift_map.max_shift_px=2",
        "test_size=300",
        "noise=1.0",
        f"ckpt_path={tiny_runs('28') / 'checkpoints' / 'last.ckpt'}",
    )
    cfg = compose_train(*overrides, config_name="evaluate", output="evaluation")
    metrics = evaluate(cfg)
    written = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert written["noise"] == 1.0 and written["test_digits"] == 300
    assert set(written["accuracy"]) == {"central", "general"} and written == json.loads(json.dumps(metrics))
    shift_map = np.load(Path(cfg.paths.output_dir) / "shift_map.npy")
    assert shift_map.shape == (5, 5) and written["channels_last"] is True
    # NCHW reads the same images to float rounding: the same answers
    nchw = compose_train(*overrides, "channels_last=false", config_name="evaluate", output="nchw")
    assert evaluate(nchw)["accuracy"] == metrics["accuracy"]
    assert np.array_equal(np.load(Path(nchw.paths.output_dir) / "shift_map.npy"), shift_map)
    # an evaluation without the protocols evaluator (only the map) reports what it measured
    only_map = compose_train(*overrides, "evaluators.protocols=null", config_name="evaluate", output="map")
    assert (
        "accuracy" not in evaluate(only_map) and (Path(only_map.paths.output_dir) / "shift_map.npy").is_file()
    )


def test_score_final_measures_the_weights_after_the_last_epoch_and_keeps_the_best(compose_train):
    """The best checkpoint is pinned to epoch 0 (it monitors the curriculum stage, lowest first), so the
    final weights (epoch 1) differ from it: the run must measure last.ckpt and say so."""
    common = (
        *TINY_RUN,
        "model=what",
        "optimizer.lr=0.05",
        "curriculum.epochs_per_stage=1",
        "curriculum.stages=[{shift_std_px:0},{shift_std_px:1}]",
        "callbacks.model_checkpoint.monitor=curriculum/stage",
        "callbacks.model_checkpoint.mode=min",
        "callbacks.model_checkpoint.filename='best-epoch{epoch:03d}'",
    )
    run = compose_train(*common, "score=final")
    metrics = train(run)
    checkpoints = Path(run.paths.output_dir) / "checkpoints"
    (best,) = checkpoints.glob("best-*.ckpt")
    assert best.name == "best-epoch000.ckpt" and metrics["best_checkpoint"] == str(best)
    assert (metrics["checkpoint"], metrics["weights"]) == (str(checkpoints / "last.ckpt"), "final")
    written = json.loads((Path(run.paths.output_dir) / "eval" / "metrics.json").read_text())
    assert (written["checkpoint"], written["weights"]) == (metrics["checkpoint"], "final")
    measured = {}
    for path in (best, checkpoints / "last.ckpt"):
        cfg = compose_train(f"ckpt_path={path}", "evaluators.shift_map=null", config_name="evaluate",
                            output=path.stem)  # fmt: skip
        measured[path.name] = evaluate(cfg)
    assert measured[best.name]["weights"] == "best val" and measured["last.ckpt"]["weights"] == "final"
    general = {name: m["accuracy"]["general"] for name, m in measured.items()}
    assert general[best.name] != general["last.ckpt"]  # two different nets: the check below can fail
    assert metrics["test"]["test/general/acc"] == pytest.approx(general["last.ckpt"], abs=1e-6)
    assert written["accuracy"]["general"] == pytest.approx(general["last.ckpt"], abs=1e-6)


def test_a_best_checkpoint_picked_on_the_test_digits_says_so(compose_train):
    """With data.val_size=0 (the reference protocol's), validation reads the test digits: the best
    checkpoint was picked on the digits it is scored on, and every table names it so, not "best val"."""
    run = compose_train(*TINY_RUN, "model=what", "curriculum=none", "trainer.max_epochs=1", "data.val_size=0",
                        "score=best", "evaluators.shift_map=null")  # fmt: skip
    metrics = train(run)
    assert metrics["weights"] == "best on test digits"
    (best,) = (Path(run.paths.output_dir) / "checkpoints").glob("best-*.ckpt")
    cfg = compose_train(
        f"ckpt_path={best}", "evaluators.shift_map=null", config_name="evaluate", output="eval"
    )
    assert evaluate(cfg)["weights"] == "best on test digits"
