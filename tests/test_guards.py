"""Guards: each test fails on one named fault (a checkpoint's weights left unused, a curriculum level that
does not reach the render keys, an LR restart that keeps the optimiser state, a resume across a restart
that drifts, a detached theta, a transformer that does not learn where to look)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import TINY_RUN
from stn_fovea.evaluate import evaluate
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
        "data.train_size=1000",
        "data.noise=0.2",
        "data.contrast=0.7",
        "data.val_protocol.shift_std_px=0",
        "curriculum.epochs_per_stage=1",
        "curriculum.stages=[{shift_std_px:0},{shift_std_px:0}]",
    )
    metrics = train(run)
    assert metrics["test"]["test/central/acc"] > 0.3  # measured 0.455
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
