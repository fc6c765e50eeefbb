"""`python -m stn_fovea.train`: compose the config, instantiate, fit, test, evaluate, report."""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from stn_fovea.allocator import tune_glibc_malloc
from stn_fovea.callbacks.curriculum import Curriculum
from stn_fovea.callbacks.run_config import StoreRunConfig, code_commit
from stn_fovea.checkpoint import check_same_run, read_checkpoint, resume_path
from stn_fovea.checkpoint_names import FINAL, LAST, SCORES, picked_on
from stn_fovea.errors import ConfigError, user_errors_exit
from stn_fovea.evaluation.evaluator import build_evaluators, evaluate_model
from stn_fovea.hparams_tab import (
    declare_final_metrics,
    final_metric_names,
    final_metric_values,
    log_final_metrics,
)
from stn_fovea.notices import silence_notices
from stn_fovea.resolvers import register as register_resolvers
from stn_fovea.run_checkpoints import (
    best_model_checkpoint,
    check_test_selection,
    test_selected,
    training_seconds,
)
from stn_fovea.run_setup import (
    build_data,
    build_model,
    check_sweep_metric,
    command_line_overrides,
    flat_config,
    instantiate_all,
    logged_test_metrics,
    run_info,
    schedule_epochs,
    warn_curriculum_overrides,
)
from stn_fovea.sweep import FAILURE_FILE, in_multirun, one_line, record_failure

log = logging.getLogger(__name__)
register_resolvers()


def train(cfg: DictConfig) -> dict[str, Any]:
    """Run one experiment; returns the test and evaluation metrics."""
    resolved: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / FAILURE_FILE).unlink(missing_ok=True)  # a job run again: its earlier failure is past
    # Fail now, with a clear message, on a bad resume path or setting, not after training.
    resume = resume_path(cfg.get("ckpt_path"), output_dir, bool(cfg.get("auto_resume", True)))
    scored = str(cfg.get("score", "best"))
    if scored not in SCORES:
        raise ConfigError(f"score must be one of {sorted(SCORES)}, got {scored!r}")
    timed = True  # whether the training time of every earlier attempt is known
    if resume is not None:
        state = read_checkpoint(resume)
        check_same_run(state, resume, resolved)
        log.info("continuing from %s in %s", resume, output_dir)
        timed = any(str(key).startswith("Timer") for key in state.get("callbacks", {}))
        if not timed:
            log.info(
                "%s has no training time (written before runs recorded it): train_seconds left out", resume
            )
    OmegaConf.save(OmegaConf.create(resolved), output_dir / "config_resolved.yaml")  # once it is this run
    L.seed_everything(cfg.seed, workers=True)
    torch.set_flush_denormal(bool(cfg.get("flush_denormal", False)))

    datamodule = build_data(cfg)
    module = build_model(cfg, datamodule)
    if cfg.get("channels_last"):
        module.to(memory_format=torch.channels_last)
    sweep_metric = check_sweep_metric(module, datamodule)
    evaluators = build_evaluators(cfg.get("evaluators"), datamodule)
    callbacks: list[Callback] = instantiate_all(cfg.get("callbacks"))
    curriculum: Curriculum | None = None
    if cfg.get("curriculum") and cfg.curriculum.get("_target_"):
        curriculum = instantiate(cfg.curriculum)
        curriculum.check(datamodule)
        warn_curriculum_overrides(curriculum, command_line_overrides())
        # first: an epoch's stage and LR restart are set before other callbacks (the LR monitor) read them
        callbacks.insert(0, curriculum)
    check_test_selection(callbacks, datamodule)
    callbacks.append(StoreRunConfig(resolved, code_commit()))
    loggers: list[Logger] = instantiate_all(cfg.get("logger"))
    max_epochs = schedule_epochs(cfg, curriculum)
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers, max_epochs=max_epochs)
    checkpoint = best_model_checkpoint(callbacks)
    monitor = str(checkpoint.monitor) if checkpoint else None
    final_names = final_metric_names(logged_test_metrics(module, datamodule), monitor)
    # trainer.loggers, not loggers: under trainer.fast_dev_run Lightning swaps them for a DummyLogger
    declare_final_metrics(trainer.loggers, flat_config(resolved), final_names)

    trainer.fit(module, datamodule=datamodule, ckpt_path=resume)
    if trainer.interrupted:
        log.warning("training was interrupted; checkpoints are in %s", output_dir / "checkpoints")
        return {}
    best = checkpoint.best_model_path if checkpoint and checkpoint.best_model_path else None
    if best is None:
        log.warning(
            "no best checkpoint was saved (trainer.fast_dev_run saves none, or no callback monitors a "
            "metric): the test and the evaluation measure the final weights in memory"
        )
    # None when unknown: no checkpoint, or a resumed run whose checkpoints moved (Lightning then keeps
    # only the best checkpoint's path)
    score = checkpoint.best_model_score if checkpoint and best else None
    best_score = None if score is None else float(score)
    # before trainer.test restores the callbacks' saved states
    selected, seconds = test_selected(callbacks), training_seconds(callbacks) if timed else None
    timing = {} if seconds is None else {"train_seconds": seconds}
    # the weights measured: the best validation checkpoint, or those after the last epoch (the reference's)
    final = output_dir / "checkpoints" / LAST
    weights = best if scored == "best" else (str(final) if final.is_file() else None)
    results = trainer.test(module, datamodule=datamodule, ckpt_path=weights, verbose=False)
    test_metrics = {name: value for per_loader in results for name, value in per_loader.items()}
    final = final_metric_values(test_metrics, sweep_metric, monitor, best_score)
    log_final_metrics(trainer.loggers, final, trainer.global_step)
    # no checkpoint to read (fast_dev_run): the weights in memory, those of the last step
    label = picked_on(SCORES[scored], cfg.data.get("val_size")) if weights else FINAL
    measured = {"checkpoint": weights, "weights": label}
    metrics: dict[str, Any] = {
        "test": test_metrics, "best_checkpoint": best, **measured, "sweep_metric": sweep_metric, **timing
    }  # fmt: skip
    if cfg.get("evaluate") and trainer.is_global_zero:
        metrics["evaluation"] = evaluate_model(
            module,
            datamodule,
            evaluators,
            output_dir / "eval",
            str(cfg.model_name),
            checkpoint=weights,
            run_info={**run_info(cfg), "weights": measured["weights"], **timing, **selected},
            tensorboard=next(
                (lg.experiment for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None
            ),
            global_step=trainer.global_step,
            channels_last=bool(cfg.get("channels_last")),
        )
    if trainer.is_global_zero:
        _report(output_dir, metrics)
    return metrics


def _report(output_dir: Path, metrics: dict[str, Any]) -> None:
    console = Console(stderr=True)
    console.rule("[bold]stn_fovea run finished")
    console.print(f"run directory : {output_dir.resolve()}")
    console.print(f"best checkpoint: {metrics['best_checkpoint']}")
    console.print(f"measured       : {metrics['checkpoint']} (weights: {metrics['weights']})")
    if "train_seconds" in metrics:
        console.print(
            f"training time  : {metrics['train_seconds'] / 60:.1f} min (the epochs kept, every attempt)"
        )
    for name, value in sorted(metrics["test"].items()):
        console.print(f"{name:>24}: {value:.4f}")
    if "evaluation" in metrics:
        console.print(f"figures, metrics.json: {(output_dir / 'eval').resolve()}")
    console.print(f"TensorBoard    : tensorboard --logdir {output_dir.parent.resolve()}")


def run_job(cfg: DictConfig) -> float | None:
    """One run; inside a sweep, a failure is recorded and no value returned so that the other jobs go on."""
    if not in_multirun():
        with user_errors_exit():
            metrics = train(cfg)
    else:
        try:
            metrics = train(cfg)
        except Exception as error:  # noqa: BLE001 (any failure of this job: the sweep must go on)
            message = one_line(error)
            log.error("this job failed: %s", message)
            record_failure(Path(cfg.paths.output_dir), message, "".join(traceback.format_exception(error)))
            print(f"stn_fovea: job {HydraConfig.get().job.num} failed: {message}", file=sys.stderr)
            return None  # no result: Optuna records a failed trial (a NaN would stop its search)
    return metrics.get("test", {}).get(metrics.get("sweep_metric", ""))


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    tune_glibc_malloc()  # large per-batch tensors: avoid mmap/munmap churn
    torch.set_float32_matmul_precision("high")
    silence_notices()
    return run_job(cfg)


if __name__ == "__main__":
    main()
