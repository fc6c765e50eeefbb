"""The evaluation of one trained model: a list of evaluators, each writing its files and metrics.

Evaluators are listed in config like callbacks (``conf/evaluators``; a dataset names its own set in its
defaults). Each one is a class with ``check(datamodule)`` (run before training, so that a bad setting
stops the run at once) and ``__call__(context) -> dict`` (its entries go into ``metrics.json``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text
from torch import Tensor
from torch.utils.tensorboard import SummaryWriter

from stn_fovea.data.datamodule import NoisyMNIST
from stn_fovea.data.mnist import Digits
from stn_fovea.data.recipe import Recipe
from stn_fovea.errors import ConfigError, short_reason
from stn_fovea.models.module import GlimpseModule


@dataclass
class EvaluationContext:
    """What every evaluator reads: the model in eval mode, the data, the test digits, where to write."""

    module: GlimpseModule
    datamodule: NoisyMNIST
    digits: Digits
    out_dir: Path
    model_name: str
    progress: Progress | None = None
    tensorboard: SummaryWriter | None = None  # the training run's writer: evaluators add figures to it
    global_step: int = 0

    @property
    def batch_size(self) -> int:
        return self.datamodule.eval_batch_size

    @property
    def seed(self) -> int:
        return self.datamodule.seed


class Evaluator(Protocol):
    def check(self, datamodule: NoisyMNIST) -> None: ...

    def __call__(self, context: EvaluationContext) -> dict[str, Any]: ...


def build_evaluators(
    node: DictConfig | Mapping[str, Any] | None, datamodule: NoisyMNIST
) -> dict[str, Evaluator]:
    """Instantiate the ``evaluators`` config node (name -> evaluator) and check each against the data,
    so that a bad setting is a ConfigError before any training or measuring."""
    evaluators: dict[str, Evaluator] = {}
    for name, settings in (node or {}).items():
        if not settings:
            continue  # an evaluator switched off with evaluators.<name>=null
        try:
            evaluators[str(name)] = instantiate(settings)
        except InstantiationException as error:
            raise ConfigError(f"evaluators.{name}: {short_reason(error)}") from error
        evaluators[str(name)].check(datamodule)
    return evaluators


class Reading(NamedTuple):
    """One batch as a model read it.

    Attributes:
        correct: (B,) bool, which digits it named right.
        gaze: (B, 2) where its last glimpse looked: the (x, y) offset in pixels of that window's centre
            from the image centre; None for a model whose glimpse is not a window.
        digit: (B, 2) the (x, y) offset in pixels of each digit's centre from the image centre.
        predicted: (B,) the class it named; label: (B,) the true class.

    The image centre is ((W - 1) / 2, (H - 1) / 2), where the recipes put a digit with no offset when
    the image size minus 28 is even (the sizes 28 and 128 of our datasets).
    """

    correct: Tensor
    gaze: Tensor | None
    digit: Tensor
    predicted: Tensor
    label: Tensor


def _reading(
    logits: Tensor, windows: Tensor | None, labels: Tensor, digit: Tensor, size: tuple[int, int]
) -> Reading:
    """A :class:`Reading` from one glimpse's logits (B, classes) and window corners (B, 4, 2) or None."""
    gaze = None
    if windows is not None:
        height, width = size
        centre = torch.tensor([(width - 1) / 2, (height - 1) / 2])  # pixel centres run 0 .. size - 1
        gaze = windows.mean(dim=1).float().cpu() - centre
    predicted = logits.argmax(1).cpu()
    return Reading(predicted == labels, gaze, digit, predicted, labels)


def _render(
    module: GlimpseModule,
    recipe: Recipe,
    digits: Digits,
    index: Tensor,
    keys: Tensor,
    shifts: Tensor | None,
    draws: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Images rendered on the module's device, and each digit's (x, y) offset from the centre."""
    device = module.device
    scene = recipe.sample((keys if draws is None else draws).to(device))._replace(keys=keys.to(device))
    if shifts is not None:
        scene = scene._replace(shifts=shifts.to(device))
    images = recipe.render(digits.images[index].to(device), scene)
    return images, scene.shifts.cpu().flip(-1).float()  # (rows, cols) -> (x, y)


@torch.no_grad()
def read_batch(
    module: GlimpseModule,
    recipe: Recipe,
    digits: Digits,
    index: Tensor,
    keys: Tensor,
    shifts: Tensor | None = None,
    draws: Tensor | None = None,
) -> Reading:
    """Render digits ``index`` with ``recipe`` from ``keys`` and let the model read them.

    ``shifts`` (B, 2), when given, replaces the sampled digit offsets (the scene is otherwise the same).
    ``draws``, when given, are the keys of each digit's own draws (its placement and contrast), and
    ``keys`` then seed only the noise.
    """
    images, digit = _render(module, recipe, digits, index, keys, shifts, draws)
    output = module(images)
    windows = None if output.windows is None else output.windows[:, -1]
    return _reading(output.logits, windows, digits.labels[index], digit, images.shape[-2:])


@torch.no_grad()
def read_saccades(
    module: GlimpseModule,
    recipe: Recipe,
    digits: Digits,
    index: Tensor,
    keys: Tensor,
    saccades: int,
    draws: Tensor | None = None,
) -> list[Reading]:
    """As :func:`read_batch` for a model that saccades (What/Where): one reading after each of 0 ..
    ``saccades`` saccades, from one run of ``saccades``, so the readings of a digit are paired (the
    answer after k saccades does not depend on the later ones)."""
    images, digit = _render(module, recipe, digits, index, keys, None, draws)
    output = module(images, saccades=saccades)
    labels, size = digits.labels[index], images.shape[-2:]
    logits = output.extras["saccade_logits"]
    assert output.windows is not None
    return [_reading(logits[:, k], output.windows[:, k], labels, digit, size) for k in range(saccades + 1)]


class RateColumn(ProgressColumn):
    """Images per second of a task (rich's estimate over its last 30 s)."""

    def render(self, task: Task) -> Text:
        return Text("" if task.speed is None else f"{task.speed:,.0f} images/s")


@contextmanager
def progress_bar() -> Iterator[Progress]:
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeRemainingColumn(),
    ) as progress:
        yield progress


def evaluate_model(
    module: GlimpseModule,
    datamodule: NoisyMNIST,
    evaluators: Mapping[str, Evaluator],
    out_dir: Path,
    model_name: str,
    checkpoint: str | None = None,
    run_info: Mapping[str, Any] | None = None,
    tensorboard: SummaryWriter | None = None,
    global_step: int = 0,
    channels_last: bool = False,
) -> dict[str, Any]:
    """Run every evaluator (built by :func:`build_evaluators`) on the datamodule's fixed test digits;
    write and return metrics.json. ``run_info`` (the run's seed, experiment and training noise) and the
    training contrast are written too: ``compare`` groups runs by them. ``tensorboard``, the training
    run's writer, also receives the evaluators' figures (at ``global_step``). ``channels_last`` computes
    the model's convolutions in NHWC memory format (over 2x faster on a CPU for the 128x128 localisation
    nets; the numbers agree to float rounding). The random numbers a model draws while it reads (What/
    Where's dropout at evaluation) are seeded with the data seed: the same weights measure the same
    numbers at the end of training and in ``stn_fovea.evaluate``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(datamodule.seed)
    module.eval()
    if channels_last:
        module.to(memory_format=torch.channels_last)
    digits = datamodule.test_digits
    recipe = datamodule.train_recipe
    metrics: dict[str, Any] = {
        "model": model_name,
        "checkpoint": checkpoint,
        "noise": recipe.noise,
        **dict(run_info or {}),
        "train_contrast": list(recipe.contrast),  # type: ignore[attr-defined]
        "data_seed": datamodule.seed,
        "test_digits": len(digits.labels),
        "channels_last": channels_last,
    }
    with progress_bar() as progress:
        context = EvaluationContext(
            module, datamodule, digits, out_dir, model_name, progress, tensorboard, global_step
        )
        for evaluator in evaluators.values():
            metrics.update(evaluator(context))
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics
