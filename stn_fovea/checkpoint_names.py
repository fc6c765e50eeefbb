"""The names of a run's checkpoints and of the weights they hold, without torch or Lightning, so that
``compare`` can name the weights behind every row without importing them."""

from __future__ import annotations

from pathlib import Path

LAST = "last.ckpt"  # written at the end of every epoch (conf/callbacks/default.yaml: latest_checkpoint)
ON_EXCEPTION = "on_exception.ckpt"  # written when a run stops on an error or a signal (on_exception)

FINAL, BEST_VAL = "final", "best val"  # the weights a row of a table measures
SCORES = {"best": BEST_VAL, "final": FINAL}  # the run's `score` setting -> the weights it measures
# the best validation checkpoint of a run validated on the test digits (data.val_size=0, as the reference
# protocol does): its test numbers were picked on the digits they score, and say so
BEST_ON_TEST = "best on test digits"


def picked_on(weights: str | None, val_size: int | None) -> str | None:
    """``weights`` as tables name them, given the run's ``data.val_size``: "best val" becomes "best on
    test digits" where the validation digits were the test digits (val_size 0)."""
    return BEST_ON_TEST if weights == BEST_VAL and val_size == 0 else weights


def weights_of(checkpoint_path: str | None, recorded: str | None = None) -> str | None:
    """Which weights an evaluated checkpoint holds, as tables name them: ``recorded`` (metrics.json's or
    a zoo file's ``weights``) when given, else "final" for last.ckpt (the weights after the last epoch)
    and "best val" for the best-*.ckpt of the checkpoint callback; None when nothing says."""
    if recorded:
        return recorded
    name = Path(str(checkpoint_path or "")).name
    if name == LAST:
        return FINAL
    return BEST_VAL if name.startswith("best-") else None
