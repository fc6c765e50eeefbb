"""The model zoo: shipping a run (weights only, float16 where asked, the manifest entry), the hashes, and
every shipped net against what its manifest entry says it measures."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra

from conftest import ROOT, TINY_RUN_128, compose_config
from stn_fovea.callbacks.run_config import code_commit
from stn_fovea.checkpoint import load_module, read_checkpoint
from stn_fovea.evaluate import evaluate
from stn_fovea.evaluation.benchmark import wilson
from stn_fovea.train import train
from stn_fovea.zoo import (
    HALF_ABOVE,
    ZooError,
    add,
    main,
    manifest_lock,
    read_manifest,
    record_measured,
    reproduce,
    sha256,
    verify,
    write_manifest,
)

SHIPPED = read_manifest(ROOT / "zoo")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """One epoch of POLO-ATN on the 128x128 data, scored as the reference scores: its last.ckpt."""
    root = tmp_path_factory.mktemp("zoo_run")
    cfg = compose_config(
        root, *TINY_RUN_128, "model=polo_atn", "trainer.max_epochs=1", "score=final", "data.train_size=200"
    )
    train(cfg)
    GlobalHydra.instance().clear()
    return root / "run" / "checkpoints" / "last.ckpt"


def test_a_shipped_run_keeps_only_its_weights_and_its_entry_says_what_it_measures(tiny_run, tmp_path):
    zoo = tmp_path / "zoo"
    entry = add("tiny", tiny_run, "python -m stn_fovea.train ...", "here", 1, True, zoo, tmp_path / "eval")
    shipped = torch.load(zoo / "tiny.ckpt", weights_only=False)
    assert set(shipped) == {"stn_fovea", "state_dict", "epoch", "global_step", "weights"}
    assert shipped["weights"] == entry["weights"] == "final" and entry["epochs"] == 1
    original = read_checkpoint(tiny_run)["state_dict"]
    for key, value in shipped["state_dict"].items():
        large = value.is_floating_point() and value.numel() > HALF_ABOVE
        assert value.dtype == (torch.float16 if large else original[key].dtype), key
    assert any(v.dtype == torch.float16 for v in shipped["state_dict"].values())  # the LeNet's fc1
    module = load_module(read_checkpoint(zoo / "tiny.ckpt"))  # float16 loads into the float32 model
    for key, value in module.state_dict().items():
        if key in original:
            large = original[key].is_floating_point() and original[key].numel() > HALF_ABOVE
            expected = original[key].half() if large else original[key]
            torch.testing.assert_close(value, expected.to(value.dtype), rtol=0, atol=0)
    evaluated = json.loads((tmp_path / "eval" / "tiny" / "metrics.json").read_text())
    means = evaluated["grid"]["mean_over_eccentricities"]
    assert entry["grid"] == {float(c): round(m, 4) for c, m in means.items()}
    assert (entry["seed"], entry["data_seed"], entry["noise"]) == (1234, 0, 0.75)
    if code_commit():  # a git checkout (CI's is): the entry names the code that trained it
        assert entry["commit"] == code_commit()
    assert read_manifest(zoo) == [entry] and verify(zoo) == []
    with (zoo / "tiny.ckpt").open("ab") as handle:
        handle.write(b"\0")
    assert verify(zoo) == [f"tiny: {zoo / 'tiny.ckpt'} does not match its sha256"]


def test_a_run_own_evaluation_of_the_shipped_weights_serves_and_another_is_refused(
    tiny_run, tmp_path, monkeypatch
):
    run_eval = tiny_run.parents[1] / "eval" / "metrics.json"  # the run measured its last.ckpt (score=final)
    entry = add("tiny", tiny_run, "...", "here", 1, zoo=tmp_path, measured_by=run_eval)
    means = json.loads(run_eval.read_text())["grid"]["mean_over_eccentricities"]
    assert entry["grid"] == {float(c): round(m, 4) for c, m in means.items()}
    shipped = (tmp_path / "tiny.ckpt").read_bytes()
    with pytest.raises(ZooError, match="evaluate it again"):  # float16 weights are not those measured
        add("tiny", tiny_run, "...", "here", 1, half=True, zoo=tmp_path, measured_by=run_eval)
    best = next(tiny_run.parent.glob("best-*.ckpt"))
    with pytest.raises(ZooError, match="evaluate it again"):
        add("tiny", best, "...", "here", 1, zoo=tmp_path, measured_by=run_eval)

    def crash(*_args, **_kwargs):
        raise RuntimeError("the evaluation died")

    monkeypatch.setattr("stn_fovea.zoo.evaluate_file", crash)
    with pytest.raises(RuntimeError, match="died"):  # shipped again, half: it must be evaluated, and fails
        add("tiny", tiny_run, "...", "here", 1, half=True, zoo=tmp_path)
    # neither a refusal nor a failed evaluation leaves other bytes under the manifest's hash
    assert (tmp_path / "tiny.ckpt").read_bytes() == shipped and verify(tmp_path) == []
    left = sorted(path.name for path in tmp_path.iterdir())
    assert left == [".manifest.lock", "manifest.yaml", "tiny.ckpt"]


def test_a_run_stopped_before_its_schedule_ended_is_not_shipped_as_final(tiny_run, tmp_path):
    checkpoint = torch.load(tiny_run, map_location="cpu", weights_only=False)
    checkpoint["stn_fovea"]["config"]["trainer"]["max_epochs"] = 3  # 1 of 3 epochs done: interrupted
    stopped = tmp_path / "run" / "checkpoints" / "last.ckpt"
    stopped.parent.mkdir(parents=True)
    torch.save(checkpoint, stopped)
    with pytest.raises(ZooError, match="trained 1 of its schedule's 3 epochs"):
        add("tiny", stopped, "...", "here", 1, zoo=tmp_path / "zoo")
    assert not (tmp_path / "zoo").exists()


def test_verify_checks_the_shift_map_that_what_where_training_reads(tmp_path):
    (tmp_path / "what.ckpt").write_bytes(b"weights")
    (tmp_path / "what_map.npy").write_bytes(b"map")
    entry = {"name": "what", "file": "what.ckpt", "sha256": sha256(tmp_path / "what.ckpt")}
    write_manifest([{**entry, "shift_map": "what_map.npy"}], tmp_path)
    assert verify(tmp_path) == [f"what: no shift_map_sha256 for {tmp_path / 'what_map.npy'}"]
    hashed = {**entry, "shift_map": "what_map.npy", "shift_map_sha256": sha256(tmp_path / "what_map.npy")}
    write_manifest([hashed], tmp_path)
    assert verify(tmp_path) == []
    (tmp_path / "what_map.npy").write_bytes(b"another map")
    assert verify(tmp_path) == [f"what: {tmp_path / 'what_map.npy'} does not match its shift_map_sha256"]


def test_the_zoo_command_says_what_was_wrong_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["--zoo", str(tmp_path), "add", "x", str(tmp_path / "missing.ckpt"), "--command", "..."])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"stn_fovea: error: no checkpoint at {tmp_path / 'missing.ckpt'}: give <run>/checkpoints/last.ckpt"
    )
    (tmp_path / "manifest.yaml").write_text("models:\n<<<<<<< HEAD\n- name: a\n")
    with pytest.raises(SystemExit):
        main(["--zoo", str(tmp_path), "verify"])
    assert "is not valid YAML (a merge left conflict markers?)" in capsys.readouterr().err
    (tmp_path / "manifest.yaml").write_text("models:\n- name: a\n")
    assert main(["--zoo", str(tmp_path), "verify"]) == 1
    assert "an entry lacks its name, file or sha256" in capsys.readouterr().out


def test_the_repository_ships_a_zoo():
    assert SHIPPED, "zoo/manifest.yaml lists no model"
    assert sum((ROOT / "zoo" / e["file"]).stat().st_size for e in SHIPPED) < 150e6


@pytest.mark.parametrize("entry", SHIPPED, ids=[e["name"] for e in SHIPPED])
def test_every_shipped_model_matches_its_hash_and_measures_its_recorded_mean(entry, tmp_path):
    """On a small seeded grid (300 digits per cell; What/Where after each number of saccades the
    manifest records) or 2,000 test digits, the mean the manifest recorded on the full protocol lies
    within the 95 % Wilson interval of the small measurement. The grid's cells
    read the same 300 digits, so its mean over the radii is a mean of 300 per-digit means in [0, 1]:
    the interval counts 300 trials, not 300 x 9 (with 2,700 it was too narrow: POLO-ATN at c=0.3)."""
    assert not [problem for problem in verify(ROOT / "zoo") if problem.startswith(f"{entry['name']}:")]
    overrides = [f"ckpt_path={ROOT / 'zoo' / entry['file']}", "evaluators.glimpses=null"]
    saccades = "grid" in entry and isinstance(next(iter(entry["grid"])), int)  # What/Where: per count
    if "grid" in entry:
        overrides += ["evaluators.protocols=null", "evaluators.eccentricity_grid.digits_per_cell=300"]
        if saccades:  # every count the manifest records, 0 to 5
            overrides.append(f"evaluators.eccentricity_grid.saccades=[{','.join(map(str, entry['grid']))}]")
    else:
        overrides += ["evaluators.shift_map=null", "test_size=2000"]
    metrics = evaluate(compose_config(tmp_path, *overrides, config_name="evaluate"))
    if "grid" in entry:
        grids = metrics["grid"]["saccades"] if saccades else {"": metrics["grid"]}
        recorded = entry["grid"] if saccades else {"": entry["grid"]}
        measured = {
            (count, float(c)): m
            for count, grid in grids.items()
            for c, m in grid["mean_over_eccentricities"].items()
        }
        recorded = {
            (str(count), c): m for count, by_contrast in recorded.items() for c, m in by_contrast.items()
        }
        trials = 300  # digits, each read at every radius
    else:
        recorded, measured, trials = entry["protocols"], metrics["accuracy"], 2000
    assert set(recorded) <= set(measured)
    for key, mean in recorded.items():
        low, high = wilson(measured[key] * trials, trials)
        assert low <= mean <= high, (key, measured[key], mean)


def test_reproduce_writes_the_study_benchmark_and_nothing_else_into_the_docs(tiny_run, tmp_path, capsys):
    """`make reproduce` evaluates every entry, two at a time, checks each against its manifest entry
    and draws docs/study_benchmark.*; compare's other tables (protocols.md, runs.csv) stay out of the
    docs site, whose nav lists every page (tests/test_docs.py). An entry whose file fails to evaluate,
    or whose numbers are not those recorded, makes the status 1 without stopping the others, and leaves
    the docs as they were (the benchmark of the others goes beside the evaluations)."""
    zoo, docs = tmp_path / "zoo", tmp_path / "docs"
    docs.mkdir()
    run_eval = tiny_run.parents[1] / "eval" / "metrics.json"
    add("tiny", tiny_run, "...", "here", 1, zoo=zoo, measured_by=run_eval)
    assert reproduce(zoo, tmp_path / "out", docs, jobs=2) == 0
    assert sorted(path.name for path in docs.iterdir()) == [
        "study_benchmark.csv",
        "study_benchmark.md",
        "study_benchmark.png",
    ]
    assert (tmp_path / "out" / "tiny" / "metrics.json").is_file()
    assert "polo_atn" in (docs / "study_benchmark.md").read_text()
    assert "tiny: its grid reproduced (largest difference 0.0000)" in capsys.readouterr().out

    entries = read_manifest(zoo)
    off = {**entries[0], "name": "tiny_off", "grid": {c: m + 0.05 for c, m in entries[0]["grid"].items()}}
    broken = {**off, "name": "broken", "file": "missing.ckpt"}
    write_manifest([*entries, off, broken, {"name": "no_file"}], zoo)
    shutil.copytree(tmp_path / "out" / "tiny", tmp_path / "out" / "broken")  # an earlier evaluation's
    for path in docs.iterdir():  # the committed benchmark, told apart from any a run would write
        path.write_text(f"committed {path.name}")
    before = {path.name: path.read_bytes() for path in docs.iterdir()}
    assert reproduce(zoo, tmp_path / "out", docs, jobs=2) == 1
    # the docs keep the whole benchmark; the partial one (without the failed entries) is beside the runs
    assert {path.name: path.read_bytes() for path in docs.iterdir()} == before
    captured = capsys.readouterr()
    printed = captured.out
    assert f"3 entries failed or differ: {docs} is left as it was" in captured.err
    assert "tiny: its grid reproduced" in printed and "DIFFERS tiny_off: grid" in printed
    assert "FAILED broken" in printed and "missing.ckpt" in (tmp_path / "out" / "broken.log").read_text()
    assert "FAILED no_file: KeyError('file')" in printed
    assert not (tmp_path / "out" / "broken" / "metrics.json").exists()  # not in the benchmark
    benchmark = (tmp_path / "out_tables" / "study_benchmark.csv").read_text()
    assert "out/tiny" in benchmark and "out/broken" not in benchmark

    # after a change of the evaluation, --record writes what each entry measured, and only when every
    # entry was measured: a manifest never mixes two protocols
    manifest = (zoo / "manifest.yaml").read_text()
    assert reproduce(zoo, tmp_path / "out", docs, jobs=2, record=True) == 1  # broken still fails
    assert (zoo / "manifest.yaml").read_text() == manifest
    assert "2 entries failed: nothing was recorded" in capsys.readouterr().err
    write_manifest([*entries, off], zoo)
    assert reproduce(zoo, tmp_path / "out", docs, jobs=2, record=True) == 0
    recorded = {entry["name"]: entry for entry in read_manifest(zoo)}
    assert recorded["tiny_off"]["grid"] == recorded["tiny"]["grid"] == entries[0]["grid"]
    assert "MEASURED tiny_off" in capsys.readouterr().out
    with pytest.raises(ZooError, match="record without overrides"):
        reproduce(zoo, tmp_path / "out", docs, overrides=["evaluators.grid.digits_per_cell=10"], record=True)


def test_record_leaves_an_entry_whose_file_was_replaced_during_its_evaluation(tmp_path):
    """An entry shipped again (a new file, a new sha256) while reproduce --record evaluated the old
    file keeps the numbers its own shipping measured; the entry that was evaluated takes its own."""
    evaluation = tmp_path / "out" / "a"
    evaluation.mkdir(parents=True)
    grid = {"mean_over_eccentricities": {"0.7": 0.5}, "digits_per_cell": 10}
    (evaluation / "metrics.json").write_text(json.dumps({"grid": grid}))
    old, same = {"name": "a", "sha256": "old", "grid": {0.7: 0.1}}, {"name": "b", "sha256": "b"}
    write_manifest([{**old, "sha256": "new"}, {**same, "grid": {0.7: 0.2}}], tmp_path)
    record_measured(tmp_path, [(old, evaluation), (same, evaluation)])
    kept, recorded = read_manifest(tmp_path)
    assert kept["grid"] == {0.7: 0.1} and kept["sha256"] == "new"
    assert recorded["grid"] == {0.7: 0.5} and recorded["digits_per_cell"] == 10


def test_the_code_commit_names_a_changed_or_added_file_and_only_its_own_checkout(tmp_path):
    assert code_commit(tmp_path) is None  # not a git checkout
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    (tmp_path / "stn_fovea").mkdir()
    (tmp_path / "stn_fovea" / "model.py").write_text("width = 1\n")
    for command in (["init", "-q"], ["add", "."], ["commit", "-qm", "one"]):
        subprocess.run([*git, *command], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    (tmp_path / "notes.txt").write_text("not code")  # untracked, outside the code: still that commit
    assert code_commit(tmp_path) == head
    assert code_commit(tmp_path / "stn_fovea") is None  # inside a checkout that is not its own
    (tmp_path / "stn_fovea" / "model.py").write_text("width = 2\n")
    assert code_commit(tmp_path) == f"{head}+uncommitted"
    subprocess.run([*git, "checkout", "-q", "--", "."], check=True)
    (tmp_path / "stn_fovea" / "new_model.py").write_text("depth = 1\n")  # a new file the run may use
    assert code_commit(tmp_path) == f"{head}+uncommitted"


def table_rows(markdown: str, first_header_cell: str) -> list[dict[str, str]]:
    """The rows of the markdown table whose header starts with ``| first_header_cell |``, each a dict
    from the header's cells to the row's."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header_cell} |"))
    header = [cell.strip() for cell in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")), strict=True)))
    return rows


# the README's anchors rows (by how their name starts) and the benchmark's rows they restate; the
# published row under each is the "(reference)" row under the benchmark's (our peripheral ATN has none:
# the study published no number for it, and the README sets it under ATN's rows)
README_ANCHORS = {
    "ATN, `atn_reference`": "atn_reference (final): atn",
    "peripheral ATN, `atn_reference`": "atn_reference (final): peripheral_atn",
    "POLO-ATN, `polo_atn_reference`": "polo_atn_reference (final)",
    "What/Where, 0 saccades": "what_where (final) (0 sacc.)",
    "What/Where, 1 saccade": "what_where (final) (1 sacc.)",
    "What/Where, 5 saccades": "what_where (final) (5 sacc.)",
}


def test_the_readme_anchors_table_restates_the_study_benchmark():
    """Every row of the README's anchors table, ours (± its interval) and the published one under it,
    is the benchmark's row in docs/study_benchmark.md, which `make reproduce` writes, contrast by
    contrast: a benchmark regenerated without the README following, or a row pasted under the wrong
    name, fails here."""
    readme = table_rows((ROOT / "README.md").read_text(), "model (final weights)")
    benchmark = table_rows((ROOT / "docs" / "study_benchmark.md").read_text(), "model")
    labels = [row["model"] for row in benchmark]
    columns = ["c=0.7", "c=0.5", "c=0.3", "seeds"]
    checked = 0
    for at, row in enumerate(readme):
        name = row["model (final weights)"]
        ours = [label for start, label in README_ANCHORS.items() if name.startswith(start)]
        if not ours or name.endswith("published"):
            continue
        ours_row, under = benchmark[labels.index(ours[0])], benchmark[labels.index(ours[0]) + 1 :][:1]
        pairs = [(row, ours_row)]
        if under and under[0]["model"] == "(reference)":
            assert readme[at + 1]["model (final weights)"].endswith("published"), row
            pairs.append((readme[at + 1], under[0]))
        else:  # no published number: the README must not show one under it
            following = [r["model (final weights)"] for r in readme[at + 1 : at + 2]]
            assert not any(label.endswith("published") for label in following), row
        for readme_row, benchmark_row in pairs:
            assert [readme_row[c] for c in columns] == [benchmark_row[c] for c in columns], readme_row
        checked += 1
    assert checked == len(README_ANCHORS)


def test_the_manifest_lock_keeps_a_second_shipper_waiting(tmp_path):
    """Two queues shipping at once read and write the manifest one after the other (each adds its
    entry to what the other wrote)."""
    order: list[str] = []

    def second() -> None:
        with manifest_lock(tmp_path):
            order.append("second")

    with manifest_lock(tmp_path):
        waiting = threading.Thread(target=second)
        waiting.start()
        waiting.join(timeout=0.5)
        assert waiting.is_alive() and order == []  # it waits for the lock
        order.append("first")
    waiting.join(timeout=10)
    assert order == ["first", "second"]


def test_a_shipper_adds_its_entry_to_what_the_other_wrote_while_it_waited(tiny_run, tmp_path):
    """add reads the manifest under the lock, not before it: an entry written by another queue while
    this one waited is kept."""
    run_eval = tiny_run.parents[1] / "eval" / "metrics.json"
    shipping = threading.Thread(
        target=add,
        args=("mine", tiny_run, "...", "here", 1),
        kwargs={"zoo": tmp_path, "measured_by": run_eval},
    )
    with manifest_lock(tmp_path):
        shipping.start()
        shipping.join(timeout=3)
        assert shipping.is_alive()  # waiting for the lock
        write_manifest([{"name": "theirs", "file": "theirs.ckpt", "sha256": "0"}], tmp_path)
    shipping.join(timeout=60)
    assert [entry["name"] for entry in read_manifest(tmp_path)] == ["theirs", "mine"]
