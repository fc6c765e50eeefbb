"""Classifiers that read a glimpse."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class WhatNet(nn.Module):
    """The reference "What" LeNet (whatwhere.md section 2), identical to the PyTorch MNIST example.

    conv 1->20 k5, ReLU, maxpool 2; conv 20->50 k5, ReLU, maxpool 2; fc 800->500, ReLU; fc 500->10.
    Input (B, 1, 28, 28) in [0, 1]; output logits (B, num_classes).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 20, kernel_size=5)
        self.conv2 = nn.Conv2d(20, 50, kernel_size=5)
        self.fc1 = nn.Linear(4 * 4 * 50, 500)
        self.fc2 = nn.Linear(500, num_classes)

    def forward(self, glimpse: Tensor) -> Tensor:
        if glimpse.shape[-2:] != (28, 28):
            raise ValueError(f"WhatNet reads 28x28 glimpses, got {tuple(glimpse.shape[-2:])}")
        x = F.max_pool2d(F.relu(self.conv1(glimpse)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


class TutorialNet(nn.Module):
    """The PyTorch STN tutorial's classifier (STN_challenge's ``Net`` after its transformer).

    conv 1->10 k5, maxpool 2, ReLU; conv 10->20 k5, Dropout2d, maxpool 2, ReLU; fc 320->50, ReLU,
    dropout; fc 50->10. ``batch_norm`` adds STN_challenge's BatchNorm2d after each conv block's ReLU.
    Input (B, 1, 28, 28); output logits (B, num_classes).
    """

    def __init__(
        self, in_channels: int = 1, num_classes: int = 10, dropout: float = 0.5, batch_norm: bool = False
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d(dropout)
        self.norm1: nn.Module = nn.BatchNorm2d(10) if batch_norm else nn.Identity()
        self.norm2: nn.Module = nn.BatchNorm2d(20) if batch_norm else nn.Identity()
        self.fc1 = nn.Linear(4 * 4 * 20, 50)
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(50, num_classes)

    def forward(self, glimpse: Tensor) -> Tensor:
        if glimpse.shape[-2:] != (28, 28):
            raise ValueError(f"TutorialNet reads 28x28 glimpses, got {tuple(glimpse.shape[-2:])}")
        x = self.norm1(F.relu(F.max_pool2d(self.conv1(glimpse), 2)))
        x = self.norm2(F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2)))
        x = self.drop(F.relu(self.fc1(x.flatten(1))))
        return self.fc2(x)


class WideWhatNet(nn.Module):
    """STN_128x128's widened LeNet (whatwhere.md 5.1) for a full-size (128x128) transformed image.

    conv 1->20 k5, ReLU, maxpool 2 (62); conv 20->100 k5, ReLU, maxpool 2 (29); fc 100*29*29 -> 128,
    ReLU; fc 128 -> 10 (about 10.8 M parameters in the first fc layer).
    """

    def __init__(self, in_channels: int = 1, input_size: int = 128, num_classes: int = 10) -> None:
        super().__init__()
        self.input_size = input_size
        self.conv1 = nn.Conv2d(in_channels, 20, kernel_size=5)
        self.conv2 = nn.Conv2d(20, 100, kernel_size=5)
        side = ((input_size - 4) // 2 - 4) // 2
        self.fc1 = nn.Linear(100 * side * side, 128)
        self.fc2 = nn.Linear(128, num_classes)

    def forward(self, image: Tensor) -> Tensor:
        if image.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(f"WideWhatNet reads {self.input_size}px images, got {tuple(image.shape[-2:])}")
        x = F.max_pool2d(F.relu(self.conv1(image)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)
