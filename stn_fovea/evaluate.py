"""`python -m stn_fovea.evaluate ckpt_path=<checkpoint>`: fixed test sets, shift map, figures, JSON."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from stn_fovea.allocator import tune_glibc_malloc
from stn_fovea.checkpoint import dotted_leaves, load_module, read_checkpoint, run_config
from stn_fovea.checkpoint_names import picked_on, weights_of
from stn_fovea.errors import CheckpointError, ConfigError, user_errors_exit
from stn_fovea.evaluation.evaluator import build_evaluators, evaluate_model
from stn_fovea.notices import silence_notices
from stn_fovea.run_setup import command_line_overrides, run_info


def _device(choice: str) -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda was asked for but no CUDA device is available; use device=cpu")
    if choice not in ("cpu", "cuda"):
        raise ConfigError(f"device must be auto, cpu or cuda, got {choice!r}")
    return torch.device(choice)


def run_evaluators(run: DictConfig, overrides: list[str]) -> DictConfig:
    """The run's own evaluators and settings, with the ``evaluators.*`` settings given on the command line."""
    prefix = "evaluators."
    given = [o.lstrip("+~") for o in overrides if o.lstrip("+~").startswith(prefix)]
    names = {o[len(prefix) :].split("=")[0].split(".")[0] for o in given}
    unknown = sorted(names - set(run.get("evaluators") or {}))
    if unknown:
        raise ConfigError(
            f"this checkpoint's run has no evaluator(s) {unknown}; its evaluators are "
            f"{sorted(run.get('evaluators') or {})}"
        )
    chosen = OmegaConf.merge(run.get("evaluators") or {}, OmegaConf.from_dotlist(given).get("evaluators", {}))
    return chosen  # type: ignore[return-value]


def model_changes(run: DictConfig, changes: DictConfig | None) -> list[str]:
    """Apply ``+model.<key>=<value>`` settings of the command line to the run's model config (a model's
    evaluation-time option, e.g. What/Where's ``+model.net.reencode_as_trained=true``); every key must
    exist in the run's model. Returns them as "key=value" lines for metrics.json."""
    if not changes:
        return []
    flat = dotted_leaves(OmegaConf.to_container(changes), "model")
    unknown = [key for key in flat if not _settable(run, key)]
    if unknown:
        raise ConfigError(
            f"this checkpoint's model has no setting {unknown}; see config_resolved.yaml of its run"
        )
    for key, value in flat.items():
        OmegaConf.update(run, key, value)
    return [f"{key}={value}" for key, value in flat.items()]


def _settable(run: DictConfig, key: str) -> bool:
    """The key exists in the run's config, or names an argument of the object its parent node builds (an
    option added after the run was trained)."""
    missing = object()
    if OmegaConf.select(run, key, default=missing) is not missing:
        return True
    parent, _, name = key.rpartition(".")
    target = OmegaConf.select(run, f"{parent}._target_", default=None)
    if target is None:
        return False
    try:
        parameters = inspect.signature(get_object(str(target))).parameters
    except (ImportError, AttributeError, ValueError, TypeError):
        return False
    return name in parameters


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate the checkpoint ``cfg.ckpt_path`` with the data settings of the run that wrote it."""
    if OmegaConf.is_missing(cfg, "ckpt_path") or not cfg.ckpt_path:
        raise CheckpointError("no checkpoint given: pass ckpt_path=<run dir>/checkpoints/<file>.ckpt")
    checkpoint = read_checkpoint(cfg.ckpt_path)
    run = run_config(checkpoint)
    run.data.data_dir = cfg.paths.data_dir  # the data live where this machine keeps them
    trained = run_info(run)  # before the noise of the evaluation replaces the run's
    changed = model_changes(run, cfg.get("model"))
    if cfg.get("noise") is not None:
        if "noise" not in run.data:
            raise ConfigError(
                f"noise={cfg.noise}: the data of this run (data={run.get('data_name')}) have no noise "
                "amplitude to change; evaluate it without noise=..."
            )
        run.data.noise = float(cfg.noise)
    if cfg.get("test_size") is not None:
        run.data.test_size = int(cfg.test_size)
    if cfg.get("batch_size") is not None:
        run.data.eval_batch_size = int(cfg.batch_size)
    module = load_module(checkpoint, run).to(_device(cfg.device))
    datamodule = instantiate(run.data)
    datamodule.prepare_data()
    datamodule.setup("test")
    output_dir = Path(cfg.paths.output_dir)
    metrics = evaluate_model(
        module,
        datamodule,
        build_evaluators(run_evaluators(run, command_line_overrides()), datamodule),
        output_dir,
        str(run.model_name),
        checkpoint=str(Path(cfg.ckpt_path).resolve()),
        run_info={
            **trained,
            "weights": picked_on(
                weights_of(cfg.ckpt_path, checkpoint.get("weights")), run.data.get("val_size")
            ),
            **({"model_changes": changed} if changed else {}),
        },
        channels_last=bool(cfg.channels_last),
    )
    console = Console(stderr=True)
    console.rule("[bold]stn_fovea evaluation")
    for name, value in metrics.get("accuracy", {}).items():  # none with evaluators.protocols=null
        console.print(f"{name:>10} accuracy: {value:.4f}  (noise {metrics['noise']})")
    console.print(f"figures, metrics.json: {output_dir.resolve()}")
    return metrics


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    tune_glibc_malloc()  # large per-batch tensors: avoid mmap/munmap churn
    silence_notices()
    with user_errors_exit():
        evaluate(cfg)


if __name__ == "__main__":
    main()
