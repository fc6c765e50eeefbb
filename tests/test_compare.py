import csv
import json
import math
import shutil

import pytest

from stn_fovea.compare import main
from stn_fovea.evaluation.benchmark import Point, changes_suffix
from stn_fovea.evaluation.benchmark_figure import curve_style


def write_metrics(folder, model, central, general, **run):
    folder.mkdir(parents=True)
    metrics = {
        "model": model,
        "noise": 0.75,
        **run,
        "accuracy": {"central": central, "general": general},
        "shift_map": {"ring_means": {"0": central, "5": 0.5, "10": 0.3}},
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))


def test_compare_tabulates_every_run_found(tmp_path, capsys):
    write_metrics(tmp_path / "a" / "eval", "stn", 0.9, 0.45, seed=3, train_epochs=60, train_seconds=4321.0)
    write_metrics(tmp_path / "b" / "eval", "what", 0.8, 0.35)  # from before runs recorded their time
    out = tmp_path / "table.csv"
    assert main([str(tmp_path), "--csv", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [(r["model"], float(r["central"]), float(r["general"])) for r in rows] == [
        ("stn", 0.9, 0.45),
        ("what", 0.8, 0.35),
    ]
    assert rows[0]["ring_5px"] == "0.5" and rows[0]["ring_20px"] == ""
    assert (rows[0]["seed"], rows[0]["train_epochs"], rows[0]["train_seconds"]) == ("3", "60", "4321.0")
    assert rows[1]["train_seconds"] == ""
    assert "stn_fovea runs" in capsys.readouterr().out


def test_compare_without_metrics_is_a_clear_error(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "no metrics.json" in capsys.readouterr().err
    assert main([str(tmp_path), "--out", str(tmp_path / "out"), "--curves"]) == 2  # nor a training run


def write_grid_run(folder, model, seed, noise, train_contrast, cells, train_noise=None, **extra):
    """A run's eval folder: metrics.json and grid.csv with (saccades, contrast, radius, accuracy, digits)."""
    folder.mkdir(parents=True)
    metrics = {"model": model, "noise": noise, "seed": seed, "train_contrast": train_contrast, "accuracy": {}}
    metrics.update(extra)
    metrics["train_noise"] = noise if train_noise is None else train_noise
    (folder / "metrics.json").write_text(json.dumps(metrics))
    with (folder / "grid.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", "saccades", "contrast", "eccentricity_px", "accuracy", "digits"])
        for saccades, contrast, radius, accuracy, digits in cells:
            writer.writerow([model, saccades, contrast, f"{radius:.3f}", accuracy, digits])


def test_the_benchmark_averages_seeds_keeps_each_contrast_from_its_own_net_and_sets_the_reference(
    tmp_path, capsys
):
    runs = tmp_path / "runs"
    for seed, accuracy in ((1, 0.8), (2, 0.9)):  # two seeds: mean .85, t interval 12.706 x sd / sqrt 2
        write_grid_run(
            runs / f"stn{seed}" / "eval", "stn128", seed, 0.75, [0.3, 0.7], [("", 0.7, 4.444, accuracy, 100)]
        )
    # What/Where: one net per contrast; the 0.7 net's cells at 0.3 (0.99) must not be read
    write_grid_run(runs / "ww07" / "eval", "what_where", 1, 1.0, [0.7, 0.7],
                   [(1, 0.7, 4.444, 0.5, 100), (1, 0.3, 4.444, 0.99, 100)])  # fmt: skip
    write_grid_run(runs / "ww03" / "eval", "what_where", 1, 1.0, [0.3, 0.3],
                   [(1, 0.7, 4.444, 0.99, 100), (1, 0.3, 4.444, 0.25, 100)])  # fmt: skip
    # the same STN evaluated at noise 1.0: the study's 0.75 cell is not its reference
    write_grid_run(
        runs / "stn1" / "eval_noise1.0", "stn128", 1, 1.0, [0.3, 0.7], [("", 0.7, 4.444, 0.6, 100)], 0.75
    )
    # the 0.7 net read with an evaluation-time option is a curve of its own, not a repeat of its seed
    option = ["model.net.reencode_as_trained=True"]
    write_grid_run(runs / "ww07" / "eval_as_trained", "what_where", 1, 1.0, [0.7, 0.7],
                   [(2, 0.7, 4.444, 0.875, 8)], model_changes=option)  # fmt: skip
    # What/Where seed 2 trained for 25 epochs, not the 60 of seed 1: another curve, not a second seed;
    # seed 3's metrics.json predates train_epochs: its run's config_resolved.yaml says 60
    for seed, epochs, accuracy in ((1, 60, 0.5), (2, 25, 0.25), (3, None, 0.7)):
        cells = [(1, 0.7, 4.444, accuracy, 100)]
        length = {"train_epochs": epochs} if epochs else {"checkpoint": str(runs / "ww_pe3" / "c" / "b.ckpt")}
        write_grid_run(runs / f"ww_pe{seed}" / "eval", "what_where", seed, 1.0, [0.7, 0.7], cells,
                       experiment="ww_epochs", **length)  # fmt: skip
    (runs / "ww_pe3" / "config_resolved.yaml").write_text("trainer:\n  max_epochs: 60\n")
    # a copy of seed 1 is not a third seed
    write_grid_run(runs / "zz_copy" / "eval", "stn128", 1, 0.75, [0.3, 0.7], [("", 0.7, 4.444, 0.1, 100)])
    out = tmp_path / "bench"
    assert main([str(runs), "--out", str(out)]) == 0
    table_rows = csv.DictReader((out / "benchmark.csv").open())
    every = {(r["experiment"], r["noise"], r["contrast"], r["saccades"]): r for r in table_rows}
    assert set(every) == {
        ("stn128", "0.75", "0.7", ""),
        ("stn128", "1.0", "0.7", ""),
        ("what_where", "1.0", "0.7", "1"),
        ("what_where", "1.0", "0.3", "1"),
        ("what_where +reencode_as_trained", "1.0", "0.7", "2"),
        ("ww_epochs (60 epochs)", "1.0", "0.7", "1"),
        ("ww_epochs (25 epochs)", "1.0", "0.7", "1"),
    }
    assert float(every["ww_epochs (25 epochs)", "1.0", "0.7", "1"]["mean"]) == 0.25
    assert every["ww_epochs (60 epochs)", "1.0", "0.7", "1"]["seeds"] == "2"  # seeds 1 and 3
    assert float(every["what_where +reencode_as_trained", "1.0", "0.7", "2"]["mean"]) == 0.875
    assert every["stn128", "1.0", "0.7", ""]["reference"] == ""  # the study measured at 0.75
    rows = {(m, c, k): row for (m, noise, c, k), row in every.items() if (m, noise) != ("stn128", "1.0")}
    stn = rows["stn128", "0.7", ""]
    # t over the seeds and Wilson's over the 100 test digits both seeds read, in quadrature
    half = math.hypot(12.706 * (0.1 / 2**0.5) / 2**0.5, (0.9199 - 0.7802) / 2)  # Wilson, 85 of 100
    assert float(stn["mean"]) == 0.85 and stn["seeds"] == "2" and stn["ci"] == "seeds+digits"
    assert (
        abs(float(stn["ci_low"]) - (0.85 - half)) < 1e-4 and float(stn["ci_high"]) == 1.0  # .85 + .64, capped
    )
    assert stn["reference"] == "0.9715"  # the STN study's cell (noise 0.75, 4.4 px, contrast 0.7)
    ww = rows["what_where", "0.7", "1"]
    assert float(ww["mean"]) == 0.5 and ww["seeds"] == "1" and ww["ci"] == "digits"
    assert (float(ww["ci_low"]), float(ww["ci_high"])) == (0.4038, 0.5962)  # Wilson, 50 of 100
    assert ww["reference"] == "0.9000"  # Fig 4, 1 saccade (noise 1.0)
    assert float(rows["what_where", "0.3", "1"]["mean"]) == 0.25
    table = (out / "benchmark.md").read_text()
    assert max(len(line) for line in table.splitlines() if "+" not in line) <= 80  # but for options' names
    assert (
        "| what_where (1 sacc.) | 1 | .500 ±.096 | .250 ±" in table
        and "| (reference) | 1 | .900 | .538 |" in table
    )
    assert "| stn128 [trained 0.75] | 1 | .600 ±" in table  # read at another noise than it trained at
    assert (out / "benchmark.png").stat().st_size > 10_000
    printed = capsys.readouterr()
    assert table in printed.out and "repeats seed 1" in printed.err
    assert "stn_fovea runs" not in printed.out  # the wide per-run table is a file here
    assert len(list(csv.DictReader((out / "runs.csv").open()))) == 10  # every run folder above


def test_the_table_gives_the_interval_of_the_mean_over_eccentricities(tmp_path):
    runs = tmp_path / "runs"
    # two seeds that differ in every cell (.8/.6 and .6/.8) but not in their mean over the radii (.7):
    # a t interval over those means would be 0 wide, so the mean gets Wilson's over the test digits
    for seed, (near, far) in ((1, (0.8, 0.6)), (2, (0.6, 0.8))):
        cells = [("", 0.7, 4.444, near, 100), ("", 0.7, 40.0, far, 100)]
        write_grid_run(runs / f"stn{seed}" / "eval", "stn128", seed, 0.75, [0.3, 0.7], cells)
    # one run: both cells read the same 100 digits, so their mean is no surer than 100 digits make it
    # (Wilson's over 200 would claim ±.069)
    cells = [("", 0.7, 4.444, 0.6, 100), ("", 0.7, 40.0, 0.4, 100)]
    write_grid_run(runs / "one" / "eval", "atn", 1, 0.75, [0.3, 0.7], cells)
    out = tmp_path / "bench"
    assert main([str(runs), "--out", str(out)]) == 0
    table = (out / "benchmark.md").read_text()
    assert "| stn128 | 0.75 | .700 ±.088 |" in table  # Wilson, 70 of 100: .604-.781
    assert "| atn | 0.75 | .500 ±.096 |" in table  # Wilson, 50 of 100: .404-.596


def test_an_experiment_that_trained_two_models_is_a_curve_per_model(tmp_path):
    runs = tmp_path / "runs"
    for model, accuracy in (("foveanet", 0.8), ("foveanet_control", 0.4)):
        for seed in (1, 2):
            write_grid_run(runs / f"{model}{seed}" / "eval", model, seed, 0.3, [0.7, 0.7],
                           [("", 0.7, 4.444, accuracy, 100)], experiment="quick")  # fmt: skip
    out = tmp_path / "bench"
    assert main([str(runs), "--out", str(out)]) == 0
    table = (out / "benchmark.md").read_text()
    assert "| quick: foveanet | 0.3 | .800 ±.078 | 2 |" in table  # seeds that agree: Wilson, 80 of 100
    assert "| quick: foveanet_control | 0.3 | .400 ±.094 | 2 |" in table


def test_a_curve_names_its_options_in_sorted_order_and_in_full_where_their_names_clash():
    options = ["model.net.z=True", "model.b.x=2", "model.a.x=True"]
    assert changes_suffix(options) == " +model.a.x +model.b.x=2 +z"


def test_a_model_keeps_its_colour_in_every_panel_and_is_dotted_where_read_at_another_noise():
    def point(label, noise, train_noise):
        return Point(
            label, "m", noise, train_noise, None, 0.7, 4.444, 0.5, 0.4, 0.6, 1, "digits", 100, None, ()
        )

    labels = ["a", "b"]
    own, other = curve_style(point("b", 0.75, 0.75), labels), curve_style(point("b", 1.0, 0.75), labels)
    assert own[0] == other[0] != curve_style(point("a", 1.0, 1.0), labels)[0]
    assert (own[1], other[1]) == ("o-", "s:")


def write_protocol_run(folder, model, seed, accuracy, f1, experiment="stn_challenge", **extra):
    """A clean-MNIST run's eval folder: metrics.json with one test protocol, no grid."""
    folder.mkdir(parents=True)
    metrics = {"model": model, "noise": 0.0, "seed": seed, "experiment": experiment, "test_digits": 10000,
               "accuracy": {"clean": accuracy}, "f1_macro": {"clean": f1}, "train_epochs": 30}  # fmt: skip
    metrics.update(extra)
    if f1 is None:
        del metrics["f1_macro"]
    (folder / "metrics.json").write_text(json.dumps(metrics))


def test_the_protocol_table_gives_mean_sd_and_intervals_over_seeds_beside_the_published_score(
    tmp_path, capsys
):
    # STN_challenge's own ten runs: their mean (sd) must come out as the note's 99.05 (0.03), 99.06 (0.09)
    conv, coord = [99.02, 99.05, 99.08, 99.02, 99.09], [99.18, 99.02, 98.97, 98.99, 99.13]
    for seed, (a, b) in enumerate(zip(conv, coord, strict=True), start=1):
        kept = {"metric": "test_each_epoch/clean/acc", "accuracy": a / 100 + 0.001}  # the best test epoch
        write_protocol_run(tmp_path / f"conv{seed}" / "eval", "stn_tutorial", seed, a / 100, a / 100 - 0.0001,
                           test_selected=kept)  # fmt: skip
        write_protocol_run(tmp_path / f"coord{seed}" / "eval", "stn_coordconv", seed, b / 100, b / 100)
    write_protocol_run(tmp_path / "z_again" / "eval", "stn_tutorial", 1, 0.5, 0.5)  # seed 1 again: left out
    write_protocol_run(tmp_path / "mvp" / "eval", "stn_coordconv", 1, 0.9940, 0.9940, "stn_challenge_mvp")
    # What/Where: one net per contrast, all seed 1: not repeats of one another, a row per training contrast
    for contrast, accuracy in ((0.7, 0.6), (0.3, 0.2)):
        write_protocol_run(tmp_path / f"ww{contrast}" / "eval", "what_where", 1, accuracy, None, "ww",
                           train_contrast=[contrast, contrast], noise=1.0)  # fmt: skip
    out = tmp_path / "out"
    assert main([str(tmp_path), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "z_again/eval repeats seed 1" in captured.err and "ww" not in captured.err
    rows = {(r["experiment"], r["model"]): r for r in csv.DictReader((out / "protocols.csv").open())}
    ww = [r for r in csv.DictReader((out / "protocols.csv").open()) if r["model"] == "what_where"]
    by_contrast = sorted((r["train_contrast"], r["accuracy"]) for r in ww)
    assert by_contrast == [("0.3000", "0.2000"), ("0.7000", "0.6000")]
    tutorial, coordconv = rows["stn_challenge", "stn_tutorial"], rows["stn_challenge", "stn_coordconv"]
    assert (tutorial["seeds"], tutorial["accuracy"], tutorial["sd"]) == ("5", "0.9905", "0.0003")
    assert (coordconv["accuracy"], coordconv["sd"]) == ("0.9906", "0.0009")
    # t(4) x sd / sqrt(n) over the seeds, and Wilson's over the 10,000 test digits they all read (9905
    # right: .9884-.9922), in quadrature: the test set's error dominates, as averaging seeds leaves it
    half = math.hypot(2.776 * 0.000311448 / 5**0.5, (0.992224 - 0.988403) / 2)
    assert float(tutorial["ci_low"]) == pytest.approx(0.99052 - half, abs=1e-4)
    assert tutorial["ci"] == "seeds+digits" and tutorial["published"] == "0.9905"
    assert float(tutorial["f1_macro"]) == pytest.approx(0.99042, abs=1e-4)
    assert tutorial["test_selected"] == "0.9915"
    assert coordconv["test_selected"] == ""  # not every seed kept it
    mvp = rows["stn_challenge_mvp", "stn_coordconv"]
    assert mvp["seeds"] == "1" and mvp["ci"] == "digits" and mvp["sd"] == ""  # Wilson over 10000 digits
    assert float(mvp["ci_low"]) == pytest.approx(0.99233, abs=1e-4)
    table = (out / "protocols.md").read_text()
    assert "| *stn_challenge* | | | | | | | |\n| stn_coordconv | clean | 0 | 99.06 (0.09) |" in table
    assert "| stn_tutorial | clean | 0 | 99.05 (0.03) | 98.86-99.25 | .990 | 5 | 99.15 |" in table
    assert "| *ww* | | | | | | | |\n| what_where c0.3 | clean | 1 | 20.00 |" in table
    assert max(len(line) for line in table.splitlines()) <= 80
    assert "| (published: best test epoch) | | | 99.05 (0.03) | | | 5 |" in table
    assert table in captured.out and not (out / "benchmark.png").exists()  # no grid: no figure


def test_the_protocol_table_keeps_apart_and_names_the_weights_each_run_scored(tmp_path, capsys):
    # a reference run scored on its final weights and on the epoch picked on the test digits (score=best
    # without a validation split): two rows, each saying which, never one mean over both
    for seed in (1, 2):
        write_protocol_run(tmp_path / f"final{seed}" / "eval", "stn_tutorial", seed, 0.98, 0.98,
                           checkpoint=f"runs/{seed}/checkpoints/last.ckpt")  # fmt: skip
        write_protocol_run(tmp_path / f"best{seed}" / "eval", "stn_tutorial", seed, 0.99, 0.99,
                           checkpoint=f"runs/{seed}/checkpoints/best-epoch3.ckpt",
                           weights="best on test digits")  # fmt: skip
    out = tmp_path / "out"
    assert main([str(tmp_path), "--out", str(out)]) == 0
    assert "repeats seed" not in capsys.readouterr().err
    rows = {r["weights"]: r for r in csv.DictReader((out / "protocols.csv").open())}
    assert (rows["final"]["accuracy"], rows["final"]["seeds"]) == ("0.9800", "2")
    assert (rows["best on test digits"]["accuracy"], rows["best on test digits"]["seeds"]) == ("0.9900", "2")
    table = (out / "protocols.md").read_text()
    assert "| stn_tutorial (best on test digits) | clean | 0 | 99.00 (0.00) |" in table
    assert "| stn_tutorial (final) | clean | 0 | 98.00 (0.00) |" in table
    runs = {r["run"].split("/")[-2]: r["weights"] for r in csv.DictReader((out / "runs.csv").open())}
    assert runs["final1"] == "final" and runs["best2"] == "best on test digits"


def test_the_protocol_table_gives_the_mean_gaze_error_of_the_models_that_measured_it(tmp_path):
    for seed, (accuracy, gaze) in enumerate(((0.8, 12.0), (0.7, 9.0)), start=1):
        write_protocol_run(tmp_path / f"fovea{seed}" / "eval", "foveanet", seed, accuracy, accuracy, "fovea",
                           gaze_error_px={"clean": gaze})  # fmt: skip
    write_protocol_run(tmp_path / "cnn" / "eval", "stn_none", 1, 0.9, 0.9, "fovea")  # no window: no gaze
    out = tmp_path / "out"
    assert main([str(tmp_path), "--out", str(out)]) == 0
    rows = {r["model"]: r for r in csv.DictReader((out / "protocols.csv").open())}
    assert (rows["foveanet"]["gaze_error_px"], rows["foveanet"]["gaze_sd"]) == ("10.5000", "2.1213")
    assert rows["stn_none"]["gaze_error_px"] == ""
    table = (out / "protocols.md").read_text()
    assert "| foveanet | clean | 0 | 75.00 (7.07) | 11.46-100.00 | .750 | 2 | 10.5 (2.1) |" in table
    assert "| stn_none | clean | 0 | 90.00 | 89.40-90.57 | .900 | 1 |  |" in table
    assert "| *fovea* | | | | | | | |" in table


def test_seeds_that_agree_get_the_interval_of_the_test_digits_not_a_zero_wide_one(tmp_path):
    # What/Where's 0-saccade control is read by the same What whatever the Where net's seed: the seeds
    # agree to the digit, and only the finite test set is left to sample; after a saccade they differ
    for seed, after in ((1, 0.8), (2, 0.9)):
        cells = [(0, 0.7, 4.444, 0.7, 100), (0, 0.7, 40.0, 0.7, 100), (1, 0.7, 4.444, after, 100)]
        write_grid_run(tmp_path / f"ww{seed}" / "eval", "what_where", seed, 1.0, [0.7, 0.7], cells)
    out = tmp_path / "out"
    assert main([str(tmp_path), "--out", str(out)]) == 0
    rows = {(r["saccades"], r["eccentricity"]): r for r in csv.DictReader((out / "benchmark.csv").open())}
    control, moved = rows["0", "4.444"], rows["1", "4.444"]
    assert (control["seeds"], control["ci"]) == ("2", "digits")
    assert (control["ci_low"], control["ci_high"]) == ("0.6042", "0.7811")  # Wilson, 70 of 100
    # .85 +- .639: t's .635 and Wilson's .070 (85 of 100) in quadrature
    assert (moved["ci"], moved["ci_low"], moved["ci_high"]) == ("seeds+digits", "0.2109", "1.0000")
    table = (out / "benchmark.md").read_text()
    assert "| what_where (0 sacc.) | 1 | .700 ±.088 |" in table  # Wilson, 70 of the 100 digits per cell


def test_an_accuracy_interval_over_seeds_stays_within_0_and_100_percent(tmp_path):
    for seed, accuracy in ((1, 0.3), (2, 0.9)):  # t(1) interval: .6 +- 12.706 x .4243 / sqrt 2 = +-3.81
        write_protocol_run(tmp_path / f"run{seed}" / "eval", "foveanet", seed, accuracy, accuracy, "wide")
    out = tmp_path / "out"
    assert main([str(tmp_path), "--out", str(out)]) == 0
    (row,) = csv.DictReader((out / "protocols.csv").open())
    assert (row["accuracy"], row["ci_low"], row["ci_high"]) == ("0.6000", "0.0000", "1.0000")


def test_a_score_that_one_seed_lacks_is_not_averaged_over_the_others(tmp_path):
    write_protocol_run(
        tmp_path / "s1" / "eval", "foveanet", 1, 0.8, 0.8, "partial", gaze_error_px={"clean": 9.0}
    )
    write_protocol_run(tmp_path / "s2" / "eval", "foveanet", 2, 0.7, None, "partial")  # older: no F1, no gaze
    out = tmp_path / "out"
    assert main([str(tmp_path), "--out", str(out)]) == 0
    (row,) = csv.DictReader((out / "protocols.csv").open())
    assert row["seeds"] == "2" and row["accuracy"] == "0.7500"
    assert (row["f1_macro"], row["gaze_error_px"]) == ("", "")


def test_a_training_curve_is_set_beside_the_reference_epoch_by_epoch(tmp_path, capsys):
    from torch.utils.tensorboard import SummaryWriter

    from stn_fovea.evaluation.reference_curves import TRAINING_CURVES_128

    run = tmp_path / "runs" / "polo"
    run.mkdir(parents=True)
    (run / "config_resolved.yaml").write_text(
        "model_name: polo_atn\nexperiment_name: polo_atn_reference\nseed: 2\n"
    )
    writer = SummaryWriter(str(run / "tensorboard"))
    # epochs 0 and 1 at steps 600 and 1200; epoch 1 logged twice (an attempt that was resumed): the last
    for step, epoch, accuracy in ((600, 0, 0.25), (1200, 1, 0.1), (1201, 1, 0.5)):
        writer.add_scalar("epoch", epoch, step)
        writer.add_scalar("val_level/acc", accuracy, step)
    writer.close()
    # a copy of it (a parked run beside its live folder) is not written over it
    shutil.copytree(run, tmp_path / "runs" / "x_parked")
    # our peripheral ATN on the ATN's reference schedule is set beside the ATN's curve
    other = tmp_path / "runs" / "peripheral"
    shutil.copytree(run / "tensorboard", other / "tensorboard")
    (other / "config_resolved.yaml").write_text(
        "model_name: peripheral_atn\nexperiment_name: atn_reference\nseed: 1\n"
    )
    # the ATN on another schedule: its epochs do not line up with the reference's
    cpu = tmp_path / "runs" / "cpu"
    shutil.copytree(run / "tensorboard", cpu / "tensorboard")
    (cpu / "config_resolved.yaml").write_text("model_name: atn\nexperiment_name: atn_cpu\nseed: 1\n")
    short = tmp_path / "runs" / "short"  # a reference schedule changed on the command line: no curve either
    shutil.copytree(run / "tensorboard", short / "tensorboard")
    (short / "config_resolved.yaml").write_text(
        "model_name: atn\nexperiment_name: atn_reference\nseed: 3\ncurriculum:\n  epochs_per_stage: 1\n"
    )
    failed = tmp_path / "runs" / "failed"  # a run that failed before it logged anything: no curve
    failed.mkdir()
    (failed / "config_resolved.yaml").write_text("model_name: atn\nexperiment_name: atn_reference\nseed: 1\n")
    out = tmp_path / "out"
    assert main([str(tmp_path / "runs"), "--out", str(out), "--curves"]) == 0
    rows = list(csv.DictReader((out / "training_curve_polo_atn_reference_seed2.csv").open()))
    assert len(rows) == 110 and (out / "training_curve_polo_atn_reference_seed2.png").is_file()
    first = TRAINING_CURVES_128["polo_atn"][0]  # the notebook's epoch 1: .1871
    assert rows[0] == {"epoch": "1", "ours": "0.2500", "reference": f"{first:.4f}",
                       "difference": f"{0.25 - first:+.4f}"}  # fmt: skip
    assert rows[1]["ours"] == "0.5000" and rows[2]["ours"] == rows[2]["difference"] == ""
    assert (out / "training_curve_polo_atn_reference_seed2_2.csv").is_file()
    rows = list(csv.DictReader((out / "training_curve_peripheral_atn_on_atn_reference_seed1.csv").open()))
    assert rows[0]["reference"] == f"{TRAINING_CURVES_128['atn'][0]:.4f}"
    err = capsys.readouterr().err
    assert f"{failed} has no tensorboard/ events" in err
    assert f"{short} changed its reference schedule (curriculum.epochs_per_stage=1, the reference's" in err
    assert not list(out.glob("training_curve_atn_cpu*"))
    assert not list(out.glob("training_curve_atn_reference_seed3*"))


def test_a_run_evaluated_without_test_protocols_is_listed(tmp_path, capsys):
    write_grid_run(tmp_path / "grid_only" / "eval", "atn", 1, 0.75, [0.3, 0.7], [("", 0.7, 4.444, 0.5, 100)])
    metrics = tmp_path / "grid_only" / "eval" / "metrics.json"
    metrics.write_text(
        json.dumps({k: v for k, v in json.loads(metrics.read_text()).items() if k != "accuracy"})
    )
    assert main([str(tmp_path)]) == 0  # evaluators.protocols=null writes no "accuracy"
    assert "grid_only" in capsys.readouterr().out


def test_compare_reads_runs_without_importing_torch():
    import subprocess
    import sys

    check = "import sys, stn_fovea.compare; print(sorted({'torch', 'lightning'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_seeds_a_hair_apart_keep_the_test_digits_interval_of_seeds_that_agree():
    from stn_fovea.evaluation.benchmark import seed_interval, wilson

    # two seeds read the same 1,000 digits at .868 and .869: t alone says +-.0064, yet the test set
    # samples as much as when they agree (Wilson, 868 of 1000: +-.021); no cliff between the two
    _, low, high, kind = seed_interval([0.868, 0.869], 1000)
    agree_low, agree_high = wilson(868, 1000)
    assert kind == "seeds+digits"
    assert (high - low) / 2 == pytest.approx((agree_high - agree_low) / 2, abs=0.002)
    assert seed_interval([0.868, 0.868], 1000)[1:] == (agree_low, agree_high, "digits")
