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

    top = git("rev-parse", "--show-toplevel")  # stn_fovea installed inside another checkout is not one
    commit = git("rev-parse", "HEAD") if top and Path(top).resolve() == source.resolve() else None
    if not commit:
        return None
    changed = git("status", "--porcelain", "--", *TRACKED)  # a new, uncommitted config file counts
    return f"{commit}+uncommitted" if changed else commit


UNRECORDED = "unrecorded"  # the commits of a checkpoint saved before runs recorded them


class StoreRunConfig(Callback):
    """Adds ``checkpoint["stn_fovea"] = {"version": ..., "config": <resolved config>, "commits": [...]}``:
    the commits of every attempt that trained it, in order (a resumed run adds its own; "unrecorded"
    stands for the attempts of a checkpoint saved before runs recorded them)."""

    def __init__(self, config: Mapping[str, Any], commit: str | None = None) -> None:
        super().__init__()
        self.config = dict(config)
        self.commit = commit or UNRECORDED
        self.commits = [self.commit]

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """The loaded checkpoint's commits, then this attempt's (from the checkpoint alone, so loading
        another one, as testing the best checkpoint does, does not pile up)."""
        stored = checkpoint.get(CHECKPOINT_KEY)
        earlier = list(stored.get("commits") or [UNRECORDED]) if stored else []
        self.commits = earlier + ([self.commit] if not earlier or earlier[-1] != self.commit else [])

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[CHECKPOINT_KEY] = {
            "version": FORMAT_VERSION,
            "config": self.config,
            "commits": self.commits,
        }
