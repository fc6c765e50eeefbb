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
        self._slots: dict[int, int] = {}  # sample id -> row of the storage
        # one block for every row (allocated at the first insert, filled as rows come): many small
        # persistent tensors interleaved with each batch's temporaries fragmented the heap (2-3x RSS)
        self._storage: Tensor | None = None

    def __len__(self) -> int:
        return len(self._slots)

    def clear(self) -> None:
        self._slots.clear()

    def encode(self, inputs: Tensor, sample_ids: Tensor, encoder: Callable[[Tensor], Tensor]) -> Tensor:
        """``encoder(inputs)`` row by row, read from the cache where a sample id was seen before."""
        ids = sample_ids.tolist()
        missing = [n for n, key in enumerate(ids) if key not in self._slots]
        fresh = encoder(inputs[missing]).detach() if missing else None
        if fresh is not None:
            if self._storage is None:
                self._storage = fresh.new_empty((self.max_items, *fresh.shape[1:]))
            for row, n in enumerate(missing):  # the first row of each new id, while there is room
                if ids[n] not in self._slots and len(self._slots) < self.max_items:
                    self._storage[len(self._slots)] = fresh[row]
                    self._slots[ids[n]] = len(self._slots)
        known = [n for n, key in enumerate(ids) if key in self._slots]
        template = fresh if fresh is not None else self._storage
        assert template is not None
        out = template.new_empty((len(ids), *template.shape[1:]))
        if known:
            slots = torch.tensor([self._slots[ids[n]] for n in known], device=out.device)
            out[known] = self._storage[slots]  # type: ignore[index]
        if fresh is not None:
            out[missing] = fresh
        return out
