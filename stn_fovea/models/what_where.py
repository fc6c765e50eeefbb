"""The What/Where model (Daucé, Albiges & Perrinet 2020; whatwhere.md 3.5, exactly as 9.6): a "where"
pathway predicts, on a log-polar colliculus map, where a saccade would let the "what" classifier read
the digit; the model saccades there (and again, k times) and the What net reads the 28x28 crop.

Saccade k = 0 is the central crop (the control). The first prediction reads the whitened image (+0.5,
clipped); each further one re-centres the original image on the fixation so far (fill 0.5, the disc
moving with the image), whitens it (by default without the +0.5 and clip, as the reference's code;
``reencode_as_trained`` keeps them) and predicts again: the reference's multi-saccade loop.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from stn_fovea.checkpoint import read_what_classifier
from stn_fovea.data.placement import translate
from stn_fovea.data.sample_cache import SampleCache
from stn_fovea.errors import ConfigError
from stn_fovea.models.colliculus import MAP_SIZE, Colliculus
from stn_fovea.models.module import GlimpseModule
from stn_fovea.models.transformer import ModelOutput, crop_windows
from stn_fovea.models.where_net import WhereNet
from stn_fovea.models.where_retina import WhereRetina
from stn_fovea.models.whitening import Whitening

FOVEA = 28  # the What net's input
REFERENCE_MAP = "reference"  # model.accuracy_map=reference: the reference's published What map
# 3_robust-What-training.ipynb cell 24 (whatwhere.md 9.8), recovered from its 3025 printed values
REFERENCE_MAP_FILE = Path(__file__).with_name("reference_accuracy_map.npy")


class WhatWhere(nn.Module):
    """The What/Where model: ``forward(image, saccades, sample_ids)`` -> :class:`ModelOutput`.

    Output: ``logits`` of the What net on the final crop; ``glimpses`` (B, k + 1, 1, 28, 28) and
    ``windows`` at the centre and after each saccade; in ``extras``: ``where_logits`` (B, cells), the
    first prediction of the colliculus map (what the Where net trains on), ``fixations`` (B, k + 1, 2),
    the (rows, cols) offset of each fixation from the image centre, and ``saccade_logits``
    (B, k + 1, classes), the What net's logits on each crop (entry k = the answer after k saccades;
    in training mode only the last, (B, 1, classes)).

    Args:
        what: the What classifier, reading (B, 1, 28, 28) crops.
        where_net: colliculus logits from retina coefficients; a partial is given its input and output
            sizes (the retina's coefficients, the colliculus cells).
        retina, whitening: the Where pathway's fixed encoder.
        colliculus: the map's cells and their saccade offsets; None = built from ``retina``'s bank.
        accuracy_map: the What net's 55x55 accuracy by shift (element [27 + i, 27 + j]: a digit moved
            i rows, j columns), from which the Where targets are made; kept in checkpoints.
        saccades: how many saccades by default (1 in the reference's main figure).
        max_offset_px: the fixation (the sum of the saccades so far) is clamped to +- this (50 in the
            reference), a saccade's own offset is not (whatwhere.md 9.7).
        freeze_what: keep the What net's weights fixed and it in eval mode (the reference trains the
            Where net alone).
        cache_size: retina codes kept by sample id (:class:`SampleCache`); 0 = encode every time.
        reencode_as_trained: encode the re-centred images of saccades 2.. as the training images (with
            the whitening's +0.5 and clip); False = the reference's ``Retina.retina`` without them
            (whatwhere.md 9.1.1), which feeds the Where net codes unlike any it was trained on.
    """

    reads_sample_ids = True  # GlimpseModule passes the batch's sample ids (the feature cache's keys)

    def __init__(
        self,
        what: nn.Module,
        where_net: nn.Module | Callable[..., WhereNet],
        retina: WhereRetina,
        whitening: Whitening,
        colliculus: Colliculus | None = None,
        accuracy_map: Tensor | None = None,
        saccades: int = 1,
        max_offset_px: int = 50,
        freeze_what: bool = True,
        cache_size: int = 100_000,
        reencode_as_trained: bool = False,
    ) -> None:
        super().__init__()
        if saccades < 0:
            raise ValueError(f"saccades must be >= 0, got {saccades}")
        self.what, self.retina, self.whitening = what, retina, whitening
        self.colliculus = colliculus if colliculus is not None else Colliculus(retina.bank())
        if not isinstance(where_net, nn.Module):  # a partial: its sizes follow from the retina and the map
            where_net = where_net(in_features=retina.out_features, out_features=self.colliculus.num_cells)
        self.where_net = where_net
        self.saccades, self.max_offset_px = saccades, max_offset_px
        self.freeze_what, self.reencode_as_trained = freeze_what, reencode_as_trained
        if freeze_what:
            self.what.requires_grad_(False)
        self.cache = SampleCache(cache_size)
        if accuracy_map is None:
            accuracy_map = torch.full((MAP_SIZE, MAP_SIZE), float("nan"))  # filled from a checkpoint
        elif accuracy_map.shape != (MAP_SIZE, MAP_SIZE):
            raise ValueError(
                f"the accuracy map must be {MAP_SIZE}x{MAP_SIZE}, got {tuple(accuracy_map.shape)}"
            )
        self.register_buffer("accuracy_map", accuracy_map.float())
        self.register_buffer("_targets", None, persistent=False)  # made from accuracy_map when first needed
        self.register_load_state_dict_post_hook(lambda module, _: setattr(module, "_targets", None))

    def read_what(self, crops: Tensor) -> Tensor:
        """The What's logits for (N, 1, 28, 28) crops. A frozen What reads as in evaluation (no dropout)
        whatever the mode of the model around it, so Lightning sees no module in eval mode."""
        if not (self.freeze_what and self.what.training):
            return self.what(crops)
        self.what.eval()
        try:
            return self.what(crops)
        finally:
            self.what.train()

    def where_targets(self, shifts: Tensor) -> Tensor:
        """(B, cells) training targets of digits at (rows, cols) offsets ``shifts`` (B, 2) from the centre."""
        if self._targets is None:
            if torch.isnan(self.accuracy_map).any():
                raise RuntimeError("this What/Where model has no accuracy map to make targets from")
            half = self.colliculus.weights.shape[-1] // 2  # every offset that keeps a digit centre inside
            self._targets = self.colliculus.target_table(self.accuracy_map, half)
        half = (self._targets.shape[0] - 1) // 2
        index = shifts.to(device=self._targets.device, dtype=torch.int64) + half
        if (index < 0).any() or (index > 2 * half).any():
            raise ValueError(f"digit offsets must lie within +-{half} px, got {shifts.abs().max().item()}")
        return self._targets[index[:, 0], index[:, 1]]

    def map_picture(self, values: Tensor) -> Tensor:
        """(B, 1, H, W) pictures of colliculus maps (B, cells): each pixel averages the cells that weigh
        on it, by their weights (for TensorBoard)."""
        weights = self.colliculus.weights.flatten(1)  # (cells, pixels)
        picture = (values.to(weights) @ weights) / weights.sum(dim=0).clamp_min(1e-12)
        return picture.view(len(values), 1, *self.colliculus.weights.shape[-2:])

    def encode(self, image: Tensor, recentre: bool = True) -> Tensor:
        """(B, 2880) retina coefficients of (B, 1, H, W) images."""
        return self.retina(self.whitening(image, recentre=recentre))

    def forward(
        self, image: Tensor, saccades: int | None = None, sample_ids: Tensor | None = None
    ) -> ModelOutput:
        count = self.saccades if saccades is None else saccades
        if sample_ids is None or self.cache.max_items == 0:
            features = self.encode(image)
        else:
            features = self.cache.encode(image, sample_ids, self.encode)
        where_logits = self.where_net(features)
        fixation = torch.zeros(len(image), 2, dtype=torch.int64, device=image.device)
        fixations = [fixation]
        logits = where_logits
        for step in range(count):
            if step > 0:  # re-centre on the fixation so far and encode again
                moved = translate(image[:, 0], -fixation, fill=0.5).unsqueeze(1)
                logits = self.where_net(self.encode(moved, recentre=self.reencode_as_trained))
            target = self.colliculus.cell_offsets[logits.argmax(dim=1)]
            fixation = (fixation + target).clamp(-self.max_offset_px, self.max_offset_px)
            fixations.append(fixation)
        crops, windows = zip(*(crop_windows(image, place, FOVEA) for place in fixations), strict=True)
        glimpses = torch.stack(crops, dim=1)
        # training reads the last crop only (the What is frozen; its answer serves the train metric)
        read = glimpses[:, -1:] if self.training else glimpses
        saccade_logits = self.read_what(read.flatten(0, 1)).unflatten(0, read.shape[:2])
        extras = {
            "where_logits": where_logits,
            "fixations": torch.stack(fixations, dim=1),
            "saccade_logits": saccade_logits,
        }
        return ModelOutput(
            saccade_logits[:, -1], glimpses, windows=torch.stack(windows, dim=1), extras=extras
        )


def _map_checkpoint(map_path: Path) -> str | None:
    """The file name of the checkpoint whose evaluation wrote this map (its metrics.json), if known."""
    metrics = map_path.parent / "metrics.json"
    if not metrics.is_file():
        return None
    checkpoint = json.loads(metrics.read_text()).get("checkpoint")
    return Path(checkpoint).name if checkpoint else None


def what_where_module(
    net: Callable[..., WhatWhere],
    what_ckpt: str | None = None,
    accuracy_map: str | None = None,
    load_pretrained: bool = True,
    **module: Any,
) -> GlimpseModule:
    """The LightningModule of ``model=what_where``: a What/Where net whose What LeNet (and the accuracy
    map its Where targets come from) are read from a trained What run.

    Args:
        net: partial :class:`WhatWhere`, given ``accuracy_map`` here.
        what_ckpt: checkpoint of a What LeNet trained on 28x28 digits (e.g. ``experiment=what28_robust``).
        accuracy_map: the 55x55 shift accuracy map (.npy) the Where targets are made from; None = the
            What's own, ``<its run>/eval/shift_map.npy``, which its evaluation writes; "reference" = the
            reference's published map (whatwhere.md 9.8), which separates the Where pathway's fidelity
            from the What net's.
        load_pretrained: False when a What/Where checkpoint is rebuilt (its state dict holds both).
        module: the :class:`GlimpseModule` arguments (task, optimiser, ...).
    """
    if not load_pretrained:
        return GlimpseModule(net=net(), **module)
    if what_ckpt is None:
        raise ConfigError(
            "model=what_where reads digits with a trained What net: pass model.what_ckpt=<checkpoint>, "
            "e.g. the best checkpoint of `python -m stn_fovea.train experiment=what28_robust`"
        )
    what_state, what_run = read_what_classifier(what_ckpt)
    if accuracy_map == REFERENCE_MAP:
        map_path = REFERENCE_MAP_FILE
    else:
        map_path = Path(accuracy_map).expanduser() if accuracy_map else what_run / "eval" / "shift_map.npy"
    if not map_path.is_file():
        raise ConfigError(
            f"no What accuracy map at {map_path}: evaluate the What checkpoint (`python -m "
            f"stn_fovea.evaluate ckpt_path={what_ckpt}`, whose shift_map evaluator writes it) or pass "
            "model.accuracy_map=<.npy>"
        )
    made_from = _map_checkpoint(map_path)
    if accuracy_map is None and made_from is not None and made_from != Path(what_ckpt).name:
        raise ConfigError(
            f"{map_path} was made from {made_from}, not from {Path(what_ckpt).name}: the Where targets must "
            "come from the What they read with. Pass that checkpoint, evaluate this one, or give "
            "model.accuracy_map=<.npy>"
        )
    try:
        grid = torch.from_numpy(np.load(map_path)).float()
    except (OSError, ValueError) as error:
        raise ConfigError(f"{map_path} is not a readable .npy accuracy map ({error})") from error
    if grid.shape != (MAP_SIZE, MAP_SIZE):
        raise ConfigError(
            f"{map_path} is a {tuple(grid.shape)} map; the Where targets need the 55x55 map of shifts "
            "-27..27 (evaluators.shift_map.max_shift_px=27)"
        )
    built = net(accuracy_map=grid)
    try:
        built.what.load_state_dict(what_state)
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise ConfigError(f"{what_ckpt}: its classifier does not fit model.net.what ({first})") from error
    return GlimpseModule(net=built, **module)
