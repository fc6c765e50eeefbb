"""The model zoo: trained nets shipped in the repository (``zoo/``), as the reference repositories ship
theirs, each with how it was made and what it measures (``zoo/manifest.yaml``).

    python -m stn_fovea.zoo add NAME <run>/checkpoints/last.ckpt --command "python -m stn_fovea.train ..."
    python -m stn_fovea.zoo verify      # every file there, with its hash
    python -m stn_fovea.zoo reproduce   # evaluate every entry, then the study's benchmark (make reproduce)

A zoo file is a checkpoint with the weights only (no optimiser state): ``python -m stn_fovea.evaluate
ckpt_path=zoo/<file>`` reads it like any checkpoint. The manifest's ``grid`` is what that evaluation
measured on the file (the mean over the 9 eccentricities per contrast; per number of saccades for
What/Where); the evaluation is seeded, so ``reproduce`` gives the same numbers again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import torch
import yaml

from stn_fovea.callbacks.run_config import CHECKPOINT_KEY, UNRECORDED
from stn_fovea.checkpoint import read_checkpoint, run_config
from stn_fovea.checkpoint_names import FINAL, picked_on, weights_of
from stn_fovea.errors import UserError, user_errors_exit
from stn_fovea.locks import file_lock
from stn_fovea.run_setup import recorded_epochs

ZOO = Path("zoo")
MANIFEST = "manifest.yaml"
KEPT = (CHECKPOINT_KEY, "state_dict", "epoch", "global_step")  # what a zoo file keeps of a checkpoint
# float16 storage for tensors this large (What/Where's Where net: 4.1 M parameters, 16.5 MB in float32),
# so that every seed fits; the manifest's numbers are measured on the stored weights
HALF_ABOVE = 100_000
# an evaluation is seeded: on another machine or thread count, a few digits of 9,000 may still flip
REPRODUCED_WITHIN = 0.002


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_only(checkpoint: Mapping[str, Any], weights: str, half: bool = False) -> dict[str, Any]:
    """The parts of a checkpoint that rebuild and load its model, marked with which weights they are
    ("final", "best val" or "best on test digits"); ``half`` stores floating tensors of more than
    ``HALF_ABOVE`` elements in float16 (loading casts them back to the model's float32)."""
    kept = {key: checkpoint[key] for key in KEPT if key in checkpoint}
    if half:
        kept["state_dict"] = {
            key: value.half() if value.is_floating_point() and value.numel() > HALF_ABOVE else value
            for key, value in checkpoint["state_dict"].items()
        }
    return {**kept, "weights": weights}


class ZooError(UserError):
    """A zoo command's input is wrong: a checkpoint, the manifest, a folder."""


def read_manifest(zoo: Path = ZOO) -> list[dict[str, Any]]:
    path = zoo / MANIFEST
    if not path.is_file():
        return []
    try:
        content = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ZooError(f"{path} is not valid YAML (a merge left conflict markers?): {error}") from error
    if not isinstance(content, Mapping) or not isinstance(content.get("models") or [], list):
        raise ZooError(f"{path} must hold a list under 'models:'")
    return list(content.get("models") or [])


def write_manifest(entries: Sequence[Mapping[str, Any]], zoo: Path = ZOO) -> None:
    """Write the manifest whole (a temporary file renamed): a reader never sees half of it."""
    header = "# The shipped nets: python -m stn_fovea.zoo verify | reproduce (stn_fovea/zoo.py)\n"
    body = yaml.safe_dump({"models": [dict(e) for e in entries]}, sort_keys=False, width=110)
    partial = zoo / f"{MANIFEST}.{os.getpid()}.tmp"
    partial.write_text(header + body)
    partial.replace(zoo / MANIFEST)


def manifest_lock(zoo: Path) -> AbstractContextManager[None]:
    """Held while the manifest is read and written again, so that two shipping processes lose no entry."""
    return file_lock(zoo / ".manifest.lock")


def measured(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """What an evaluation's metrics.json says of a model in a few numbers: ``grid``, the mean over the
    eccentricities per contrast (per number of saccades for a model that saccades), with the digits
    per cell; for a 28x28 model, its protocols' accuracies."""
    grid = metrics.get("grid")
    if grid is None:
        return {"protocols": {name: round(float(v), 4) for name, v in metrics.get("accuracy", {}).items()}}

    def means(one: Mapping[str, Any]) -> dict[float, float]:
        return {float(c): round(float(m), 4) for c, m in one["mean_over_eccentricities"].items()}

    if "saccades" in grid:
        per_count = grid["saccades"]
        digits = next(iter(per_count.values()))["digits_per_cell"]
        return {"grid": {int(k): means(g) for k, g in per_count.items()}, "digits_per_cell": digits}
    return {"grid": means(grid), "digits_per_cell": grid["digits_per_cell"]}


def evaluate_file(
    path: Path, out: Path, overrides: Sequence[str] = (), log: Path | None = None, threads: int | None = None
) -> dict[str, Any]:
    """``python -m stn_fovea.evaluate ckpt_path=<path>`` into ``out``; its metrics.json. ``log``: where
    its output goes (None = this terminal); ``threads``: its OMP_NUM_THREADS (None = as inherited)."""
    command = [sys.executable, "-m", "stn_fovea.evaluate", f"ckpt_path={path}", f"hydra.run.dir={out}"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)} if threads else None
    if log is None:
        subprocess.run([*command, *overrides], check=True, env=env)
    else:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("w") as handle:
            subprocess.run(
                [*command, *overrides], check=True, env=env, stdout=handle, stderr=subprocess.STDOUT
            )
    return json.loads((out / "metrics.json").read_text())


def training_commits(checkpoint: Mapping[str, Any]) -> str:
    """The commits that trained a checkpoint, in order (a run resumed on newer code lists each), as
    its training recorded them ("unrecorded" for attempts from before runs recorded them)."""
    commits = checkpoint.get(CHECKPOINT_KEY, {}).get("commits") or [UNRECORDED]
    return ", ".join(commits)


def add(
    name: str,
    checkpoint_path: Path,
    command: str,
    machine: str,
    threads: int,
    half: bool = False,
    zoo: Path = ZOO,
    evaluations: Path | None = None,
    commit: str | None = None,
    measured_by: Path | None = None,
) -> dict[str, Any]:
    """Ship a checkpoint as ``zoo/<name>.ckpt`` (weights only), evaluate the shipped file and enter it in
    the manifest (replacing an entry of the same name). ``commit``: the code that trained it (None =
    the commits its training recorded in the checkpoint). ``evaluations``: where the shipped file's
    evaluation goes (None = outputs/zoo/<name> beside the zoo folder). ``measured_by``: the
    metrics.json of an evaluation of this very checkpoint (the run's own, ``<run>/eval/metrics.json``)
    to take instead of evaluating again; only for weights shipped as they are (not ``half``)."""
    checkpoint = read_checkpoint(checkpoint_path)
    run = run_config(checkpoint)
    weights = picked_on(weights_of(str(checkpoint_path), checkpoint.get("weights")), run.data.get("val_size"))
    if weights is None:
        raise ZooError(f"{checkpoint_path}: neither last.ckpt nor a best-*.ckpt; which weights is it?")
    metrics = None if measured_by is None else json.loads(measured_by.read_text())
    if metrics is not None and (
        half or Path(str(metrics.get("checkpoint"))).resolve() != checkpoint_path.resolve()
    ):
        raise ZooError(f"{measured_by} did not measure {checkpoint_path} as shipped: evaluate it again")
    epochs, schedule = int(checkpoint.get("epoch", -1)) + 1, recorded_epochs(run)
    if weights == FINAL and schedule is not None and epochs < schedule:
        raise ZooError(
            f"{checkpoint_path} has trained {epochs} of its schedule's {schedule} epochs, so its weights are"
            " not the final model's: run its training command again with ckpt_path= to finish it, then ship"
        )
    zoo.mkdir(parents=True, exist_ok=True)
    shipped = zoo / f"{name}.ckpt"
    run_metrics = checkpoint_path.parent.parent / "eval" / "metrics.json"
    trained = json.loads(run_metrics.read_text()) if run_metrics.is_file() else {}
    entry: dict[str, Any] = {
        "name": name,
        "file": shipped.name,
        "sha256": None,  # once the file is written
        "weights": weights,
        "stored": "float16 above 100,000 elements" if half else "float32",
        "command": command,
        "commit": commit or training_commits(checkpoint),
        "seed": int(run.seed),
        "data_seed": int(run.data.seed),
        "noise": float(run.data.get("noise", 0.0)),
        "epochs": epochs,  # those the shipped weights trained for
        "schedule_epochs": schedule,
        "machine": machine,
        "threads": threads,
        "train_minutes": round(trained["train_seconds"] / 60, 1) if "train_seconds" in trained else None,
    }
    previous = zoo / f".{name}.ckpt.previous"  # an entry shipped again: its file until this one is in
    if shipped.is_file():
        shipped.replace(previous)
    try:
        torch.save(weights_only(checkpoint, weights, half), shipped)
        entry["sha256"] = sha256(shipped)
        out = (evaluations or zoo.parent / "outputs" / "zoo") / name
        entry.update(measured(evaluate_file(shipped, out) if metrics is None else metrics))
        with manifest_lock(zoo):  # two queues may ship at once: neither entry is lost
            entries = [e for e in read_manifest(zoo) if e["name"] != name] + [entry]
            write_manifest(entries, zoo)
    except BaseException:  # the manifest still names the old file: put its bytes back
        shipped.unlink(missing_ok=True)
        if previous.is_file():
            previous.replace(shipped)
        raise
    previous.unlink(missing_ok=True)
    return entry


def verify(zoo: Path = ZOO) -> list[str]:
    """Problems with the shipped files (each entry's and its shift map): missing, or not the bytes the
    manifest hashed."""
    problems = []
    for entry in read_manifest(zoo):
        if not isinstance(entry, Mapping) or not {"name", "file", "sha256"} <= set(entry):
            problems.append(f"an entry lacks its name, file or sha256: {entry}")
            continue
        problems += file_problems(str(entry["name"]), zoo / entry["file"], entry["sha256"], "sha256")
        if entry.get("shift_map"):  # the What's accuracy map that What/Where's training reads
            shift_map = zoo / entry["shift_map"]
            problems += file_problems(
                str(entry["name"]), shift_map, entry.get("shift_map_sha256"), "shift_map_sha256"
            )
    return problems


def file_problems(name: str, path: Path, recorded: str | None, key: str) -> list[str]:
    """What is wrong with one shipped file: missing, unhashed, or not the bytes hashed under ``key``."""
    if not path.is_file():
        return [f"{name}: {path} is missing"]
    if recorded is None:
        return [f"{name}: no {key} for {path}"]
    return [] if sha256(path) == recorded else [f"{name}: {path} does not match its {key}"]


def evaluation_size(entry: Mapping[str, Any]) -> tuple[bool, int]:
    """How long an entry's evaluation runs, roughly, to start the longest first: a 28x28 net (no grid;
    its 55x55 shift map reads the test digits 3,025 times: minutes), then digits per cell times the
    contrasts (and saccade counts) of the grid."""
    grid = entry.get("grid") or {}
    per_count = list(grid.values()) if grid and isinstance(next(iter(grid.values())), dict) else [grid]
    return not grid, int(entry.get("digits_per_cell") or 0) * sum(len(counts) for counts in per_count)


def largest_difference(recorded: Any, found: Any) -> float:
    """The largest absolute difference between two of :func:`measured`'s nested number maps (inf when
    they hold different keys)."""
    if isinstance(recorded, Mapping) and isinstance(found, Mapping):
        if set(recorded) != set(found):
            return math.inf
        return max((largest_difference(recorded[k], found[k]) for k in recorded), default=0.0)
    return abs(float(recorded) - float(found))


def evaluate_entry(
    entry: Mapping[str, Any],
    zoo: Path,
    out: Path,
    overrides: Sequence[str],
    threads: int,
    record: bool = False,
) -> tuple[str, Path | None]:
    """Evaluate one entry into ``out/<name>`` (its output in ``out/<name>.log``) and say whether it
    measured what its manifest records (``record``: what it measured is to replace that); with the
    evaluation's folder, None when it failed. A failure, whatever it is, is reported, not raised: it
    stops only this entry."""
    name = str(entry.get("name"))
    started = time.monotonic()
    shutil.rmtree(out / name, ignore_errors=True)  # an earlier evaluation never stands in for this one
    try:
        metrics = evaluate_file(zoo / entry["file"], out / name, overrides, out / f"{name}.log", threads)
        found = measured(metrics)
        key = "grid" if "grid" in found else "protocols"
        difference = largest_difference(entry.get(key, {}), found[key])
    except Exception as error:  # noqa: BLE001
        return f"FAILED {name}: {error!r} (its output: {out / f'{name}.log'})", None
    took = f"[{(time.monotonic() - started) / 60:.1f} min]"
    if overrides:  # another protocol than the entry's: nothing to check it against
        return f"{name}: measured with {' '.join(overrides)} {took}", out / name
    if record:
        return f"MEASURED {name}: {key} {found[key]}, recorded {entry.get(key)} {took}", out / name
    if not difference <= REPRODUCED_WITHIN:  # NaN too
        return (
            f"DIFFERS {name}: {key} {found[key]} against the manifest's {entry.get(key)} {took}",
            out / name,
        )
    return f"{name}: its {key} reproduced (largest difference {difference:.4f}) {took}", out / name


def reproduce(
    zoo: Path,
    out: Path,
    docs: Path,
    overrides: Sequence[str] = (),
    jobs: int | None = None,
    record: bool = False,
) -> int:
    """Evaluate every entry (:func:`evaluate_entry`), ``jobs`` at a time with the cores shared among
    them (None = one per core, one thread each), longest first, and compare the evaluations that
    succeeded: docs/study_benchmark.{csv,md,png} (compare's other tables go to ``<out>_tables/``).
    ``overrides`` go to every evaluation. The status is 1 when an entry failed or measured other
    numbers than its manifest records (beyond ``REPRODUCED_WITHIN``). ``record``: after a change of the
    evaluation code, what each entry measures replaces what its manifest recorded."""
    from stn_fovea.compare import main as compare

    if record and overrides:
        raise ZooError("the manifest records each entry's own protocol: record without overrides")

    entries = sorted(read_manifest(zoo), key=evaluation_size, reverse=True)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    jobs = max(1, min(jobs or cores, len(entries) or 1))
    started = time.monotonic()
    with ThreadPoolExecutor(jobs) as pool:
        threads = max(1, cores // jobs)
        results = list(pool.map(lambda e: evaluate_entry(e, zoo, out, overrides, threads, record), entries))
    minutes = (time.monotonic() - started) / 60
    print(*(report for report, _ in results), sep="\n")
    failed = [report for report, _ in results if report.startswith(("FAILED", "DIFFERS"))]
    if record and failed:  # one protocol per manifest: a failed entry would keep the old one's numbers
        print(f"{len(failed)} entries failed: nothing was recorded, the manifest is left as it was",
              file=sys.stderr)  # fmt: skip
    elif record:
        record_measured(zoo, [(entry, path) for entry, (_, path) in zip(entries, results, strict=True)])
        print(f"recorded into {zoo / MANIFEST}: what the {len(entries)} entries measured")
    print(f"{len(entries)} zoo entries evaluated in {minutes:.1f} min, {jobs} at a time on {cores} cores")
    evaluated = [str(path) for _, path in results if path is not None]
    if not evaluated:
        print("no entry was evaluated: the benchmark is left as it was", file=sys.stderr)
        return 1
    tables = out.parent / f"{out.name}_tables"  # compare's other tables stay out of the docs site
    shutil.rmtree(tables, ignore_errors=True)  # an earlier benchmark never stands in for this one
    status = compare([*evaluated, "--out", str(tables), "--name", "study_benchmark"])
    if status or failed:  # the docs keep the whole benchmark; this partial one is for a look
        print(f"{len(failed)} entries failed or differ: {docs} is left as it was; the benchmark of the "
              f"others is in {tables}", file=sys.stderr)  # fmt: skip
        return 1
    for suffix in (".csv", ".md", ".png"):
        shutil.copyfile(tables / f"study_benchmark{suffix}", docs / f"study_benchmark{suffix}")
    return 0


def record_measured(zoo: Path, evaluations: Sequence[tuple[dict[str, Any], Path]]) -> None:
    """Write what each evaluation ``<out>/<name>`` of an entry measured into that entry of the
    manifest, unless the entry's file was replaced (another sha256) while it was being evaluated."""
    found = {
        (entry.get("name"), entry.get("sha256")): measured(json.loads((path / "metrics.json").read_text()))
        for entry, path in evaluations
    }
    with manifest_lock(zoo):
        entries = read_manifest(zoo)
        for entry in entries:
            entry.update(found.get((entry.get("name"), entry.get("sha256")), {}))
        write_manifest(entries, zoo)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stn_fovea.zoo", description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", type=Path, default=ZOO)
    commands = parser.add_subparsers(dest="action", required=True)
    adding = commands.add_parser("add", help="ship a run's checkpoint and enter it in the manifest")
    adding.add_argument("name")
    adding.add_argument("checkpoint", type=Path, help="<run>/checkpoints/last.ckpt (or a best-*.ckpt)")
    adding.add_argument("--command", required=True, help="the command that trained it")
    adding.add_argument("--machine", default="the project's CPU machine: 2 cores, 24 GiB, no GPU")
    adding.add_argument("--threads", type=int, default=1)
    adding.add_argument("--half", action="store_true", help="float16 storage of the large tensors")
    adding.add_argument(
        "--commit", help="the commit that trained it (default: the commits the checkpoint recorded)"
    )
    adding.add_argument(
        "--measured-by", type=Path, help="metrics.json of an evaluation of this checkpoint (not with --half)"
    )
    commands.add_parser("verify", help="check every shipped file against its hash")
    again = commands.add_parser("reproduce", help="evaluate every entry, then the study's benchmark")
    again.add_argument("--out", type=Path, default=Path("outputs/reproduce"))
    again.add_argument("--docs", type=Path, default=Path("docs"))
    again.add_argument("--jobs", type=int, help="evaluations at a time (default: one per core)")
    again.add_argument(
        "--record",
        action="store_true",
        help="after a change of the evaluation: write what each entry measures",
    )
    args = parser.parse_args(argv)
    with user_errors_exit():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    if args.action == "add":
        if not args.checkpoint.is_file():
            raise ZooError(f"no checkpoint at {args.checkpoint}: give <run>/checkpoints/last.ckpt")
        if args.measured_by is not None and not args.measured_by.is_file():
            raise ZooError(f"no metrics.json at {args.measured_by}")
        entry = add(
            args.name, args.checkpoint, args.command, args.machine, args.threads, args.half, args.zoo,
            commit=args.commit, measured_by=args.measured_by,
        )  # fmt: skip
        print(yaml.safe_dump(entry, sort_keys=False))
        return 0
    if args.action == "verify":
        problems = verify(args.zoo)
        print("\n".join(problems) or f"{len(read_manifest(args.zoo))} zoo files match their hashes")
        return 1 if problems else 0
    if not args.docs.is_dir():
        raise ZooError(f"--docs {args.docs} is not a folder: give the docs site's folder (default docs)")
    return reproduce(args.zoo, args.out, args.docs, jobs=args.jobs, record=args.record)


if __name__ == "__main__":
    sys.exit(main())
