"""The lightning-hydra-template conventions: debug configs, the CSV logger and TensorBoard's HPARAMS tab."""

import csv
import json
import math
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from conftest import TINY_RUN
from stn_fovea.train import train

RECORD = (
    "+callbacks.recorder._target_=recorders.EpochRecorder",
    "+callbacks.recorder.path=${paths.output_dir}/epochs.json",
)
TRAIN_BATCHES = 25  # data.train_size=2500 in batches of 100: more than any debug config's limit


def epoch_steps(run: Path) -> dict[int, int]:
    """{epoch: global step at its end}, from the EpochRecorder."""
    epochs = json.loads((run / "epochs.json").read_text())
    return {int(epoch): record["global_step"] for epoch, record in epochs.items()}


def csv_metrics(run: Path) -> list[dict[str, str]]:
    with (run / "csv" / "version_0" / "metrics.csv").open() as file:
        return list(csv.DictReader(file))


def csv_column(rows: list[dict[str, str]], name: str) -> list[float]:
    return [float(row[name]) for row in rows if row.get(name)]


def scalars(run: Path) -> EventAccumulator:
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    return events


# debug config, extra overrides, {epoch: global step at its end}
DEBUG_RUNS = [
    ("default", (), {0: 20}),
    ("limit", (), {0: 5, 1: 10, 2: 15}),
    ("overfit", ("trainer.max_epochs=2",), {0: 3, 1: 6}),  # 50 epochs in the config
    ("profiler", (), {0: TRAIN_BATCHES}),
    ("fast_dev_run", ("evaluate=true",), {0: 1}),
]


@pytest.mark.parametrize(("debug", "overrides", "steps"), DEBUG_RUNS, ids=[run[0] for run in DEBUG_RUNS])
def test_every_debug_config_runs_to_the_end(compose_train, debug, overrides, steps):
    cfg = compose_train(
        *TINY_RUN, *RECORD, f"data.train_size={TRAIN_BATCHES * 100}", f"debug={debug}", *overrides
    )
    metrics = train(cfg)
    run = Path(cfg.paths.output_dir)
    assert metrics["test"][metrics["sweep_metric"]] >= 0.0  # trainer.test ran
    # the debug config's epochs and batches, not the 16-stage curriculum's 160 epochs
    assert epoch_steps(run) == steps
    if debug == "fast_dev_run":
        # no checkpoint and no logs: the test and the evaluation measured the weights in memory
        assert metrics["best_checkpoint"] is None and not list(run.glob("checkpoints/*.ckpt"))
        assert not (run / "tensorboard").exists()
        assert (run / "eval" / "metrics.json").is_file()
    else:
        assert Path(metrics["best_checkpoint"]).is_file() and "evaluation" not in metrics
    if debug == "overfit":
        # the same 3 batches every epoch: overfit_batches turned the epoch shuffle off
        record = json.loads((run / "epochs.json").read_text())
        assert record["0"]["first_index"] == record["1"]["first_index"]
    if debug == "profiler":
        assert "run_training_batch" in (run / "fit-profile.txt").read_text()
        assert (run / "test-profile.txt").is_file()


def test_csv_logger_alone_writes_metrics_csv_and_no_tensorboard(compose_train):
    cfg = compose_train(
        *TINY_RUN,
        "logger=csv",
        "trainer.max_epochs=2",
        "callbacks.glimpses.every_n_epochs=1",  # the glimpse pictures and the evaluation's confusion
        "evaluate=true",  # matrix look for a TensorBoard writer and find none
    )
    metrics = train(cfg)
    run = Path(cfg.paths.output_dir)
    assert not (run / "tensorboard").exists()
    assert (run / "eval" / "metrics.json").is_file()
    rows = csv_metrics(run)
    val_acc = csv_column(rows, "val/acc")
    assert len(val_acc) == 2
    # the best checkpoint's name carries the best val/acc to 4 decimals
    assert f"acc{max(val_acc):.4f}.ckpt" in metrics["best_checkpoint"]
    assert csv_column(rows, "hp/sweep_metric") == [pytest.approx(metrics["test"][metrics["sweep_metric"]])]
    assert (run / "csv" / "version_0" / "hparams.yaml").is_file()


def test_tensorboard_csv_logs_the_same_curves_to_both(compose_train):
    cfg = compose_train(*TINY_RUN, "logger=tensorboard_csv", "trainer.max_epochs=2", "evaluate=false")
    train(cfg)
    run = Path(cfg.paths.output_dir)
    in_csv = csv_column(csv_metrics(run), "val/acc")
    in_tensorboard = [event.value for event in scalars(run).Scalars("val/acc")]
    assert len(in_csv) == 2 and in_csv == pytest.approx(in_tensorboard)


def test_hparams_tab_holds_the_hyperparameters_and_the_final_metrics(compose_train):
    cfg = compose_train(*TINY_RUN, "trainer.max_epochs=2", "evaluate=false", "optimizer.lr=0.02")
    metrics = train(cfg)
    events = scalars(Path(cfg.paths.output_dir))
    plugin = {
        tag: plugin_data_pb2.HParamsPluginData.FromString(content)
        for tag, content in events.PluginTagToContent("hparams").items()
    }
    declared = {info.name.tag for info in plugin["_hparams_/experiment"].experiment.metric_infos}
    tests = {f"hp/test/{protocol}/{name}" for protocol in ("central", "general") for name in ("acc", "loss")}
    assert declared == {"hp/sweep_metric", "hp/val/acc_best", *tests}
    hparams = plugin["_hparams_/session_start_info"].session_start_info.hparams
    assert hparams["optimizer/lr"].number_value == 0.02 and hparams["model_name"].string_value == "stn"

    def logged(tag: str) -> list[float]:
        return [event.value for event in events.Scalars(tag)]

    # a NaN placeholder at the start, then the value train() returned (sweeps return the sweep metric)
    for name, value in metrics["test"].items():
        assert math.isnan(logged(f"hp/{name}")[0]) and logged(f"hp/{name}")[-1] == pytest.approx(value)
    assert logged("hp/sweep_metric")[-1] == pytest.approx(metrics["test"]["test/general/acc"])
    assert logged("hp/val/acc_best")[-1] == pytest.approx(max(logged("val/acc")))
    assert events.Scalars("hp/sweep_metric")[-1].step == 6  # 2 epochs of 3 batches
