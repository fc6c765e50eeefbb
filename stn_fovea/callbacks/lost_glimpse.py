"""Stop a run whose glimpses have all left the image: it can no longer learn where to look."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import Callback

from stn_fovea.errors import UserError
from stn_fovea.models.module import ON_IMAGE as METRIC  # GlimpseModule logs it


class LostGlimpseError(UserError):
    """Every glimpse of a training epoch (at one glimpse index) was read wholly off the image."""


class StopOnLostGlimpse(Callback):
    """Raise :class:`LostGlimpseError` at the end of a training epoch in which no window of a glimpse
    (of one glimpse index, for a model that takes several) read the image.

    Such a glimpse reads only the sampler's padding (zeros, or the repeated border), so neither the
    classifier nor the pose gets a gradient that could bring it back: the run would train at chance
    to its last epoch (our peripheral ATN did so for 107 epochs). The raised error stops the run;
    ``ExceptionCheckpoint`` saves a checkpoint, and in a sweep only this job fails. Models without
    glimpse windows, and samplers with reflection padding (which mirrors the image into every window),
    log no share and are never stopped.
    """

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        lost = [
            name
            for name, share in trainer.callback_metrics.items()
            if (name == METRIC or name.startswith(METRIC + "/")) and float(share) == 0.0
        ]
        if lost:
            raise LostGlimpseError(
                f"every glimpse of epoch {trainer.current_epoch} was read wholly off the image ({lost[0]} "
                "= 0): the localisation gets no gradient there and cannot recover. Lower the localisation's "
                "learning rate (model.localization_lr_scale=0.1), or, with a TranslationPose, bound its "
                "shift (model.net.transformer.pose.max_shift=<1 - its scale>)."
            )
