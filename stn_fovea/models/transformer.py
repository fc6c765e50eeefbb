"""Spatial transformers and the glimpse classifier that every model is an instance of."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import torch
from torch import Tensor, nn

from stn_fovea.models.sampler import AffineSampler, glimpse_corners


@dataclass
class ModelOutput:
    """What a model returns. Every glimpse-like field carries a glimpse axis G (several glimpses).

    Attributes:
        logits: (B, classes) class scores of the final read-out.
        glimpses: (B, G, C, h, w) what the classifier read, in order.
        thetas: (B, G, 2, 3) the affine matrices that produced the glimpses (output -> input normalised
            coordinates, as ``affine_grid``); None for a model without a learned pose.
        windows: (B, G, 4, 2) pixel (x, y) corners of each glimpse in the input image (see
            :func:`~stn_fovea.models.sampler.glimpse_corners`); None when a glimpse is not a window.
        extras: anything else a model produces for its task or its figures (e.g. a predicted map).
    """

    logits: Tensor
    glimpses: Tensor
    thetas: Tensor | None = None
    windows: Tensor | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)


class Glimpse(NamedTuple):
    """One glimpse (B, C, h, w), its theta (B, 2, 3) or None, and its window's (B, 4, 2) pixel corners."""

    image: Tensor
    theta: Tensor | None
    window: Tensor


class Pose(Protocol):
    num_params: int

    def initial_params(self) -> Tensor: ...

    def __call__(self, params: Tensor) -> Tensor: ...


class SpatialTransformer(nn.Module):
    """localisation net -> linear pose head -> theta -> sampler.

    The pose head is created here, with zero weights and its bias at the pose's initial parameters, so
    that the first glimpse is the pose's starting point (identity for an affine STN).

    Args:
        localization: module mapping the image to a feature vector; must expose ``out_features``.
        pose: parametrisation turning head outputs into a (B, 2, 3) theta.
        sampler: samples the glimpse from the image.
    """

    def __init__(self, localization: nn.Module, pose: nn.Module, sampler: AffineSampler) -> None:
        super().__init__()
        self.localization, self.pose, self.sampler = localization, pose, sampler
        self.head = nn.Linear(int(localization.out_features), int(pose.num_params))
        nn.init.zeros_(self.head.weight)
        self.head.bias.data.copy_(pose.initial_params())

    def forward(self, image: Tensor) -> Glimpse:
        """image (B, C, H, W) -> the glimpse, theta (B, 2, 3) and the window it was read from."""
        theta = self.pose(self.head(self.localization(image)))
        window = glimpse_corners(theta.detach(), image.shape[-2:], self.sampler.align_corners)
        return Glimpse(self.sampler(image, theta), theta, window)


def crop_windows(image: Tensor, offsets: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """Exact-pixel crops: the (B, C, size, size) windows ``offsets`` (B, 2) (rows, cols) pixels away from
    the central crop of a (B, C, H, W) batch, and their (B, 4, 2) pixel (x, y) corners as
    :func:`~stn_fovea.models.sampler.glimpse_corners` orders them (outer edges of the corner pixels).
    A crop must lie inside the image."""
    batch, _, height, width = image.shape
    top = offsets[:, 0] + (height - size) // 2
    left = offsets[:, 1] + (width - size) // 2
    if bool(
        (top < 0).any() or (left < 0).any() or (top + size > height).any() or (left + size > width).any()
    ):
        raise ValueError(f"a {size} px crop at offsets {offsets.tolist()} leaves the {height}x{width} image")
    steps = torch.arange(size, device=image.device)
    rows = (top.unsqueeze(1) + steps).view(batch, size, 1)
    cols = (left.unsqueeze(1) + steps).view(batch, 1, size)
    # advanced indices around the channel slice put the channels last: (B, size, size, C)
    crops = image[torch.arange(batch, device=image.device).view(batch, 1, 1), :, rows, cols]
    crops = crops.permute(0, 3, 1, 2)
    low_x, low_y = left.float() - 0.5, top.float() - 0.5
    high_x, high_y = low_x + size, low_y + size
    corners = torch.stack(
        (
            torch.stack((low_x, low_y), 1),
            torch.stack((high_x, low_y), 1),
            torch.stack((high_x, high_y), 1),
            torch.stack((low_x, high_y), 1),
        ),
        dim=1,
    )
    return crops, corners


class CentralGlimpse(nn.Module):
    """A fixed glimpse: the central ``size`` x ``size`` crop, exact pixels (no resampling).

    It makes the What baseline readable on large images: at 128x128 it is the What/Where study's
    0-saccade control (rows and columns 50:78); on a 28x28 image it is the image itself.
    """

    def __init__(self, size: int = 28) -> None:
        super().__init__()
        if size < 1:
            raise ValueError(f"size must be a positive number of pixels, got {size}")
        self.size = size

    def forward(self, image: Tensor) -> Glimpse:
        height, width = image.shape[-2:]
        if height < self.size or width < self.size:
            raise ValueError(f"a central {self.size} px glimpse needs a larger image, got {height}x{width}")
        centre = torch.zeros(len(image), 2, dtype=torch.int64, device=image.device)
        crop, corners = crop_windows(image, centre, self.size)
        return Glimpse(crop, None, corners)


class GlimpseClassifier(nn.Module):
    """A spatial transformer (or a fixed central glimpse) followed by a classifier on its glimpse.

    Args:
        classifier: reads the glimpse, returns logits.
        transformer: a :class:`SpatialTransformer`, a :class:`CentralGlimpse`, or None (the classifier
            reads the input itself).
    """

    def __init__(
        self, classifier: nn.Module, transformer: SpatialTransformer | CentralGlimpse | None = None
    ) -> None:
        super().__init__()
        self.classifier, self.transformer = classifier, transformer

    def localization_parameters(self) -> list[nn.Parameter]:
        """The parameters that decide where to look (an optimiser may give them their own LR)."""
        return list(self.transformer.parameters()) if self.transformer is not None else []

    def forward(self, image: Tensor) -> ModelOutput:
        if self.transformer is None:
            return ModelOutput(self.classifier(image), image.unsqueeze(1))
        glimpse = self.transformer(image)
        return ModelOutput(
            self.classifier(glimpse.image),
            glimpse.image.unsqueeze(1),
            None if glimpse.theta is None else glimpse.theta.unsqueeze(1),
            glimpse.window.unsqueeze(1),
        )
