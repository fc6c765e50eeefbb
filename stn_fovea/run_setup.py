"""The parts of a training run, built and checked before it trains: data, model, their fit, the
schedule's length and what metrics.json records of the run."""

from __future__ import annotations

import logging
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from stn_fovea.callbacks.curriculum import Curriculum
from stn_fovea.data.datamodule import TEST, NoisyMNIST
from stn_fovea.errors import ConfigError, find_user_error, short_reason
from stn_fovea.models.module import GlimpseModule

log = logging.getLogger(__name__)
DEFAULT_EPOCHS_WITHOUT_CURRICULUM = 10


def instantiate_all(group: DictConfig | None) -> list[Any]:
    return [instantiate(node) for node in (group or {}).values() if node and node.get("_target_")]


def flat_config(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flat_config(value, f"{name}/"))
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
