"""Curriculum learning as a Lightning callback: a list of dataset stages, each held for some epochs."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from stn_fovea.errors import ConfigError

log = logging.getLogger(__name__)
LR_RESTART = "lr_restart"


def _plain(value: Any) -> float | list[float]:
    """A stage value as a float or a list of floats (e.g. a contrast range), never an OmegaConf node."""
    if isinstance(value, (int, float)):
        return float(value)
    return [float(item) for item in value]


class Curriculum(Callback):
    """Steps the training set of the DataModule through ``stages``.

    The stage of epoch e is a pure function of e (stage k covers ``epochs_per_stage`` epochs; the last
    stage lasts for the rest of training), so a resumed run continues where it stopped. An epoch's
    stage (its level and LR restart) is entered in ``on_train_epoch_start``, and in ``on_train_start``
    for the epoch a resumed run goes on with (Lightning skips that epoch's start when the run resumed in
    its middle or from a checkpoint written after the previous epoch's last batch): the DataModule
    renders images batch by batch from the current recipe, so a change there reaches the very next
    training batch (no dataloader reload is involved). The only state kept in checkpoints is the epoch
    of the last LR restart, so that a restart is made once, also across a resume.
    Put it first among the Trainer's callbacks (``train`` does): a stage's LR restart must be made
    before another callback's ``on_train_epoch_start`` (the LR monitor's) reads the learning rate.

    The DataModule must provide ``set_train_level(**stage)`` and ``check_level(**stage)``.

    A stage may also carry ``lr_restart: f``: when it begins, the optimiser starts afresh (its state,
    e.g. momentum, is cleared) at f times its initial learning rate, and the LR schedulers start over
    from there, as the reference does when it creates a new optimiser and scheduler for a stage.

    Args:
        stages: dataset parameters of each stage, e.g. ``[{shift_std_px: 0}, {shift_std_px: 1}]``.
        epochs_per_stage: one number for all stages, or one per stage.
    """

    def __init__(
        self, stages: Sequence[Mapping[str, float]], epochs_per_stage: int | Sequence[int] = 10
    ) -> None:
        super().__init__()
        # Plain Python values: the stages are saved in checkpoints, which torch.load reads weights-only.
        self.stages = [{str(name): _plain(value) for name, value in stage.items()} for stage in stages]
        if not self.stages:
            raise ConfigError("a curriculum needs at least one stage")
        durations = (
            [int(epochs_per_stage)] * len(self.stages)
            if isinstance(epochs_per_stage, int)
            else [int(epochs) for epochs in epochs_per_stage]
        )
        if len(durations) != len(self.stages) or any(epochs < 1 for epochs in durations):
            raise ConfigError(
                f"epochs_per_stage must be a positive number or one positive number per stage "
                f"({len(self.stages)} stages), got {epochs_per_stage}"
            )
        self.durations = durations
        for index, stage in enumerate(self.stages):
            factor = stage.get(LR_RESTART)
            if factor is not None and not float(factor) > 0:
                raise ConfigError(f"curriculum stage {index}: {LR_RESTART} must be positive, got {factor}")
        self.stage_index = 0
        self.restarted_epoch: int | None = None  # the epoch of the last LR restart, kept in checkpoints

    def state_dict(self) -> dict[str, Any]:
        return {"restarted_epoch": self.restarted_epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.restarted_epoch = state_dict.get("restarted_epoch")

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        # Lightning calls this before load_state_dict, which a checkpoint written before the curriculum
        # kept its state never reaches: there, an epoch begun and not ended had run its start, restart
        # included, so a run resumed inside it must not restart again
        if self.state_key in checkpoint.get("callbacks", {}):
            return
        loop = checkpoint.get("loops", {}).get("fit_loop", {})
        progress = loop.get("epoch_progress", {}).get("current", {})
        if progress.get("started", 0) > progress.get("processed", 0):
            self.restarted_epoch = int(progress["started"]) - 1

    @property
    def total_epochs(self) -> int:
        return sum(self.durations)

    def stage_at(self, epoch: int) -> int:
        """Index of the stage that epoch ``epoch`` (0-based) trains on."""
        end = 0
        for index, epochs in enumerate(self.durations):
            end += epochs
            if epoch < end:
                return index
        return len(self.stages) - 1

    def stage_start(self, index: int) -> int:
        """First epoch of stage ``index``."""
        return sum(self.durations[:index])

    def stage_parameters(self) -> set[str]:
        """The dataset parameters that some stage sets."""
        return {name for stage in self.stages for name in stage if name != LR_RESTART}

    def data_level(self, index: int) -> dict[str, float]:
        """The dataset parameters of stage ``index`` (without the ``lr_restart`` directive)."""
        return {name: value for name, value in self.stages[index].items() if name != LR_RESTART}

    def _apply(self, trainer: L.Trainer, epoch: int) -> None:
        self.stage_index = self.stage_at(epoch)
        trainer.datamodule.set_train_level(**self.data_level(self.stage_index))

    def check(self, datamodule: L.LightningDataModule) -> None:
        """Raise a ConfigError naming the first stage that the DataModule rejects."""
        for index, stage in enumerate(self.stages):
            try:
                datamodule.check_level(**self.data_level(index))
            except ConfigError as error:
                raise ConfigError(f"curriculum stage {index} {stage}: {error}") from error

    @staticmethod
    def restart_learning_rate(trainer: L.Trainer, factor: float) -> None:
        """Start every optimiser afresh at ``factor`` x its initial LR and restart its schedulers."""
        for optimizer in trainer.optimizers:
            optimizer.state.clear()
            for group in optimizer.param_groups:
                group["lr"] = group["initial_lr"] * factor
        for config in trainer.lr_scheduler_configs:
            scheduler = config.scheduler
            scheduler.base_lrs = [group["lr"] for group in scheduler.optimizer.param_groups]
            scheduler.last_epoch = 0
            scheduler._last_lr = list(scheduler.base_lrs)  # what get_last_lr() and the LR monitor read

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.check(trainer.datamodule)
        for optimizer in trainer.optimizers:  # schedulers set it too; restarts need it without them
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        if trainer.max_epochs is not None and 0 <= trainer.max_epochs < self.total_epochs:
            log.warning(
                "trainer.max_epochs=%d stops before the curriculum ends (%d epochs)",
                trainer.max_epochs,
                self.total_epochs,
            )
        self._apply(trainer, trainer.current_epoch)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning restores a checkpoint's loops after on_fit_start, and a run resumed in the middle of an
        # epoch, or from a checkpoint written after an epoch's last batch, skips the on_train_epoch_start
        # of the epoch it goes on with: set that epoch's stage, and make its restart, here (before its
        # first batch is rendered)
        self._enter(trainer, trainer.current_epoch)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        self._enter(trainer, epoch)
        pl_module.log("curriculum/stage", float(self.stage_index), on_step=False, on_epoch=True)
        for name, value in self.data_level(self.stage_index).items():
            if isinstance(value, (int, float)):
                pl_module.log(f"curriculum/{name}", float(value), on_step=False, on_epoch=True)
            else:  # a range such as contrast [low, high]
                for bound, number in zip(("low", "high"), value, strict=True):
                    pl_module.log(f"curriculum/{name}_{bound}", float(number), on_step=False, on_epoch=True)

    def _enter(self, trainer: L.Trainer, epoch: int) -> None:
        """Set epoch ``epoch``'s stage and, if the epoch opens a stage with ``lr_restart``, restart the
        optimiser, once: not again when it was made already (in this process or before a checkpoint)."""
        self._apply(trainer, epoch)
        factor = self.stages[self.stage_index].get(LR_RESTART)
        opens = epoch == self.stage_start(self.stage_index)
        if factor is not None and opens and self.restarted_epoch != epoch:
            self.restart_learning_rate(trainer, float(factor))
            self.restarted_epoch = epoch
            log.info(
                "epoch %d: stage %d restarts the optimiser at %g x its initial LR",
                epoch,
                self.stage_index,
                factor,
            )
