"""Accuracy, macro F1 and the confusion matrix on each fixed test protocol (``data.test_protocols``)."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import Tensor  # noqa: E402
from torchmetrics import MetricCollection  # noqa: E402
from torchmetrics.classification import (  # noqa: E402
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
)

from stn_fovea.data.datamodule import TEST, NoisyMNIST  # noqa: E402
from stn_fovea.evaluation.evaluator import EvaluationContext, read_batch  # noqa: E402
from stn_fovea.evaluation.reference import REFERENCE_TABLES  # noqa: E402

FIGURE = "confusion_matrix.png"


def protocol_metrics(num_classes: int) -> MetricCollection:
    """The metrics of one test protocol, updated with (predicted classes, true classes). One process
    reads every test digit (after a DDP run, the first one alone): nothing to gather from the others."""
    alone = {"sync_on_compute": False}
    return MetricCollection(
        {
            "accuracy": MulticlassAccuracy(num_classes, average="micro", **alone),
            "f1_macro": MulticlassF1Score(num_classes, average="macro", **alone),
            "confusion_matrix": MulticlassConfusionMatrix(num_classes, **alone),
        }
    )


class ProtocolAccuracy:
    """Top-1 accuracy (the numbers of ``trainer.test``), macro F1 and the confusion matrix on all test
    digits of every test protocol, and for a model whose glimpse is a window the mean distance in pixels
    from its centre to the digit's centre (``gaze_error_px``). ``confusion_matrix.png`` draws one matrix
    per protocol, and the training run's TensorBoard gets the same figure.

    Args:
        reference: name of a table of published accuracies per model (``evaluation/reference.py``),
            copied beside ours into metrics.json; None for none.
        num_classes: classes of the task (10 digits).
    """

    def __init__(self, reference: str | None = None, num_classes: int = 10) -> None:
        if reference is not None and reference not in REFERENCE_TABLES:
            raise ValueError(f"unknown reference table {reference!r}; known: {sorted(REFERENCE_TABLES)}")
        self.reference = reference
        self.num_classes = num_classes

    def check(self, datamodule: NoisyMNIST) -> None:
        """Every dataset has test protocols: nothing to check."""

    def __call__(self, context: EvaluationContext) -> dict[str, Any]:
        datamodule, digits = context.datamodule, context.digits
        count = len(digits.labels)
        results: dict[str, dict[str, Any]] = {}
        gaze_error: dict[str, float] = {}
        for name, recipe in datamodule.test_recipes.items():
            source = f"{TEST}/{name}"
            task = context.progress.add_task(source, total=count) if context.progress else None
            metrics = protocol_metrics(self.num_classes)
            distances: list[Tensor] = []
            for start in range(0, count, context.batch_size):
                index = torch.arange(start, min(start + context.batch_size, count))
                keys = datamodule.sample_keys(source, index)
                reading = read_batch(context.module, recipe, digits, index, keys)
                metrics.update(reading.predicted, reading.label)
                if reading.gaze is not None:
                    distances.append((reading.gaze - reading.digit).norm(dim=-1))
                if context.progress is not None and task is not None:
                    context.progress.advance(task, len(index))
            results[name] = metrics.compute()
            if distances:
                gaze_error[name] = float(torch.cat(distances).mean())
        figure = plot_confusion_matrices(results, context.model_name)
        figure.savefig(context.out_dir / FIGURE, dpi=110)
        if context.tensorboard is not None:
            context.tensorboard.add_figure("eval/confusion_matrix", figure, context.global_step)
        plt.close(figure)
        result: dict[str, Any] = {
            "accuracy": {name: float(m["accuracy"]) for name, m in results.items()},
            "f1_macro": {name: float(m["f1_macro"]) for name, m in results.items()},
            # rows: true class, columns: predicted class (torchmetrics' convention)
            "confusion_matrix": {name: m["confusion_matrix"].tolist() for name, m in results.items()},
        }
        if gaze_error:  # a model whose glimpse is a window: how far its centre was from the digit's
            result["gaze_error_px"] = gaze_error
        published = REFERENCE_TABLES.get(self.reference or "", {}).get(context.model_name)
        if published:
            result["reference"] = published
        return result


def plot_confusion_matrices(results: dict[str, dict[str, Any]], model_name: str) -> Figure:
    """One confusion matrix (counts; rows true, columns predicted) per test protocol."""
    figure, axes = plt.subplots(1, len(results), figsize=(6.4 * len(results), 6.2), squeeze=False)
    for ax, (name, metrics) in zip(axes[0], results.items(), strict=True):
        MulticlassConfusionMatrix(len(metrics["confusion_matrix"])).plot(metrics["confusion_matrix"], ax=ax)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        accuracy, f1 = float(metrics["accuracy"]), float(metrics["f1_macro"])
        ax.set_title(f"{name}: accuracy {accuracy:.4f}, macro F1 {f1:.4f}", fontsize=9)
    figure.suptitle(f"{model_name}: test confusion matrices")
    figure.tight_layout()
    return figure
