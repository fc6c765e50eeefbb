"""Per-sample random numbers: every draw is a pure function of (sample key, stream, counter).

A sample's randomness (its shift, contrast and noise field) must not depend on which batch it lands in,
on the batch size, or on the device. A shared stateful generator cannot give that in a batched pipeline.

- Keys and the few scalars per sample (:func:`uniform`, :func:`normal`) are integer hashes of their
  coordinates, computed with int64 tensor arithmetic that gives the same bits on every device. The hash
  is Chris Wellons' ``lowbias32`` finaliser.
- Large fields (:func:`normal_fields`, e.g. a 128x128 noise image) come from torch's CPU generator seeded
  per sample with its key: measured here, 30x faster than hashing every pixel, and still the same on
  every machine. They are drawn on the CPU and moved to the keys' device.

All integers are kept in [0, 2**32) inside int64 tensors; 32-bit products are split in two 16-bit halves
so that no int64 operation ever overflows.
"""

from __future__ import annotations

import math
import zlib

import torch
from torch import Tensor

_MASK32 = 0xFFFFFFFF
_GOLDEN = 0x9E3779B9


def _mul32(x: Tensor, constant: int) -> Tensor:
    """``(x * constant) mod 2**32`` for x in [0, 2**32), without int64 overflow."""
    low = x * (constant & 0xFFFF)
    high = ((x * (constant >> 16)) & 0xFFFF) << 16
    return (low + high) & _MASK32


def mix32(x: Tensor) -> Tensor:
    """A bijective avalanche hash of 32-bit integers (``lowbias32``), elementwise on an int64 tensor."""
    x = x & _MASK32
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def stable_code(value: int | float | str) -> int:
    """A 32-bit integer code for a key part, stable across processes and Python versions.

    Floats are coded by their value in thousandths (a curriculum level of 2.5 px and 2.5001 px collide,
    which is intended); strings by CRC-32.
    """
    if isinstance(value, str):
        return zlib.crc32(value.encode())
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot code a non-finite key part: {value}")
        return round(value * 1000) & _MASK32
    return int(value) & _MASK32


def sample_keys(index: Tensor, *parts: int | float | str) -> Tensor:
    """One 32-bit key per sample from its dataset ``index`` and shared ``parts`` (seed, split, level...).

    Args:
        index: int64 tensor of dataset indices, any shape.
        parts: values that identify the draw; their order matters.
    Returns:
        int64 tensor shaped like ``index`` with values in [0, 2**32).
    """
    key = torch.zeros_like(index, dtype=torch.int64)
    for part in parts:
        key = mix32(key ^ (mix32(torch.full_like(key, stable_code(part))) + _GOLDEN))
    return mix32(key ^ mix32(index.to(torch.int64) + _GOLDEN))


_BELOW_ONE = 1.0 - 2.0**-24  # the largest float32 below 1


def uniform(keys: Tensor, stream: int, count: int) -> Tensor:
    """Uniform floats in the open interval (0, 1), shape ``(*keys.shape, count)``.

    ``stream`` separates independent uses of the same key (shift, contrast, noise...), so that changing
    how many numbers one use draws never changes another's.
    """
    base = mix32(keys.to(torch.int64) ^ mix32(torch.tensor(stream, device=keys.device) + _GOLDEN))
    counter = torch.arange(count, device=keys.device, dtype=torch.int64)
    bits = mix32(mix32(base.unsqueeze(-1) + counter) ^ base.unsqueeze(-1))
    # 24 high-quality bits -> float32 in (0, 1). The top value, (2**24 - 0.5) / 2**24, is not a float32:
    # it rounds to 1.0, which an index floor(u * n) turns into n; it becomes the largest float below 1
    # (every other value is unchanged).
    return (((bits >> 8).to(torch.float32) + 0.5) * (1.0 / 16777216.0)).clamp(max=_BELOW_ONE)


def normal(keys: Tensor, stream: int, count: int) -> Tensor:
    """Standard normal floats (Box-Muller), shape ``(*keys.shape, count)``."""
    pairs = (count + 1) // 2
    u = uniform(keys, stream, 2 * pairs)
    radius = torch.sqrt(-2.0 * torch.log(u[..., :pairs]))
    angle = (2.0 * math.pi) * u[..., pairs:]
    values = torch.cat((radius * torch.cos(angle), radius * torch.sin(angle)), dim=-1)
    return values[..., :count]


def normal_fields(keys: Tensor, stream: int, shape: tuple[int, ...]) -> Tensor:
    """Standard normal fields, one per key, shape ``(len(keys), *shape)``, on ``keys.device``.

    Each field is drawn by torch's CPU generator seeded with ``mix32(key ^ stream)``, so a sample's field
    depends only on its key and stream.
    """
    if keys.dim() != 1:
        raise ValueError(f"keys must be a 1-D tensor, got shape {tuple(keys.shape)}")
    seeds = mix32(keys.to(torch.int64) ^ mix32(torch.tensor(stream, device=keys.device) + _GOLDEN))
    fields = torch.empty((len(keys), *shape), dtype=torch.float32)
    generator = torch.Generator()
    for field, seed in zip(fields, seeds.tolist(), strict=True):
        generator.manual_seed(seed)
        field.normal_(generator=generator)
    return fields.to(keys.device)
