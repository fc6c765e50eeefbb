"""Foveated convolutions (Harris, Niranjan & Hare 2019; stn-literature.md 1.5) and the classifier that
reads an STN's glimpse with one, or with a plain convolution as the control.

A foveated convolution runs parallel branches over nested centre crops of its input, each at a finer
resolution than the last, and brings them all to half the input's side: the whole input through a
stride-2 conv; its central half at full resolution; its central quarter upsampled 2x; its central
eighth upsampled 4x (for ``levels=4``). The branches' maps are concatenated. The centre is seen in more
detail than the periphery, so the layer is not translation-invariant: the claim is that this gives
the transformer a reason to centre the object.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from stn_fovea.errors import ConfigError


class FoveatedConv2d(nn.Module):
    """Parallel convs over nested centre crops, all brought to ``size // 2`` and concatenated.

    Args:
        in_channels, out_channels: channels in and out; out_channels is split evenly over the levels.
        size: side of the (square) input in pixels; divisible by 2 ** levels.
        levels: number of nested crops (the whole input, then halves).
    """

    def __init__(self, in_channels: int, out_channels: int, size: int, levels: int = 4) -> None:
        super().__init__()
        if levels < 1 or out_channels % levels or size % 2**levels:
            raise ConfigError(
                f"a foveated conv needs out_channels ({out_channels}) divisible by levels ({levels}) and "
                f"an input side ({size}) divisible by 2 ** levels"
            )
        self.size, per_level = size, out_channels // levels
        branches: list[nn.Module] = [nn.Conv2d(in_channels, per_level, 3, stride=2, padding=1)]
        for level in range(1, levels):
            conv = nn.Conv2d(in_channels, per_level, 3, padding=1)
            factor = 2 ** (level - 1)
            if factor > 1:  # the crop is 2 ** (level - 1) times smaller than the output: upsample it
                branches.append(nn.Sequential(conv, nn.ConvTranspose2d(per_level, per_level, factor, factor)))
            else:
                branches.append(conv)
        self.branches = nn.ModuleList(branches)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-2:] != (self.size, self.size):
            raise ValueError(f"FoveatedConv2d reads {self.size}px inputs, got {tuple(x.shape[-2:])}")
        maps = [self.branches[0](x)]
        for level, branch in enumerate(self.branches[1:], start=1):
            side = self.size // 2**level
            start = (self.size - side) // 2
            maps.append(branch(x[..., start : start + side, start : start + side]))
        return torch.cat(maps, dim=1)


class FoveaNet(nn.Module):
    """The glimpse classifier: a first layer (foveated, or a plain stride-2 conv as the control), then
    conv blocks and global average pooling, so that everything after the first layer is translation
    invariant (the setting Harris et al. diagnose), and a linear read-out.

    first layer (32) -> ReLU -> [conv 3x3 (64), ReLU, maxpool 2] x 2 -> global average -> fc 10.
    Input (B, 1, size, size).
    """

    def __init__(
        self,
        size: int = 48,
        foveated: bool = True,
        in_channels: int = 1,
        first_channels: int = 32,
        channels: tuple[int, ...] = (64, 64),
        levels: int = 4,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        self.size = size
        self.first: nn.Module = (
            FoveatedConv2d(in_channels, first_channels, size, levels)
            if foveated
            else nn.Conv2d(in_channels, first_channels, 3, stride=2, padding=1)
        )
        layers: list[nn.Module] = [nn.ReLU(inplace=True)]
        current = first_channels
        for out_channels in channels:
            layers += [nn.Conv2d(current, out_channels, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            current = out_channels
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.readout = nn.Linear(current, num_classes)

    def forward(self, glimpse: Tensor) -> Tensor:
        if glimpse.shape[-2:] != (self.size, self.size):
            raise ValueError(f"FoveaNet reads {self.size}px glimpses, got {tuple(glimpse.shape[-2:])}")
        return self.readout(self.body(self.first(glimpse)))
