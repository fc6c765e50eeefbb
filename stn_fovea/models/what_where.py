"""The What/Where model (Daucé, Albiges & Perrinet 2020; whatwhere.md 3.5, exactly as 9.6): a "where"
pathway predicts, on a log-polar colliculus map, where a saccade would let the "what" classifier read
the digit; the model saccades there (and again, k times) and the What net reads the 28x28 crop.

Saccade k = 0 is the central crop (the control). The first prediction reads the whitened image (+0.5,
clipped); each further one re-centres the original image on the fixation so far (fill 0.5, the disc
moving with the image), whitens it without the +0.5 and clip, and predicts again: the reference's
multi-saccade loop, quirks included.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from stn_fovea.data.placement import translate
from stn_fovea.models.colliculus import Colliculus
from stn_fovea.models.transformer import ModelOutput, crop_windows
from stn_fovea.models.where_net import WhereNet
from stn_fovea.models.where_retina import WhereRetina
from stn_fovea.models.whitening import Whitening

FOVEA = 28  # the What net's input


class WhatWhere(nn.Module):
    """The What/Where model: ``forward(image, saccades)`` -> :class:`ModelOutput`.

    Output: ``logits`` of the What net on the final crop; ``glimpses`` (B, k + 1, 1, 28, 28) and
    ``windows`` at the centre and after each saccade; ``extras["where_logits"]`` (B, cells) the first
    prediction of the colliculus map (the Where net's training output) and ``extras["fixations"]``
    (B, k + 1, 2) the (rows, cols) offset of each fixation from the image centre.

    Args:
        what: the What classifier, reading (B, 1, 28, 28) crops (frozen while the Where net trains).
        where_net: colliculus logits from retina coefficients.
        retina, whitening, colliculus: the Where pathway's fixed parts.
        saccades: how many saccades by default (1 in the reference's main figure).
        max_offset_px: the fixation is clamped to +- this (50 in the reference).
    """

    def __init__(
        self,
        what: nn.Module,
        where_net: WhereNet,
        retina: WhereRetina,
        whitening: Whitening,
        colliculus: Colliculus,
        saccades: int = 1,
        max_offset_px: int = 50,
    ) -> None:
        super().__init__()
        if saccades < 0:
            raise ValueError(f"saccades must be >= 0, got {saccades}")
        self.what, self.where_net = what, where_net
        self.retina, self.whitening, self.colliculus = retina, whitening, colliculus
        self.saccades, self.max_offset_px = saccades, max_offset_px

    def where_logits(self, image: Tensor, recentre: bool = True) -> Tensor:
        """(B, cells) colliculus logits for (B, 1, H, W) images."""
        return self.where_net(self.retina(self.whitening(image, recentre=recentre)))

    def forward(self, image: Tensor, saccades: int | None = None) -> ModelOutput:
        count = self.saccades if saccades is None else saccades
        fixation = torch.zeros(len(image), 2, dtype=torch.int64, device=image.device)
        fixations = [fixation]
        where_logits = self.where_logits(image)
        logits = where_logits
        for step in range(count):
            if step > 0:  # re-centre on the fixation so far and encode again, without +0.5 and clip
                moved = translate(image[:, 0], -fixation, fill=0.5).unsqueeze(1)
                logits = self.where_logits(moved, recentre=False)
            target = self.colliculus.cell_offsets[logits.argmax(dim=1)]
            fixation = (fixation + target).clamp(-self.max_offset_px, self.max_offset_px)
            fixations.append(fixation)
        crops, windows = zip(*(crop_windows(image, place, FOVEA) for place in fixations), strict=True)
        return ModelOutput(
            logits=self.what(crops[-1]),
            glimpses=torch.stack(crops, dim=1),
            windows=torch.stack(windows, dim=1),
            extras={"where_logits": where_logits, "fixations": torch.stack(fixations, dim=1)},
        )
