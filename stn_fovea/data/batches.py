"""The raw batches the DataLoaders carry (MNIST digits, labels, indices and a source name) and the
training order, a function of (seed, epoch) only."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from stn_fovea.data.mnist import Digits


def digit_batch(
    digits: Digits, index: Tensor, source: str, device: torch.device | str | None = None
) -> dict[str, Any]:
    """The raw batch format: digits, labels and MNIST indices (on ``device``), and the source name."""
    return {
        "digit": digits.images[index].to(device),
        "label": digits.labels[index].to(device),
        "index": index.to(device),
        "source": source,
    }


class DigitBatches(Dataset):
    """A subset of MNIST digits that fetches whole batches at once and tags them with a source name."""

    def __init__(self, digits: Digits, indices: Tensor, source: str) -> None:
        self.digits, self.indices, self.source = digits, indices, source

    def __len__(self) -> int:
        return len(self.indices)

    def __getitems__(self, positions: list[int]) -> dict[str, Any]:
        index = self.indices[torch.as_tensor(positions, dtype=torch.int64)]
        return digit_batch(self.digits, index, self.source)

    def __getitem__(self, position: int) -> dict[str, Any]:
        return self.__getitems__([position])


class EpochShuffleSampler(Sampler[int]):
    """A random order that is a function of (seed, epoch) only.

    Lightning calls ``set_epoch`` at the start of every epoch, so a run resumed from a checkpoint sees
    exactly the batches the uninterrupted run would have seen.
    """

    def __init__(self, length: int, seed: int) -> None:
        self.length, self.seed, self.epoch = length, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __iter__(self):  # type: ignore[override]
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.length, generator=generator).tolist())


def keep_batch(batch: dict[str, Any]) -> dict[str, Any]:
    """Collate function for :class:`DigitBatches`, whose items already are batches."""
    return batch
