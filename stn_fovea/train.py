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
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, Timer
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from stn_fovea.allocator import tune_glibc_malloc
from stn_fovea.callbacks.curriculum import Curriculum
from stn_fovea.callbacks.run_config import StoreRunConfig
from stn_fovea.checkpoint import FINAL, LAST, SCORES, check_same_run, read_checkpoint, resume_path
from stn_fovea.data.datamodule import TEST, TEST_EACH_EPOCH, NoisyMNIST
from stn_fovea.errors import ConfigError, find_user_error, short_reason, user_errors_exit
from stn_fovea.evaluation.evaluator import build_evaluators, evaluate_model
from stn_fovea.hparams_tab import (
    declare_final_metrics,
    final_metric_names,
    final_metric_values,
    log_final_metrics,
)
from stn_fovea.models.module import GlimpseModule
from stn_fovea.notices import silence_notices
from stn_fovea.resolvers import register as register_resolvers
from stn_fovea.sweep import FAILURE_FILE, in_multirun, one_line, record_failure

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


def command_line_overrides() -> list[str]:
    """The overrides the user typed (empty outside a Hydra app)."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def run_info(run: DictConfig) -> dict[str, Any]:
    """What metrics.json says of the run behind a model: seed, experiment, training noise and the
    length of its schedule (runs of one experiment are pooled over seeds only at the same length)."""
    return {
        "seed": run.get("seed"),
        "experiment": run.get("experiment_name"),
        "train_noise": run.data.get("noise", 0.0),  # clean data have no noise field
        "train_epochs": recorded_epochs(run),
    }


def training_seconds(callbacks: list[Callback]) -> float | None:
    """The run's training wall time in seconds: the epochs it kept, over every attempt of a resumed run
    (Lightning's Timer keeps it in each checkpoint; work redone after an interruption is not counted);
    None without a Timer among the callbacks."""
    timer = next((cb for cb in callbacks if isinstance(cb, Timer)), None)
    return None if timer is None else round(timer.time_elapsed("train"), 1)


def test_monitors(callbacks: list[Callback]) -> list[ModelCheckpoint]:
    """The checkpoints that monitor the per-epoch test score (``test_each_epoch/...``): they keep the
    "best test epoch" some papers report, never the run's own best checkpoint."""
    checkpoints = (cb for cb in callbacks if isinstance(cb, ModelCheckpoint))
    return [cb for cb in checkpoints if str(cb.monitor or "").startswith(f"{TEST_EACH_EPOCH}/")]


def test_selected(callbacks: list[Callback]) -> dict[str, Any]:
    """The "best test epoch" of a run that scored its test set every epoch (data.test_each_epoch) and
    kept that epoch's checkpoint: reported beside the validation-selected numbers, never instead."""
    for callback in test_monitors(callbacks):
        if callback.best_model_score is not None:
            return {
                "test_selected": {
                    "metric": callback.monitor,
                    "accuracy": float(callback.best_model_score),
                    "checkpoint": callback.best_model_path,
                }
            }
    return {}


def check_test_selection(callbacks: list[Callback], datamodule: NoisyMNIST) -> None:
    """A checkpoint that monitors the per-epoch test score needs the data to compute that score."""
    logged = f"{TEST_EACH_EPOCH}/{datamodule.headline_protocol}/"
    for callback in test_monitors(callbacks):
        monitor = str(callback.monitor)
        if not datamodule.test_each_epoch or not monitor.startswith(logged):
            raise ConfigError(
                f"a checkpoint monitors {monitor}, but this run scores "
                + (f"{logged}* each epoch" if datamodule.test_each_epoch else "no test set each epoch")
                + ": set data.test_each_epoch=true (and keep data.headline_protocol), or remove that "
                "callback (callbacks.test_selected=null)"
            )


def best_model_checkpoint(callbacks: list[Callback]) -> ModelCheckpoint | None:
    """The checkpoint callback that keeps the run's best model, the one trainer.test scores: the first
    that monitors a metric, never one that monitors the per-epoch test score."""
    peeking = test_monitors(callbacks)
    checkpoints = (cb for cb in callbacks if isinstance(cb, ModelCheckpoint) and cb.monitor)
    return next((cb for cb in checkpoints if cb not in peeking), None)


def recorded_epochs(run: DictConfig) -> int | None:
    """The schedule's length as metrics.json records it: None for an unbounded one (max_epochs -1)."""
    epochs = schedule_epochs(run)
    return epochs if epochs > 0 else None


def schedule_epochs(run: DictConfig, curriculum: Curriculum | None = None) -> int:
    """The epochs a run trains for: trainer.max_epochs, else its curriculum's length, else the default."""
    if run.trainer.get("max_epochs"):
        return int(run.trainer.max_epochs)
    if curriculum is None and run.get("curriculum") and run.curriculum.get("_target_"):
        curriculum = instantiate(run.curriculum)
    return curriculum.total_epochs if curriculum else DEFAULT_EPOCHS_WITHOUT_CURRICULUM


def build_data(cfg: DictConfig) -> NoisyMNIST:
    """Instantiate the data; a bad setting names the model and data choices (a model's config may set
    data fields, as model=what_where does)."""
    try:
        return instantiate(cfg.data)
    except Exception as error:
        cause = find_user_error(error)
        if cause is None:
            raise
        raise ConfigError(
            f"model={cfg.model_name} data={cfg.data_name}: the data cannot be built with these settings "
            f"({cause}). A model's config may set data fields (conf/model/{cfg.model_name}.yaml): pick "
            "data it reads, or change the data.* values."
        ) from error


def build_model(cfg: DictConfig, datamodule: NoisyMNIST) -> GlimpseModule:
    """Instantiate the model and check now, not mid-training, that it reads the data's images."""
    size, names = datamodule.image_size, f"model={cfg.model_name} data={cfg.data_name}"
    try:
        module: GlimpseModule = instantiate(cfg.model)
        with torch.no_grad():
            module.eval()(torch.zeros(2, 1, size, size))
    except (InstantiationException, RuntimeError, ValueError) as error:
        if find_user_error(error) is not None:
            raise  # a bad model setting says so itself (user_errors_exit finds it in the chain)
        raise ConfigError(
            f"{names}: the model cannot read {size}x{size} images ({short_reason(error)}). Pick a model "
            "built for this image size, or data whose images it reads (e.g. data=mnist28 for 28x28 models)."
        ) from error
    module.train()
    module.example_input_array = torch.zeros(1, 1, size, size)  # the model summary counts its FLOPs
    return module


def logged_test_metrics(module: GlimpseModule, datamodule: NoisyMNIST) -> set[str]:
    """The metrics trainer.test logs: ``test/<protocol>/<metric>`` for the data's test protocols and the
    task's metrics and loss."""
    return {
        f"{TEST}/{protocol}/{name}"
        for protocol in datamodule.test_recipes
        for name in [*module.task.templates.keys(), "loss"]
    }


def check_sweep_metric(module: GlimpseModule, datamodule: NoisyMNIST) -> str:
    """The task's sweep metric must be a metric that trainer.test will log."""
    metric = str(module.task.sweep_metric)
    logged = logged_test_metrics(module, datamodule)
    if metric not in logged:
        raise ConfigError(
            f"task.sweep_metric={metric} is not a metric of this run; choose one of {sorted(logged)} "
            "(the data's test protocols x the task's metrics)"
        )
    return metric


def warn_curriculum_overrides(curriculum: Curriculum, overrides: list[str]) -> None:
    """Say at start when the user set a data value that every curriculum stage replaces."""
    staged = curriculum.stage_parameters()
    for override in overrides:
        key, _, value = override.lstrip("+~").partition("=")
        if key.startswith("data.") and key[len("data.") :] in staged:
            name = key[len("data.") :]
            values = ", ".join(str(stage.get(name)) for stage in curriculum.stages if name in stage)
            log.warning(
                "%s=%s is replaced during training by the curriculum, whose stages set %s to %s. To train "
                "at your value, use curriculum=none (with trainer.max_epochs) or set curriculum.stages.",
                key,
                value,
                name,
                values,
            )


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
    callbacks: list[Callback] = _instantiate_all(cfg.get("callbacks"))
    curriculum: Curriculum | None = None
    if cfg.get("curriculum") and cfg.curriculum.get("_target_"):
        curriculum = instantiate(cfg.curriculum)
        curriculum.check(datamodule)
        warn_curriculum_overrides(curriculum, command_line_overrides())
        callbacks.append(curriculum)
    check_test_selection(callbacks, datamodule)
    callbacks.append(StoreRunConfig(resolved))
    loggers: list[Logger] = _instantiate_all(cfg.get("logger"))
    max_epochs = schedule_epochs(cfg, curriculum)
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers, max_epochs=max_epochs)
    checkpoint = best_model_checkpoint(callbacks)
    monitor = str(checkpoint.monitor) if checkpoint else None
    final_names = final_metric_names(logged_test_metrics(module, datamodule), monitor)
    # trainer.loggers, not loggers: under trainer.fast_dev_run Lightning swaps them for a DummyLogger
    declare_final_metrics(trainer.loggers, _flat(resolved), final_names)

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
    measured = {"checkpoint": weights, "weights": SCORES[scored] if weights else FINAL}
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
    console.print(f"measured       : {metrics['checkpoint']} ({metrics['weights']} weights)")
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
