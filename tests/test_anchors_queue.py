"""scripts/anchors_cpu.sh, the queues behind the zoo's anchors, run with a fake Python that records each
command: the order of the runs, a shipped run skipped, a parked run restored and resumed on another
machine, and `park` keeping only the runs still in progress."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT

# Stands in for .venv/bin/python: records its arguments, then leaves what the real command leaves.
FAKE_PYTHON = r"""#!/usr/bin/env bash
# python -c CODE CKPT: the training steps of a checkpoint, here the number its text holds
[[ $1 == -c ]] && { steps=$(tr -cd 0-9 < "$3"); echo "${steps:-0}"; exit; }
echo "$*" >> "$CALLS"
dir=; for arg in "$@"; do [[ $arg == hydra.run.dir=* ]] && dir=${arg#hydra.run.dir=}; done
case $2 in
  stn_fovea.train)  # a finished training: its last.ckpt and the evaluation that follows it
    resumed=$dir/checkpoints/last.ckpt  # a resumed run: which checkpoint it found
    [[ -f $resumed ]] && echo "$(basename "$dir") from $(cat "$resumed")" >> "$CALLS.resumed"
    mkdir -p "$dir/checkpoints" "$dir/eval" "$dir/tensorboard"
    touch "$dir/checkpoints/last.ckpt" && echo '{}' > "$dir/eval/metrics.json" ;;
  stn_fovea.evaluate) mkdir -p "$dir" && echo '{}' > "$dir/metrics.json" ;;
  stn_fovea.zoo) echo "- name: $4" >> zoo/manifest.yaml ;;
esac
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the script in a bare project with one shipped entry, and the fake Python."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "anchors_cpu.sh", tmp_path / "scripts")
    (tmp_path / "zoo").mkdir()
    (tmp_path / "zoo" / "manifest.yaml").write_text("models:\n- name: what_where_c07_s1\n")
    fake = tmp_path / "python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    return tmp_path


def queue(project: Path, task: str, **env: str) -> list[list[str]]:
    """Run `anchors_cpu.sh task`; each command the fake Python received, split into its words."""
    calls = project / "calls.log"
    calls.touch()
    variables = {"PATH": "/usr/bin:/bin", "PY": str(project / "python"), "CALLS": str(calls), **env}
    subprocess.run(
        ["bash", "scripts/anchors_cpu.sh", task],
        cwd=project,
        env=variables,
        check=True,
        capture_output=True,
        text=True,
    )
    return [line.split() for line in calls.read_text().splitlines()]


def trained(calls: list[list[str]]) -> list[str]:
    """The runs trained, in order, named by their run folder."""
    return [
        Path(word.split("=", 1)[1]).name
        for call in calls
        if call[1] == "stn_fovea.train"
        for word in call
        if word.startswith("hydra.run.dir=")
    ]


def test_what_where_queue_runs_seed_one_then_the_reference_map_net_then_the_other_seeds(project):
    calls = queue(project, "ww", WW_SEEDS="1 2", CONTRASTS="0.7 0.5", POLO_SEEDS="1")
    assert trained(calls) == [  # c=0.7 seed 1 is already in the manifest: not trained again
        "what_where_c05_s1",
        "what_where_c05_s1_reference_map",
        "what_where_c07_s2",
        "what_where_c05_s2",
        "polo_atn_reference_s1",  # then the STN runs, beside the other queue's ATN
        "peripheral_atn_reference_s1",
    ]
    reference_map = [
        c for c in calls if c[1] == "stn_fovea.train" and "experiment=what_where_reference_map" in c
    ]
    assert len(reference_map) == 1 and "data.contrast=0.5" in reference_map[0]
    as_trained = [c for c in calls if c[1] == "stn_fovea.evaluate"]
    assert len(as_trained) == 4 and all("+model.net.reencode_as_trained=true" in c for c in as_trained)
    shipped = [c for c in calls if c[1] == "stn_fovea.zoo"]
    assert [c[3] for c in shipped] == trained(calls)
    assert ["--half" in c for c in shipped] == [True] * 4 + [False] * 2
    # weights shipped as trained take the run's own evaluation; float16 ones are evaluated as stored
    measured_by = [c[c.index("--measured-by") + 1] if "--measured-by" in c else None for c in shipped]
    assert measured_by == [None] * 4 + [
        f"outputs/anchors/{name}/eval/metrics.json" for name in trained(calls)[4:]
    ]


def test_a_run_another_queue_holds_is_left_to_it(project):
    runs = project / "outputs" / "anchors"
    runs.mkdir(parents=True)
    with (runs / "polo_atn_reference_s1.lock").open("w") as held:  # the other queue's POLO-ATN seed 1
        fcntl.flock(held, fcntl.LOCK_EX)
        calls = queue(project, "stn", POLO_SEEDS="1 2")
    assert trained(calls) == ["atn_reference_s1", "polo_atn_reference_s2", "peripheral_atn_reference_s1"]
    assert trained(queue(project, "stn", POLO_SEEDS="1 2"))[-1] == "polo_atn_reference_s1"  # released


def test_a_parked_run_is_restored_and_resumed_and_its_park_removed_once_shipped(project):
    parked = project / "zoo" / "runs" / "atn_reference_s1" / "checkpoints"
    parked.mkdir(parents=True)
    (parked / "last.ckpt").write_text("epoch 11")
    calls = queue(project, "stn", POLO_SEEDS="1")
    assert trained(calls) == ["atn_reference_s1", "polo_atn_reference_s1", "peripheral_atn_reference_s1"]
    assert (project / "calls.log.resumed").read_text() == "atn_reference_s1 from epoch 11\n"
    assert not (project / "zoo" / "runs" / "atn_reference_s1").exists()
    assert "experiment=atn_reference" in calls[0] and not any(c[1] == "stn_fovea.evaluate" for c in calls)


def test_park_keeps_the_runs_not_yet_shipped_and_never_an_older_copy(project):
    runs = project / "outputs" / "anchors"
    for name, steps in (("atn_reference_s1", 30), ("polo_atn_reference_s2", 50), ("what_where_c07_s1", 9)):
        (runs / name / "checkpoints").mkdir(parents=True)
        (runs / name / "checkpoints" / "last.ckpt").write_text(f"step {steps}")
        (runs / name / "tensorboard").mkdir()
        (runs / name / "config_resolved.yaml").write_text("seed: 1\n")
    (runs / "polo_atn_reference_s2" / "eval").mkdir()  # trained and evaluated: its shipping had not ended
    (runs / "polo_atn_reference_s2" / "eval" / "metrics.json").write_text("{}")
    parks = project / "zoo" / "runs"
    (parks / "atn_reference_s1" / "checkpoints").mkdir(parents=True)
    (parks / "atn_reference_s1" / "checkpoints" / "last.ckpt").write_text("step 40")  # parked further on
    queue(project, "park")
    # c=0.7 seed 1 is shipped: not parked
    assert sorted(p.name for p in parks.iterdir()) == ["atn_reference_s1", "polo_atn_reference_s2"]
    assert (parks / "atn_reference_s1" / "checkpoints" / "last.ckpt").read_text() == "step 40"
    kept = parks / "polo_atn_reference_s2"
    assert (kept / "checkpoints" / "last.ckpt").read_text() == "step 50"
    assert (kept / "tensorboard").is_dir() and (kept / "config_resolved.yaml").exists()
    assert (kept / "eval" / "metrics.json").is_file()  # restored, it is shipped without training again
    shutil.rmtree(runs)
    calls = queue(project, "stn", POLO_SEEDS="2")
    assert trained(calls) == ["atn_reference_s1", "peripheral_atn_reference_s1"]
    assert [c[3] for c in calls if c[1] == "stn_fovea.zoo"][1] == "polo_atn_reference_s2"


def test_a_parked_copy_further_on_replaces_the_run_here_even_a_crashed_one(project):
    runs = project / "outputs" / "anchors"
    (runs / "atn_reference_s1" / "checkpoints").mkdir(parents=True)  # crashed: no last.ckpt
    (runs / "polo_atn_reference_s1" / "checkpoints").mkdir(parents=True)
    (runs / "polo_atn_reference_s1" / "checkpoints" / "last.ckpt").write_text("step 70")  # ahead
    for name, steps in (("atn_reference_s1", 20), ("polo_atn_reference_s1", 60)):
        (project / "zoo" / "runs" / name / "checkpoints").mkdir(parents=True)
        (project / "zoo" / "runs" / name / "checkpoints" / "last.ckpt").write_text(f"step {steps}")
    queue(project, "stn", POLO_SEEDS="1")
    resumed = (project / "calls.log.resumed").read_text().splitlines()
    assert resumed == ["atn_reference_s1 from step 20", "polo_atn_reference_s1 from step 70"]
    assert not (runs / "atn_reference_s1" / "atn_reference_s1").exists()  # not nested in the crashed one
