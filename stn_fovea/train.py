"""`python -m stn_fovea.train`: compose the config, instantiate, fit, test, evaluate, report."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from stn_fovea.allocator import tune_glibc_malloc
from stn_fovea.callbacks.curriculum import Curriculum
from stn_fovea.callbacks.run_config import StoreRunConfig
from stn_fovea.checkpoint import read_checkpoint
from stn_fovea.errors import ConfigError, user_errors_exit
from stn_fovea.evaluation.report import EvaluationSettings, evaluate_model
from stn_fovea.models.module import GlimpseModule
from stn_fovea.resolvers import register as register_resolvers

log = logging.getLogger(__name__)
register_resolvers()
DEFAULT_EPOCHS_WITHOUT_CURRICULUM = 10


def _instantiate_all(group: DictConfig | None) -> list[Any]:
    return [instantiate(node) for node in (group or {}).values() if node and node.get("_target_")]


def _flat(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flat(value, f"{name}/"))
        else:
            flat[name] = value if isinstance(value, (int, float, str, bool)) else str(value)
    return flat


def check_model_reads_data(module: GlimpseModule, image_size: int, model_name: str) -> None:
    """Raise a ConfigError now, not mid-training, if the model cannot read the data's images."""
    try:
        with torch.no_grad():
            module.eval()(torch.zeros(2, 1, image_size, image_size))
    except (RuntimeError, ValueError) as error:
        raise ConfigError(
            f"model={model_name} cannot read the {image_size}x{image_size} images of this data config "
            f"({error.__class__.__name__}: {str(error).splitlines()[0]}). The 28x28 models are what and "
            "stn (data=mnist28); stn128, atn, polo_atn and peripheral_atn read data=mnist128."
        ) from error
    finally:
        module.train()


def train(cfg: DictConfig) -> dict[str, Any]:
    """Run one experiment; returns the test and evaluation metrics."""
    resolved: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(resolved), output_dir / "config_resolved.yaml")
    # Fail now, with a clear message, on a bad resume path or evaluation setting, not after training.
    if cfg.get("ckpt_path"):
        read_checkpoint(cfg.ckpt_path)
    settings = EvaluationSettings.from_config(cfg.eval)
    L.seed_everything(cfg.seed, workers=True)

    datamodule = instantiate(cfg.data)
    settings.check_protocols(datamodule.test_recipes)
    module = instantiate(cfg.model)
    check_model_reads_data(module, datamodule.train_recipe.image_size, str(cfg.model_name))
    callbacks: list[Callback] = _instantiate_all(cfg.get("callbacks"))
    curriculum: Curriculum | None = None
    if cfg.get("curriculum") and cfg.curriculum.get("_target_"):
        curriculum = instantiate(cfg.curriculum)
        curriculum.check(datamodule)
        callbacks.append(curriculum)
    callbacks.append(StoreRunConfig(resolved))
    loggers: list[Logger] = _instantiate_all(cfg.get("logger"))
    max_epochs = cfg.trainer.get("max_epochs") or (
        curriculum.total_epochs if curriculum else DEFAULT_EPOCHS_WITHOUT_CURRICULUM
    )
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers, max_epochs=max_epochs)
    for logger in loggers:
        logger.log_hyperparams(_flat(resolved))

    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    if trainer.interrupted:
        log.warning("training was interrupted; checkpoints are in %s", output_dir / "checkpoints")
        return {}
    checkpoint = next((cb for cb in callbacks if isinstance(cb, ModelCheckpoint) and cb.monitor), None)
    best = checkpoint.best_model_path if checkpoint and checkpoint.best_model_path else None
    results = trainer.test(module, datamodule=datamodule, ckpt_path=best, verbose=False)
    test_metrics = {name: value for per_loader in results for name, value in per_loader.items()}
    metrics: dict[str, Any] = {"test": test_metrics, "best_checkpoint": best}
    if cfg.get("evaluate") and trainer.is_global_zero:
        metrics["evaluation"] = evaluate_model(
            module, datamodule, settings, output_dir / "eval", cfg.model_name, checkpoint=best
        )
    _report(output_dir, best, metrics)
    return metrics


def _report(output_dir: Path, best: str | None, metrics: dict[str, Any]) -> None:
    console = Console(stderr=True)
    console.rule("[bold]stn_fovea run finished")
    console.print(f"run directory : {output_dir.resolve()}")
    console.print(f"best checkpoint: {best}")
    for name, value in sorted(metrics["test"].items()):
        console.print(f"{name:>24}: {value:.4f}")
    if "evaluation" in metrics:
        console.print(f"figures, metrics.json: {(output_dir / 'eval').resolve()}")
    console.print(f"TensorBoard    : tensorboard --logdir {output_dir.parent.resolve()}")


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    tune_glibc_malloc()  # large per-batch tensors: avoid mmap/munmap churn
    torch.set_float32_matmul_precision("high")
    with user_errors_exit():
        metrics = train(cfg)
    return metrics.get("test", {}).get("test/general/acc")


if __name__ == "__main__":
    main()
