"""Spatial transformers and the glimpse classifier that every model is an instance of."""

from __future__ import annotations

from typing import NamedTuple, Protocol

from torch import Tensor, nn

from stn_fovea.models.sampler import AffineSampler


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

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """image (B, C, H, W) -> (glimpse, theta (B, 2, 3))."""
        theta = self.pose(self.head(self.localization(image)))
        return self.sampler(image, theta), theta


class GlimpseOutput(NamedTuple):
    """Logits (B, classes), the glimpse the classifier read, and theta (B, 2, 3) or None."""

    logits: Tensor
    glimpse: Tensor
    theta: Tensor | None


class GlimpseClassifier(nn.Module):
    """An optional spatial transformer followed by a classifier on its glimpse.

    With ``transformer=None`` the classifier reads the input itself (the "What" baseline).
    """

    def __init__(self, classifier: nn.Module, transformer: SpatialTransformer | None = None) -> None:
        super().__init__()
        self.classifier, self.transformer = classifier, transformer

    def forward(self, image: Tensor) -> GlimpseOutput:
        if self.transformer is None:
            return GlimpseOutput(self.classifier(image), image, None)
        glimpse, theta = self.transformer(image)
        return GlimpseOutput(self.classifier(glimpse), glimpse, theta)
