"""TensorBoard's HPARAMS tab: each run's hyper-parameters beside its final metrics, so that the runs of
a sweep can be sorted and compared there (`tensorboard --logdir <sweep dir>`).

TensorBoard lists a metric in that tab only if the run declared it with its hyper-parameters, at the
first ``TensorBoardLogger.log_hyperparams(params, metrics)`` call, and shows the last value logged under
that tag. So a run declares its final metrics at the start with NaN ("no result yet": a run stopped
early or a failed sweep job keeps it) and logs their values under the same tags after
``trainer.test``. The tags start with ``hp/``, apart from the training curves:

- ``hp/sweep_metric``: the value a sweep optimises (the task's ``sweep_metric``, one of the test
  metrics), under one name whatever the data's headline protocol;
- ``hp/<monitor>_best``: the best score of the checkpoint that the run tests, e.g. ``hp/val/acc_best``;
- ``hp/test/<protocol>/<metric>``: what ``trainer.test`` measured on each fixed test set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from lightning.pytorch.loggers import Logger, TensorBoardLogger

PREFIX = "hp/"
SWEEP_METRIC = "sweep_metric"


def final_metric_names(test_metrics: Iterable[str], monitor: str | None) -> list[str]:
    """The names of a run's final metrics: the sweep metric, ``<monitor>_best`` (when a checkpoint
    monitors a metric) and the test metrics, e.g. ``sweep_metric, val/acc_best, test/general/acc``."""
    best = [f"{monitor}_best"] if monitor else []
    return [SWEEP_METRIC, *best, *sorted(test_metrics)]


def final_metric_values(
    test_metrics: Mapping[str, float], sweep_metric: str, monitor: str | None, best_score: float | None
) -> dict[str, float]:
    """The final metrics of :func:`final_metric_names` that the run measured (one without a value keeps
    its NaN): the test metrics, the sweep metric's value and the checkpoint's best ``monitor`` score."""
    values = dict(test_metrics)
    if sweep_metric in test_metrics:
        values[SWEEP_METRIC] = test_metrics[sweep_metric]
    if monitor and best_score is not None:
        values[f"{monitor}_best"] = best_score
    return values


def declare_final_metrics(loggers: Iterable[Logger], params: Mapping[str, Any], names: Iterable[str]) -> None:
    """Log the hyper-parameters ``params`` to every logger; a TensorBoard logger also declares the final
    metrics ``names`` (as ``hp/<name>``, NaN until :func:`log_final_metrics`)."""
    placeholders = {PREFIX + name: float("nan") for name in names}
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(dict(params), metrics=placeholders)
        else:  # CSVLogger.log_hyperparams takes no metrics
            logger.log_hyperparams(dict(params))


def log_final_metrics(loggers: Iterable[Logger], values: Mapping[str, float], step: int) -> dict[str, float]:
    """Log the final ``values`` (name -> value) as ``hp/<name>`` scalars at ``step`` to every logger and
    write them out now; returns what was logged."""
    tagged = {PREFIX + name: float(value) for name, value in values.items()}
    for logger in loggers:
        logger.log_metrics(tagged, step=step)
        logger.save()
    return tagged
