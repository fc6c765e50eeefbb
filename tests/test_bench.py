"""The benchmark command runs end to end (its numbers are printed, never asserted)."""

import importlib.util

from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from conftest import CONF
from stn_fovea.bench import run


def test_bench_times_generators_reference_pipeline_a_128_model_and_the_loops(compose_train):
    cfg = compose_train(
        "~models",
        "+models={polo_atn:mnist128}",
        "generators=[mnist128]",
        "generator_batch_sizes=[50]",
        "batch_size=20",
        "min_seconds=0.05",
        "device=cpu",
        "adam_mlp=[30,20,5]",
        "loop_overhead.train_size=300",
        config_name="bench",
    )
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF), version_base="1.3"):  # run() composes the model configs
        table = run(cfg)
    labels = [str(label) for label in table.columns[0]._cells]
    rates = [str(rate) for rate in table.columns[3]._cells]
    assert "generator mnist128" in labels and "train step polo_atn" in labels
    assert {"Adam step (for-loop)", "Adam step (foreach)", "Adam step (fused)"} <= set(labels)
    assert "Adam step (fused, 50% dead, flush_denormal)" in labels
    notes = dict(zip(labels, (str(note) for note in table.columns[5]._cells), strict=True))
    assert "MLP 30-20-5, 0.0 M params" in notes["Adam step (fused, 50% dead, flush_denormal)"]
    bare, lightning = "train loop stn on mnist28: bare PyTorch", "train loop stn on mnist28: Lightning"
    assert bare in labels and "of the bare loop's samples/s" in notes[lightning]
    if importlib.util.find_spec("MotionClouds"):
        assert labels[0] == "reference numpy+MotionClouds 128"
    assert all(float(rate.replace(",", "")) > 0 for rate in rates)
