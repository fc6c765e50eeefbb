"""Localisation networks: image -> feature vector. A transformer adds the pose head on top."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class TutorialLocalization(nn.Module):
    """The PyTorch STN tutorial's localisation net, used by the reference STN_28x28 (whatwhere.md 5.1).

    conv 1->8 k7, maxpool 2, ReLU; conv 8->10 k5, maxpool 2, ReLU; flatten; fc -> hidden, ReLU.

    Args:
        input_size: side of the square input in pixels (28 in the reference; sets the flatten size).
        hidden: width of the feature vector handed to the pose head (32 in the reference).
    """

    def __init__(self, in_channels: int = 1, input_size: int = 28, hidden: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 8, kernel_size=7),
            nn.MaxPool2d(2, stride=2),
            nn.ReLU(True),
            nn.Conv2d(8, 10, kernel_size=5),
            nn.MaxPool2d(2, stride=2),
            nn.ReLU(True),
        )
        with torch.no_grad():
            flat = self.features(torch.zeros(1, in_channels, input_size, input_size)).numel()
        self.fc = nn.Sequential(nn.Linear(flat, hidden), nn.ReLU(True))
        self.out_features = hidden

    def forward(self, image: Tensor) -> Tensor:
        return self.fc(self.features(image).flatten(1))
