"""Reading stn_fovea checkpoints back: validation, the stored run config, the model."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from stn_fovea.callbacks.run_config import CHECKPOINT_KEY, FORMAT_VERSION
from stn_fovea.checkpoint_names import LAST, ON_EXCEPTION
from stn_fovea.errors import CheckpointError
from stn_fovea.models.module import GlimpseModule


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint file on the CPU and check that stn_fovea wrote it.

    Raises:
        CheckpointError: the path does not exist, is not a readable checkpoint, or lacks the run config
            that stn_fovea stores in every checkpoint.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint {path} does not exist. Checkpoints are in <run dir>/checkpoints/ "
            "(last.ckpt and the best by validation accuracy); pass one with ckpt_path=<file>."
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # any unpickling failure means "not a checkpoint"
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint ({type(error).__name__}: {error})"
        ) from error
    if not isinstance(checkpoint, dict) or CHECKPOINT_KEY not in checkpoint or "state_dict" not in checkpoint:
        raise CheckpointError(
            f"{path} is not a stn_fovea checkpoint (it has no '{CHECKPOINT_KEY}' run config). Use a "
            "checkpoint written by `python -m stn_fovea.train`."
        )
    version = checkpoint[CHECKPOINT_KEY].get("version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} was written by another version of stn_fovea (checkpoint format {version}, this one "
            f"reads {FORMAT_VERSION}); retrain, or evaluate it with the stn_fovea version that wrote it."
        )
    return checkpoint


def run_config(checkpoint: dict[str, Any]) -> DictConfig:
    """The resolved configuration of the run that wrote ``checkpoint``."""
    return OmegaConf.create(checkpoint[CHECKPOINT_KEY]["config"])


def read_what_classifier(path: str | Path) -> tuple[dict[str, Tensor], Path]:
    """The classifier weights of a What LeNet checkpoint trained on 28x28 images, and its run folder.

    Raises:
        CheckpointError: not a readable stn_fovea checkpoint, not a What model, or trained on images of
            another size.
    """
    if not Path(path).expanduser().is_file():
        raise CheckpointError(f"model.what_ckpt={path} does not exist; give the checkpoint of a What run")
    checkpoint = read_checkpoint(path)
    config = run_config(checkpoint)
    name = config.get("model_name", "unknown")
    hint = "e.g. the best checkpoint of `python -m stn_fovea.train experiment=what28_robust`"
    if not str(OmegaConf.select(config, "model.net.transformer._target_")).endswith(".CentralGlimpse"):
        raise CheckpointError(
            f"{path} is a {name} checkpoint, not a What one; model.what_ckpt needs a What LeNet, {hint}"
        )
    size = OmegaConf.select(config, "data.size")
    if size != 28:
        raise CheckpointError(
            f"{path} is a What trained on {size}x{size} images; What/Where reads 28x28 crops with a What "
            f"trained on 28x28 digits (data=mnist28), {hint}"
        )
    prefix = "net.classifier."
    state = {
        key[len(prefix) :]: value for key, value in checkpoint["state_dict"].items() if key.startswith(prefix)
    }
    return state, Path(path).expanduser().resolve().parent.parent


def load_module(checkpoint: dict[str, Any], config: DictConfig | None = None) -> GlimpseModule:
    """Rebuild the LightningModule of a checkpoint from its config and load its weights.

    A model that reads pretrained parts when it is built (``load_pretrained`` in its config, e.g.
    what_where's What net) is built without them: the checkpoint's weights hold them.
    """
    model = (config or run_config(checkpoint)).model
    module = instantiate(model, **({"load_pretrained": False} if "load_pretrained" in model else {}))
    module.load_state_dict(checkpoint["state_dict"])
    return module


# What a run trains: the config nodes and keys a resumed run must share with its checkpoint. The rest
# (trainer, logger, callbacks, evaluators, paths, ...) says where, how long and how it reports.
SAME_RUN_KEYS = (
    "model_name", "data_name", "experiment_name", "seed", "model", "data", "task", "optimizer",
    "scheduler", "curriculum",
)  # fmt: skip


def run_dir_of(ckpt_path: str | None, default: str) -> str:
    """The directory a run writes to (the ``run_dir_of`` resolver of ``hydra.run.dir``): a run that
    resumes continues in the run directory of its checkpoint, so that its logs, checkpoints and
    TensorBoard curves stay one run; ``default`` for a fresh run and for ``ckpt_path=last`` (which reads
    the run directory given by ``hydra.run.dir``).

    ``ckpt_path`` is ``<run>/checkpoints/<file>.ckpt`` or ``<run>`` itself.
    """
    if ckpt_path in (None, "", "last"):
        return default
    path = Path(str(ckpt_path)).expanduser()
    if path.is_dir():
        return str(path.parent if path.name == "checkpoints" else path)
    if path.parent.name == "checkpoints":
        return str(path.parent.parent)
    return default


def latest_state(run_dir: Path) -> Path | None:
    """A run directory's newest state to go on from: its last.ckpt (the end of its last epoch), else
    on_exception.ckpt (a run stopped during its first epoch); None when it has neither."""
    for name in (LAST, ON_EXCEPTION):
        if (run_dir / "checkpoints" / name).is_file():
            return run_dir / "checkpoints" / name
    return None


def resume_path(ckpt_path: str | None, run_dir: Path, auto: bool = True) -> Path | None:
    """The checkpoint a run in ``run_dir`` continues from, or None for a fresh start.

    Args:
        ckpt_path: a checkpoint file; a run directory, or ``last`` for ``run_dir`` itself: that run's
            :func:`latest_state`; None: see ``auto``.
        run_dir: the run's own directory.
        auto: without ``ckpt_path``, continue from ``run_dir``'s latest state when it has one: a job that
            a cluster requeued (preempted, timed out) starts again in its own directory and goes on.

    Raises:
        CheckpointError: nothing to continue from in the run directory named, or (``auto`` off) a fresh
            start asked for in a directory that holds another run's checkpoints.
    """
    if ckpt_path in (None, ""):
        if auto:
            return latest_state(run_dir)
        if any((run_dir / "checkpoints").glob("*.ckpt")):
            raise CheckpointError(
                f"{run_dir} holds the checkpoints of a run, and auto_resume=false starts a new one: "
                "give it a directory of its own (hydra.run.dir=<new dir>), or continue this run "
                "(auto_resume=true)."
            )
        return None
    source = run_dir if ckpt_path == "last" else Path(str(ckpt_path)).expanduser()
    if ckpt_path != "last" and not source.is_dir():
        return source  # a checkpoint file: read_checkpoint says what is wrong with it
    if source.name == "checkpoints":
        source = source.parent
    state = latest_state(source)
    if state is None:
        raise CheckpointError(
            f"ckpt_path={ckpt_path}: {source} holds no checkpoints/{LAST} to continue from. Pass the run "
            "directory (ckpt_path=<run dir>, or ckpt_path=last hydra.run.dir=<run dir>) or a checkpoint "
            "file (ckpt_path=<run dir>/checkpoints/<file>.ckpt)."
        )
    return state


def dotted_leaves(node: Any, prefix: str) -> dict[str, Any]:
    """{dotted key: value} of a nested config container, every key starting with ``prefix``."""
    if not isinstance(node, dict):
        return {prefix: node}
    return {
        key: value
        for name, child in node.items()
        for key, value in dotted_leaves(child, f"{prefix}.{name}").items()
    }


def check_same_run(checkpoint: dict[str, Any], path: Path, config: Mapping[str, Any]) -> None:
    """A run continues only the run it is: the same :data:`SAME_RUN_KEYS` (model, data, task, optimiser,
    scheduler, curriculum, seed) in the checkpoint and in ``config`` (this run's resolved config).
    Settings a checkpoint does not record (added to stn_fovea since) and folders (``*_dir``: where this
    machine keeps things) are not compared.

    Raises:
        CheckpointError: the checkpoint's run differs; the message names the first differences.
    """
    stored = OmegaConf.to_container(run_config(checkpoint), resolve=True)
    assert isinstance(stored, dict)
    there = {k: v for key in SAME_RUN_KEYS for k, v in dotted_leaves(stored.get(key), key).items()}
    here = {k: v for key in SAME_RUN_KEYS for k, v in dotted_leaves(config.get(key), key).items()}
    differences = [
        f"{key}={there[key]} there, {here[key]} here"
        for key in there
        if key in here and there[key] != here[key] and not key.endswith("_dir")
    ]
    if differences:
        more = f"; and {len(differences) - 5} more" if len(differences) > 5 else ""
        raise CheckpointError(
            f"{path} belongs to another run ({'; '.join(differences[:5])}{more}). To continue it, repeat "
            f"its own overrides (its config is in {path.parent.parent / 'config_resolved.yaml'}); for a "
            "new run, choose another hydra.run.dir."
        )
