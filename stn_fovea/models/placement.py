"""Where a spatial transformer sits in a CNN (Finnveden, Jansson & Lindeberg 2021; stn-literature.md 1.2).

The classifier is Jaderberg et al.'s ST-CNN: conv blocks (conv, maxpool 2, ReLU) and a linear read-out.
The transformer is placed after block X of it, in one of four ways:

- ``c`` with X = 0 (STN-C0): the localisation net reads the input and the transformer warps the input;
- ``c`` with X > 0 (STN-CX): it reads and warps the feature map after block X;
- ``dl`` (STN-DLX): it warps the input, and its localisation net begins with its own copies of the first
  X classifier blocks ("deeper localisation");
- ``sl`` (STN-SLX): as DLX, but those X blocks are the classifier's own ("shared localisation");
- ``none`` (Jaderberg et al.'s CNN, the baseline): no localisation net; the identity "transform" only
  resamples the input by ``downsample``, as every placement's sampler does, so the baseline reads what
  an untrained transformer would.

``iterations`` > 1 (input-space placements) predicts a transform from the input as currently warped,
composes it with the previous one (3x3 homogeneous product) and always resamples the original input.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stn_fovea.errors import ConfigError
from stn_fovea.models.localization import conv_pool_relu, flattened_size
from stn_fovea.models.pose import AffinePose
from stn_fovea.models.sampler import AffineSampler, glimpse_corners
from stn_fovea.models.transformer import ModelOutput

PLACEMENTS = ("c", "dl", "sl", "none")


def conv_block(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    """conv (same padding), maxpool 2, ReLU: one block of the ST-CNN."""
    return nn.Sequential(*conv_pool_relu(in_channels, out_channels, kernel_size, kernel_size // 2))


class LocalizationHead(nn.Module):
    """The localisation net after its input (image or features): conv 5x5 blocks, fc, ReLU, and the
    pose head, zero-weighted with its bias at the identity (Jaderberg et al.: conv 20, conv 20, fc 20).

    Args:
        in_channels, side: the input's channels and side in pixels (fixes the flatten size).
        channels: output channels of the conv blocks.
        hidden: width of the fc layer.
        downsample: average-pool the input by this factor first (the C0 localisation reads the image
            at half resolution).
    """

    def __init__(
        self,
        in_channels: int,
        side: int,
        channels: Sequence[int] = (20, 20),
        hidden: int = 20,
        downsample: int = 1,
    ) -> None:
        super().__init__()
        self.downsample, self.pose = downsample, AffinePose()
        blocks, current = [], in_channels
        for out_channels in channels:
            blocks.append(conv_block(current, out_channels, 5))
            current = out_channels
        self.features = nn.Sequential(*blocks)
        flat = flattened_size(self.features, in_channels, max(1, side // downsample))
        self.fc = nn.Sequential(nn.Linear(flat, hidden), nn.ReLU(inplace=True))
        self.head = nn.Linear(hidden, self.pose.num_params)
        nn.init.zeros_(self.head.weight)
        self.head.bias.data.copy_(self.pose.initial_params())

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, side, side) -> theta (B, 2, 3)."""
        if self.downsample > 1:
            x = F.avg_pool2d(x, self.downsample)
        return self.pose(self.head(self.fc(self.features(x).flatten(1))))


def compose(first: Tensor, then: Tensor) -> Tensor:
    """The output -> input map of warping by ``first`` and then by ``then`` (both (B, 2, 3)): an output
    point goes through ``then`` to a point of the once-warped image, and through ``first`` to the input."""
    bottom = torch.tensor([0.0, 0.0, 1.0], device=first.device, dtype=first.dtype).expand(len(first), 1, 3)
    return (torch.cat((first, bottom), 1) @ torch.cat((then, bottom), 1))[:, :2]


class PlacedSTN(nn.Module):
    """The ST-CNN classifier with a spatial transformer placed as the module docstring says.

    Args:
        placement: "c" (C0 / CX), "dl" (DLX), "sl" (SLX) or "none" (the CNN without a transformer).
        layer: X, the number of classifier blocks before the transformer (c) or in its localisation net
            (dl, sl); 0 <= X <= len(channels), X >= 1 for dl and sl, X = 0 for none.
        input_size: side of the input images in pixels.
        in_channels: channels of the input images.
        channels, kernel_sizes: the classifier's conv blocks (Jaderberg et al.: 64 9x9, 64 7x7).
        downsample: the transformer's output is this many times smaller than what it warps (2 for the
            cluttered and RTS data in Jaderberg et al.).
        iterations: input-space placements only: how many transforms are predicted and composed.
        loc_channels, loc_hidden: the localisation head (conv 5x5 blocks, fc).
        padding_mode: the sampler's value outside the warped image.
        num_classes: classes of the read-out.
    """

    def __init__(
        self,
        placement: str = "c",
        layer: int = 0,
        input_size: int = 28,
        in_channels: int = 1,
        channels: Sequence[int] = (64, 64),
        kernel_sizes: Sequence[int] = (9, 7),
        downsample: int = 1,
        iterations: int = 1,
        loc_channels: Sequence[int] = (20, 20),
        loc_hidden: int = 20,
        padding_mode: str = "zeros",
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        if placement not in PLACEMENTS:
            raise ConfigError(f"placement must be one of {PLACEMENTS}, got {placement!r}")
        if len(channels) != len(kernel_sizes) or not channels:
            raise ConfigError(f"one kernel size per conv block: channels {channels}, kernels {kernel_sizes}")
        if placement == "none" and (layer != 0 or iterations != 1):
            raise ConfigError(
                f"placement 'none' has no transformer: layer=0 and iterations=1, got {layer}, {iterations}"
            )
        if not 0 <= layer <= len(channels) or (placement in ("dl", "sl") and layer < 1):
            raise ConfigError(
                f"layer={layer} must lie in [{0 if placement == 'c' else 1}, {len(channels)}] for placement "
                f"{placement!r} (the classifier has {len(channels)} conv blocks)"
            )
        if iterations < 1 or (iterations > 1 and placement == "c" and layer > 0):
            raise ConfigError(f"iterations={iterations}: >= 1, and 1 for a feature-map transformer (c, X>0)")
        if downsample < 1 or input_size % downsample:
            raise ConfigError(f"downsample={downsample} must divide input_size={input_size}")
        self.placement, self.layer, self.iterations = placement, layer, iterations
        self.input_size, self.downsample = input_size, downsample
        blocks, current = [], in_channels
        for out_channels, kernel_size in zip(channels, kernel_sizes, strict=True):
            blocks.append(conv_block(current, out_channels, kernel_size))
            current = out_channels
        self.blocks = nn.ModuleList(blocks)
        self.sampler = AffineSampler(padding_mode=padding_mode)
        # what the localisation net reads: the input (C0), or the features after X blocks
        loc_in_channels = in_channels if layer == 0 else channels[layer - 1]
        loc_side = input_size // 2**layer  # each block halves the side
        self.copies = copy.deepcopy(self.blocks[:layer]) if placement == "dl" else None
        self.localization = (
            None
            if placement == "none"
            else LocalizationHead(
                loc_in_channels, loc_side, loc_channels, loc_hidden, downsample=2 if layer == 0 else 1
            )
        )
        with torch.no_grad():
            flat = self._features(torch.zeros(1, in_channels, input_size, input_size))[0].numel()
        self.readout = nn.Linear(flat, num_classes)

    def localization_parameters(self) -> list[nn.Parameter]:
        """The parameters that only decide where to look (SLX's shared blocks are the classifier's)."""
        copies = list(self.copies.parameters()) if self.copies is not None else []
        head = list(self.localization.parameters()) if self.localization is not None else []
        return copies + head

    def _locate(self, view: Tensor) -> Tensor:
        """theta from an input-space view: through the copies (DLX), the shared blocks (SLX) or none
        (C0); the identity without a transformer."""
        if self.localization is None:
            return AffinePose().initial_params().view(1, 2, 3).expand(len(view), 2, 3).to(view)
        if self.placement == "dl":
            assert self.copies is not None
            for block in self.copies:
                view = block(view)
        elif self.placement == "sl":
            for block in self.blocks[: self.layer]:
                view = block(view)
        return self.localization(view)

    def _warp(self, x: Tensor, theta: Tensor, shrink: int) -> Tensor:
        """``x`` warped by theta, ``shrink`` times smaller."""
        return self.sampler(x, theta, (x.shape[-2] // shrink, x.shape[-1] // shrink))

    def _features(self, image: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """The classifier's last feature map (flattened), the transformer's theta (B, 2, 3) and, for
        the input-space placements, the warped input the classifier read (None for CX)."""
        if self.placement == "c" and self.layer > 0:  # STN-CX: warp the feature map after block X
            x = image
            for block in self.blocks[: self.layer]:
                x = block(x)
            assert self.localization is not None  # "none" has layer 0
            theta = self.localization(x)
            x = self._warp(x, theta, self.downsample)
            for block in self.blocks[self.layer :]:
                x = block(x)
            return x.flatten(1), theta, None
        theta = self._locate(image)  # input space: C0, DLX, SLX
        for _ in range(self.iterations - 1):
            theta = compose(theta, self._locate(self._warp(image, theta, 1)))
        x = glimpse = self._warp(image, theta, self.downsample)
        for block in self.blocks:
            x = block(x)
        return x.flatten(1), theta, glimpse

    def forward(self, image: Tensor) -> ModelOutput:
        if image.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(f"PlacedSTN reads {self.input_size}px images, got {tuple(image.shape[-2:])}")
        features, theta, glimpse = self._features(image)
        if glimpse is None:  # CX warps features: show where it looks in the input's pixels
            glimpse = self._warp(image, theta, self.downsample)
        window = glimpse_corners(theta.detach(), image.shape[-2:], self.sampler.align_corners)
        return ModelOutput(
            self.readout(features), glimpse.unsqueeze(1), theta.unsqueeze(1), window.unsqueeze(1)
        )
