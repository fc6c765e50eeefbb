"""Localisation networks: image -> feature vector. A transformer adds the pose head on top."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def flattened_size(features: nn.Module, in_channels: int, side: int) -> int:
    """Number of features ``features`` gives for one (in_channels, side, side) image."""
    with torch.no_grad():
        return features(torch.zeros(1, in_channels, side, side)).numel()


class TutorialLocalization(nn.Module):
    """The PyTorch STN tutorial's localisation net, used by the reference STN_28x28 (whatwhere.md 5.1).

    conv 1->8 k7, maxpool 2, ReLU; conv 8->10 k5, maxpool 2, ReLU; flatten; fc -> hidden, ReLU.

    Args:
        input_size: side of the square input in pixels (28 in the reference; sets the flatten size).
        hidden: width of the feature vector handed to the pose head (32 in the reference).
        coord_conv: make both convs :class:`CoordConv2d` (STN_challenge's CoordConv STN).
        with_radius: with ``coord_conv``, also give them the distance-to-centre channel.
    """

    def __init__(
        self,
        in_channels: int = 1,
        input_size: int = 28,
        hidden: int = 32,
        coord_conv: bool = False,
        with_radius: bool = False,
    ) -> None:
        super().__init__()

        def conv(inputs: int, outputs: int, kernel_size: int) -> nn.Module:
            if coord_conv:
                return CoordConv2d(inputs, outputs, kernel_size, with_radius=with_radius)
            return nn.Conv2d(inputs, outputs, kernel_size)

        self.features = nn.Sequential(
            conv(in_channels, 8, 7),
            nn.MaxPool2d(2, stride=2),
            nn.ReLU(True),
            conv(8, 10, 5),
            nn.MaxPool2d(2, stride=2),
            nn.ReLU(True),
        )
        flat = flattened_size(self.features, in_channels, input_size)
        self.fc = nn.Sequential(nn.Linear(flat, hidden), nn.ReLU(True))
        self.out_features = hidden

    def forward(self, image: Tensor) -> Tensor:
        return self.fc(self.features(image).flatten(1))


def conv_pool_relu(
    in_channels: int, out_channels: int, kernel_size: int, padding: int = 0, batch_norm: bool = False
) -> list[nn.Module]:
    """conv (optionally batch-normalised), maxpool 2, ReLU: the block every conv net here is made of."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=not batch_norm)
    norm: list[nn.Module] = [nn.BatchNorm2d(out_channels)] if batch_norm else []
    return [conv, *norm, nn.MaxPool2d(2, stride=2), nn.ReLU(True)]


class RetinaLocalization(nn.Module):
    """The 4-conv localisation net of STN_128x128, ATN (whatwhere.md 5.1): full resolution, no stride.

    conv 1->16 k7, conv 16->32 k5, conv 32->64 k5, conv 64->128 k5, each followed by maxpool 2 and ReLU
    (128 -> 122 -> 61 -> 57 -> 28 -> 24 -> 12 -> 8 -> 4); flatten 2048; fc -> hidden, ReLU.
    """

    def __init__(
        self,
        in_channels: int = 1,
        input_size: int = 128,
        channels: tuple[int, ...] = (16, 32, 64, 128),
        kernel_sizes: tuple[int, ...] = (7, 5, 5, 5),
        hidden: int = 32,
    ) -> None:
        super().__init__()
        if len(channels) != len(kernel_sizes):
            raise ValueError(f"one kernel size per conv layer: {channels} vs {kernel_sizes}")
        layers: list[nn.Module] = []
        for out_channels, kernel_size in zip(channels, kernel_sizes, strict=True):
            layers += conv_pool_relu(in_channels, out_channels, kernel_size)
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        flat = flattened_size(self.features, layers[0].in_channels, input_size)
        self.fc = nn.Sequential(nn.Linear(flat, hidden), nn.ReLU(True))
        self.out_features = hidden

    def forward(self, image: Tensor) -> Tensor:
        return self.fc(self.features(image).flatten(1))


def coordinate_channels(image: Tensor, with_radius: bool = False) -> Tensor:
    """The image with two more channels holding the row and column, each in [-1, 1] (CoordConv), and
    with ``with_radius`` a third: the distance from the image centre, sqrt(row^2 + col^2)."""
    batch, _, height, width = image.shape
    rows = torch.linspace(-1.0, 1.0, height, device=image.device, dtype=image.dtype)
    cols = torch.linspace(-1.0, 1.0, width, device=image.device, dtype=image.dtype)
    grid = torch.stack(torch.meshgrid(rows, cols, indexing="ij"))
    if with_radius:
        grid = torch.cat((grid, grid.pow(2).sum(0, keepdim=True).sqrt()))
    return torch.cat((image, grid.expand(batch, -1, height, width)), dim=1)


class CoordConv2d(nn.Module):
    """A conv that also reads coordinate channels (Liu et al. 2018): row, column and optionally the
    radius, made on the input's device and dtype, appended to its channels."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, with_radius: bool = False, **conv: Any
    ):
        super().__init__()
        self.with_radius = with_radius
        extra = 3 if with_radius else 2
        self.conv = nn.Conv2d(in_channels + extra, out_channels, kernel_size, **conv)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(coordinate_channels(x, self.with_radius))


class PeripheralLocalization(nn.Module):
    """A cheap localisation net that reads a low-resolution "peripheral" view of the image.

    The image is average-pooled by ``downsample`` (128 -> 64), optionally given CoordConv channels
    (row and column maps, so that position is explicit rather than inferred from zero padding), and read
    by small padded convs, each followed by maxpool 2 and ReLU; flatten; fc -> hidden, ReLU. The glimpse
    itself is still sampled from the full-resolution image by the transformer.

    Args:
        downsample: average-pooling factor of the peripheral view.
        channels: output channels of the conv layers (kernel 5 for the first, 3 for the others).
        coord_channels: add the CoordConv row/column channels.
        leaky_slope: negative slope of the hidden fc layer's activation; 0 is a ReLU. A ReLU here can
            die for every input (then the pose is the same for all images and never recovers).
        batch_norm: batch-normalise every conv. Without it, the default initialisation shrinks the
            image-dependent part of the features layer after layer (measured: the hidden features
            vary by ~1e-4 across images at the start), so the pose learns very slowly.
    """

    def __init__(
        self,
        in_channels: int = 1,
        input_size: int = 128,
        downsample: int = 2,
        channels: tuple[int, ...] = (16, 32, 32, 32),
        coord_channels: bool = True,
        hidden: int = 32,
        leaky_slope: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        if downsample < 1 or input_size % downsample:
            raise ValueError(f"downsample must divide input_size ({input_size}), got {downsample}")
        self.downsample, self.coord_channels = downsample, coord_channels
        layers: list[nn.Module] = []
        current = in_channels + (2 if coord_channels else 0)
        for index, out_channels in enumerate(channels):
            kernel_size = 5 if index == 0 else 3
            layers += conv_pool_relu(current, out_channels, kernel_size, kernel_size // 2, batch_norm)
            current = out_channels
        self.features = nn.Sequential(*layers)
        side = input_size // downsample
        flat = flattened_size(self.features, layers[0].in_channels, side)
        activation = nn.LeakyReLU(leaky_slope, inplace=True) if leaky_slope else nn.ReLU(True)
        self.fc = nn.Sequential(nn.Linear(flat, hidden), activation)
        self.out_features = hidden

    def forward(self, image: Tensor) -> Tensor:
        view = F.avg_pool2d(image, self.downsample) if self.downsample > 1 else image
        if self.coord_channels:
            view = coordinate_channels(view)
        return self.fc(self.features(view).flatten(1))
