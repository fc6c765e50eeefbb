"""Stores the run's resolved configuration in every checkpoint, so a checkpoint rebuilds its model, and
the commits of the code that trained it."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

CHECKPOINT_KEY = "stn_fovea"
FORMAT_VERSION = 2  # 2: one NoisyMNIST DataModule with a recipe, task and evaluators in the config
SOURCE = Path(__file__).resolve().parents[2]  # the checkout stn_fovea runs from
TRACKED = ("stn_fovea", "conf")  # what a training's numbers depend on


def code_commit(source: Path = SOURCE) -> str | None:
    """The commit of the checkout stn_fovea runs from, with ``+uncommitted`` when its code or configs
    differ from that commit (a changed or a new file); None outside a git checkout (an installed
    package)."""

    def git(*arguments: str) -> str | None:
        try:
            result = subprocess.run(["git", *arguments], cwd=source, capture_output=True, text=True)
        except OSError:  # no git on this machine
            return None
        return result.stdout.strip() if result.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    changed = git("status", "--porcelain", "--", *TRACKED)  # a new, uncommitted config file counts
    return f"{commit}+uncommitted" if changed else commit


class StoreRunConfig(Callback):
    """Adds ``checkpoint["stn_fovea"] = {"version": ..., "config": <resolved config>, "commits": [...]}``:
    the commits of every attempt that trained it, in order (a resumed run adds its own)."""

    def __init__(self, config: Mapping[str, Any], commit: str | None = None) -> None:
        super().__init__()
        self.config = dict(config)
        self.commits = [commit] if commit else []

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        earlier = list(checkpoint.get(CHECKPOINT_KEY, {}).get("commits", []))
        current = [c for c in self.commits if not earlier or c != earlier[-1]]
        self.commits = earlier + current

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[CHECKPOINT_KEY] = {
            "version": FORMAT_VERSION,
            "config": self.config,
            "commits": self.commits,
        }
