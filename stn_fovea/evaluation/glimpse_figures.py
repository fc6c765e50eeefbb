"""Pictures of where a model looks: test inputs beside their glimpses, and the glimpses' windows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from stn_fovea.data.counter_rng import sample_keys
from stn_fovea.data.datamodule import NoisyMNIST
from stn_fovea.data.recipe import Recipe
from stn_fovea.errors import ConfigError
from stn_fovea.evaluation.evaluator import EvaluationContext
from stn_fovea.evaluation.figures import plot_glimpse_boxes, plot_glimpses


class GlimpseFigures:
    """Writes glimpses.png (inputs beside the last glimpse) and, for models whose glimpses are windows,
    glimpse_boxes.png (the first eight inputs with every glimpse's outline).

    Args:
        protocol: the test protocol to draw from; None = the training recipe as configured.
        changes: recipe changes on top of it, e.g. ``{radius_px: 40, contrast: 0.7}`` (digits far from
            the centre, the hardest place to find them).
        num_images: test digits drawn.
    """

    BOXES_SHOWN = 8

    def __init__(
        self, protocol: str | None = None, changes: Mapping[str, Any] | None = None, num_images: int = 16
    ) -> None:
        if num_images < 1:
            raise ConfigError(f"evaluators.glimpses.num_images must be >= 1, got {num_images}")
        self.protocol, self.changes, self.num_images = protocol, dict(changes or {}), num_images

    def _recipe(self, datamodule: NoisyMNIST) -> Recipe:
        if self.protocol is not None and self.protocol not in datamodule.test_recipes:
            raise ConfigError(
                f"evaluators.glimpses.protocol={self.protocol!r} is not a test protocol; choose one of "
                f"{sorted(datamodule.test_recipes)} or null"
            )
        base = datamodule.test_recipes[self.protocol] if self.protocol else datamodule.train_recipe
        return base.with_level(**self.changes)

    def check(self, datamodule: NoisyMNIST) -> None:
        self._recipe(datamodule)

    @torch.no_grad()
    def __call__(self, context: EvaluationContext) -> dict[str, Any]:
        recipe = self._recipe(context.datamodule)
        device = context.module.device
        index = torch.arange(min(self.num_images, len(context.digits.labels)))
        keys = sample_keys(index, context.seed, "test", "figure", *recipe.level)
        images = recipe(context.digits.images[index].to(device), keys.to(device)).images
        output = context.module(images)
        where = self.protocol or "training recipe"
        changed = ", ".join(f"{name} {value}" for name, value in self.changes.items())
        setting = f"{where}{', ' + changed if changed else ''}"
        name, out_dir = context.model_name, context.out_dir
        plot_glimpses(
            images.cpu(), output.glimpses[:, -1].cpu(), out_dir / "glimpses.png", f"{name}: {setting}"
        )
        if output.windows is not None:
            shown = self.BOXES_SHOWN
            plot_glimpse_boxes(
                images[:shown].cpu(),
                output.glimpses[:shown, -1].cpu(),
                output.windows[:shown].cpu(),
                out_dir / "glimpse_boxes.png",
                f"{name}: test digits ({setting}) and the glimpses read",
            )
        return {}
