"""Reading stn_fovea checkpoints back: validation, the stored run config, the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from stn_fovea.callbacks.run_config import CHECKPOINT_KEY, FORMAT_VERSION
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
