"""MNIST digits as uint8 tensors, through ``torchvision.datasets.MNIST``."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor
from torchvision.datasets import MNIST

from stn_fovea.errors import DataNotFoundError
from stn_fovea.locks import file_lock


class Digits(NamedTuple):
    """MNIST images (N, 28, 28) uint8 and labels (N,) int64."""

    images: Tensor
    labels: Tensor


def load_mnist(root: str | Path, train: bool, download: bool = True) -> Digits:
    """Load the MNIST train or test split from ``root`` (torchvision's layout: ``<root>/MNIST/raw``).

    With ``download=True`` torchvision fetches the files when they are missing; offline, or with
    ``download=False``, a missing dataset raises :class:`DataNotFoundError` that says where we looked.
    """
    root = Path(root).expanduser()
    try:
        dataset = _mnist(root, train, download)
    except (RuntimeError, OSError) as error:
        where = root.resolve() / "MNIST" / "raw"
        how = "the download failed" if download else "downloading is off (data.download=false)"
        raise DataNotFoundError(
            f"MNIST was not found in {where} and {how}: {error}\n"
            "Point the data root at a folder that holds MNIST/raw (torchvision's layout), with the "
            "environment variable STN_FOVEA_DATA=/path/to/data or the override paths.data_dir=/path/to/data, "
            "or run once with internet access so that torchvision can download it."
        ) from error
    return Digits(dataset.data, dataset.targets)


def _mnist(root: Path, train: bool, download: bool) -> MNIST:
    """torchvision's MNIST; a download happens under a lock in ``root``, so that processes started at
    once (a sweep's jobs, `make reproduce`'s evaluations) download it once. Nothing is written into a
    root that holds it already."""
    try:
        return MNIST(root=str(root), train=train, download=False)
    except RuntimeError:  # not there
        if not download:
            raise
    root.mkdir(parents=True, exist_ok=True)
    with file_lock(root / ".mnist_download.lock"):  # whoever waited finds it there and downloads nothing
        return MNIST(root=str(root), train=train, download=True)


def spread_subset(total: int, count: int, seed: int) -> Tensor:
    """``count`` of ``total`` indices, drawn with ``seed`` and sorted: a subset spread over the whole set.

    MNIST's test set is ordered (its two halves come from different writer populations), so its first N
    digits are not a fair sample of it. ``count >= total`` gives every index.
    """
    if count >= total:
        return torch.arange(total)
    order = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
    return order[:count].sort().values
