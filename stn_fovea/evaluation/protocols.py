"""Accuracy on each fixed test protocol of the dataset (``data.test_protocols``)."""

from __future__ import annotations

from typing import Any

import torch

from stn_fovea.data.datamodule import TEST, NoisyMNIST
from stn_fovea.evaluation.evaluator import EvaluationContext, read_batch
from stn_fovea.evaluation.reference import REFERENCE_TABLES


class ProtocolAccuracy:
    """Top-1 accuracy on all test digits of every test protocol: the numbers of ``trainer.test``.

    Args:
        reference: name of a table of published accuracies per model (``evaluation/reference.py``),
            copied beside ours into metrics.json; None for none.
    """

    def __init__(self, reference: str | None = None) -> None:
        if reference is not None and reference not in REFERENCE_TABLES:
            raise ValueError(f"unknown reference table {reference!r}; known: {sorted(REFERENCE_TABLES)}")
        self.reference = reference

    def check(self, datamodule: NoisyMNIST) -> None:
        """Every dataset has test protocols: nothing to check."""

    def __call__(self, context: EvaluationContext) -> dict[str, Any]:
        datamodule, digits = context.datamodule, context.digits
        count = len(digits.labels)
        accuracy: dict[str, float] = {}
        for name, recipe in datamodule.test_recipes.items():
            source = f"{TEST}/{name}"
            task = context.progress.add_task(source, total=count) if context.progress else None
            correct = 0
            for start in range(0, count, context.batch_size):
                index = torch.arange(start, min(start + context.batch_size, count))
                keys = datamodule.sample_keys(source, index)
                correct += int(read_batch(context.module, recipe, digits, index, keys).correct.sum())
                if context.progress is not None and task is not None:
                    context.progress.advance(task, len(index))
            accuracy[name] = correct / count
        result: dict[str, Any] = {"accuracy": accuracy}
        published = REFERENCE_TABLES.get(self.reference or "", {}).get(context.model_name)
        if published:
            result["reference"] = published
        return result
