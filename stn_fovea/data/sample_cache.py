"""A bounded in-memory cache of per-sample rows (retina codes, rendered samples) keyed by sample id."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


class SampleCache:
    """Rows computed from rendered samples, kept by sample id, so that a dataset drawn once is computed
    once: What/Where's retina codes (the reference encoded its dataset once and reused it every epoch),
    and the rendered training samples themselves.

    A sample id names the rendered image (its data key and index, see
    :meth:`~stn_fovea.data.datamodule.NoisyMNIST.render`); what is cached must be a function of the
    image alone (no learned parameters). At most ``max_items`` rows are kept; beyond, rows are computed
    and not kept.
    """

    def __init__(self, max_items: int = 100_000) -> None:
        if max_items < 0:
            raise ValueError(f"max_items must be >= 0, got {max_items}")
        self.max_items = max_items
        self._rows: dict[int, Tensor] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def clear(self) -> None:
        self._rows.clear()

    def encode(self, images: Tensor, sample_ids: Tensor, encoder: Callable[[Tensor], Tensor]) -> Tensor:
        """``encoder(images)`` row by row, read from the cache where a sample id was seen before."""
        ids = sample_ids.tolist()
        missing = [n for n, key in enumerate(ids) if key not in self._rows]
        fresh = encoder(images[missing]) if missing else None
        if fresh is not None:
            for n, row in zip(missing, fresh.detach(), strict=True):
                if len(self._rows) >= self.max_items:
                    break
                self._rows[ids[n]] = row.clone()
        known = [n for n, key in enumerate(ids) if key in self._rows]
        template = fresh if fresh is not None else self._rows[ids[0]].unsqueeze(0)
        out = template.new_empty((len(ids), *template.shape[1:]))
        if known:
            out[known] = torch.stack([self._rows[ids[n]] for n in known])
        if fresh is not None:
            out[missing] = fresh
        return out
