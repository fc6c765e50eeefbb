"""Every command the README and the docs pages show runs as a user types it, with tiny sizes added.

The commands are read from README.md and docs/**/*.md themselves, so a command added there is tested
here. Placeholders
(``outputs/…/checkpoints/...``, ``<best checkpoint>``) become checkpoints of tiny runs made by the
fixtures. Commands that need a GPU or the optional launchers are skipped, visibly, where those are
missing.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from readme_commands import documented_commands, split_command

from conftest import CACHE, CONF, ROOT, SMALL_RETINA, TINY_EVALUATORS, TINY_TRAIN, data_root
from stn_fovea.bench import run as run_bench
from stn_fovea.checkpoint import read_checkpoint, run_config
from stn_fovea.compare import main as run_compare
from stn_fovea.evaluate import evaluate
from stn_fovea.train import train
from stn_fovea.zoo import main as run_zoo

DOCUMENTS = (ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")))
COMMANDS = documented_commands(*DOCUMENTS)
TINY_BENCH = [
    "min_seconds=0.01",
    "generator_batch_sizes=[10]",
    "batch_size=4",
    "reference_pipeline=false",
    "device=cpu",
    "loop_overhead.train_size=200",
]


def needs(args: list[str]) -> str | None:
    """Why this command cannot run here, or None."""
    text = " ".join(args)
    if any(word in text for word in ("accelerator=gpu", "trainer=gpu", "device=cuda")) and not (
        torch.cuda.is_available()
    ):
        return "needs a CUDA GPU"
    for launcher in ("joblib", "submitit"):
        if f"hydra/launcher={launcher}" in text and not importlib.util.find_spec(
            f"hydra_plugins.hydra_{launcher}_launcher"
        ):
            return f"needs the {launcher} launcher (make install, or pip install -e '.[sweep]')"
    if "hydra/launcher=submitit_slurm" in text and not shutil.which("sbatch"):
        return "needs a SLURM cluster (sbatch)"
    if "hparams_search=" in text and not importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper"):
        return "needs the Optuna sweeper (make install, or pip install -e '.[hpo]')"
    return None


def sweep_lists(args: list[str]) -> dict[str, list[str]]:
    """The swept values of a `-m` command: {key: values} for every `key=a,b,...` outside brackets."""
    return {
        arg.split("=", 1)[0]: arg.split("=", 1)[1].split(",")
        for arg in args
        if "=" in arg and "," in arg.split("=", 1)[1] and not arg.split("=", 1)[1].startswith(("[", "{"))
    }


def trimmed_sweep(args: list[str]) -> tuple[list[str], list[list[str]]]:
    """The sweep run here and the jobs it leaves out (composed instead, so a bad combination still fails).

    Each list keeps its first two values, and a seed list its first value where another list sweeps
    too: every sweep still runs at least two jobs, through the command's own launcher.
    """
    lists = sweep_lists(args)
    kept = {key: values[: 1 if key == "seed" and len(lists) > 1 else 2] for key, values in lists.items()}
    run = [
        f"{a.split('=', 1)[0]}={','.join(kept[a.split('=', 1)[0]])}" if a.split("=", 1)[0] in kept else a
        for a in args
    ]
    fixed = [a for a in args if a != "-m" and a.split("=", 1)[0] not in lists]
    jobs = [
        [*fixed, *(f"{key}={value}" for key, value in zip(lists, combination, strict=True))]
        for combination in itertools.product(*lists.values())
        if any(value not in kept[key] for key, value in zip(lists, combination, strict=True))
    ]
    return run, jobs


def tiny_model(compose_train, args: list[str]) -> list[str]:
    """Tiny sizes for the command's model: What/Where (named, or brought by an experiment) with a
    12-filter retina instead of 2880."""
    composed = compose_train(*[a for a in args if a != "-m" and "," not in a]).model.get("_target_", "")
    return list(SMALL_RETINA) if "model=what_where" in args or "what_where" in str(composed) else []


def tiny_evaluators(compose_train, args: list[str]) -> list[str]:
    """Tiny settings for the evaluators that this command's run will have."""
    names = compose_train(*args).get("evaluators") or {}
    return [override for name in names for override in TINY_EVALUATORS.get(name, [])]


@pytest.fixture(scope="module")
def checkpoints(tiny_runs) -> dict[str, Path]:
    """The session's tiny runs of the 28x28 STN, the 128x128 peripheral ATN and the What."""
    return {name: tiny_runs(name) for name in ("28", "128", "what")}


def substitute(args: list[str], runs: dict[str, Path]) -> list[str]:
    """Placeholders -> real paths of the fixture runs (the 128 run for 128 commands)."""
    wants_128 = any("eccentricity_grid" in a or "atn" in a or a == "--out" for a in args)
    run = runs["128" if wants_128 else "28"]
    result = []
    for arg in args:
        if arg.startswith("model.what_ckpt="):
            arg = f"model.what_ckpt={next((runs['what'] / 'checkpoints').glob('best-*'))}"
        elif arg.startswith("ckpt_path=") and ("…" in arg or "<" in arg):
            name = (
                "last.ckpt" if arg.endswith("last.ckpt") else next((run / "checkpoints").glob("best-*")).name
            )
            arg = f"ckpt_path={run / 'checkpoints' / name}"
        elif "…" in arg or (arg.startswith("outputs/") and not Path(arg).exists()):
            arg = str(run)
        result.append(arg)
    return result


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_runs(command, compose_train, checkpoints, tmp_path, monkeypatch):
    entry, args = split_command(command)
    reason = needs(args)
    if reason:
        pytest.skip(reason)
    args = substitute(args, checkpoints)
    sweep = "-m" in args or any(a.startswith("hparams_search=") for a in args)
    if entry == "train" and (sweep or "trainer=ddp" in args):  # processes of their own: run the command
        args, left_out = trimmed_sweep(args) if "-m" in args else (args, [])
        for job in left_out:  # the jobs not run compose, with their own values
            compose_train(*job)
        extra = tiny_evaluators(compose_train, [a for a in args if a != "-m" and "," not in a])
        if any(a.startswith("hparams_search=") for a in args):
            extra += ["hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.n_startup_trials=2"]
        where = f"hydra.sweep.dir={tmp_path}" if sweep else f"hydra.run.dir={tmp_path / 'run'}"
        env = {**os.environ, "STN_FOVEA_DATA": str(data_root()), "OMP_NUM_THREADS": "1"}
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "stn_fovea.train",
                *args,
                *TINY_TRAIN,
                *tiny_model(compose_train, args),
                *extra,
                where,
                f"paths.cache_dir={CACHE}",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        jobs = [path for path in tmp_path.iterdir() if (path / "checkpoints" / "last.ckpt").is_file()]
        assert len(jobs) > 1 if sweep else jobs == [tmp_path / "run"]  # every job of a sweep ran
    elif entry == "train":
        cfg = compose_train(
            *args, *TINY_TRAIN, *tiny_model(compose_train, args), *tiny_evaluators(compose_train, args)
        )
        metrics = train(cfg)
        assert metrics["test"] and (Path(cfg.paths.output_dir) / "config_resolved.yaml").is_file()
    elif entry == "evaluate":
        overrides = [*args, "test_size=20"]
        checkpoint = read_checkpoint(next(a for a in args if a.startswith("ckpt_path="))[len("ckpt_path=") :])
        switched_off = {a[len("evaluators.") : -len("=null")] for a in args if a.endswith("=null")}
        for name in run_config(checkpoint).evaluators:  # tiny settings for the run's own evaluators
            overrides += [] if name in switched_off else TINY_EVALUATORS.get(name, [])
        cfg = compose_train(*overrides, config_name="evaluate", output="evaluation")
        metrics = evaluate(cfg)
        assert metrics["accuracy"] and (Path(cfg.paths.output_dir) / "metrics.json").is_file()
    elif entry == "bench":
        cfg = compose_train(*args, *TINY_BENCH, config_name="bench")
        GlobalHydra.instance().clear()
        with initialize_config_dir(str(CONF), version_base="1.3"):
            table = run_bench(cfg)
        assert len(table.rows) > 0
    elif entry == "compare":
        monkeypatch.chdir(tmp_path)
        assert run_compare(args) == 0
        assert "--csv" not in args or (tmp_path / args[args.index("--csv") + 1]).is_file()
        out = tmp_path / args[args.index("--out") + 1] if "--out" in args else None
        assert out is None or ((out / "protocols.md").is_file() and (out / "benchmark.png").is_file())
    elif entry == "zoo" and args[0] == "add":  # the 128 fixture run shipped into a zoo of the test's own
        # add <name> <run dir>/checkpoints/last.ckpt --command "..."
        last = str(checkpoints["128"] / "checkpoints" / "last.ckpt")
        placed = {1: "tiny", 2: last}
        args = [placed.get(i, a) if "placeholder" in a else a for i, a in enumerate(args)]
        assert run_zoo(["--zoo", str(tmp_path / "zoo"), *args]) == 0
        assert run_zoo(["--zoo", str(tmp_path / "zoo"), "verify"]) == 0
    elif entry == "zoo" and args == ["verify"]:  # the repository's own zoo, read only
        assert run_zoo(args) == 0
    else:  # e.g. zoo reproduce: an hour, and --record writes the repository's manifest
        pytest.fail(f"the README shows an entry point that this test does not know: {entry}")
