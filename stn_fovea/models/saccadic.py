"""A saccadic ATN (ours): several glimpses, each aimed from a cheap peripheral view and a small memory of
what the earlier glimpses saw.

The What/Where model saccades several times; the ATN looks once. This model looks k times, end to end
differentiable. The peripheral view (the localisation net of ``model=peripheral_atn``: the image
average-pooled, CoordConv channels, small convs) is encoded once per image. Glimpse 0 is the central
window. After glimpse t, a GRU cell updates a small state from the peripheral features, the classifier's
log-probabilities on glimpse t (what it saw) and where glimpse t was (its pose); a linear head turns the
state into the next pose (tx, ty at a fixed scale), and the glimpse there is read by the same classifier.

``aim`` says how the head's output becomes a pose:

- ``absolute``: every saccade goes where the GRU head says (the first version; in its CPU run the pose,
  linear in the GRU's bounded state and learned at a tenth of the LR, under-reached the digits, and
  training collapsed at epoch 17).
- ``residual``: saccade 1 goes where a linear head on the peripheral features says, as the peripheral
  ATN's single glimpse; each later saccade moves from the last glimpse by the GRU head's output (a
  correction that starts at zero). With k = 1 its pose is the peripheral ATN's; more saccades can
  refine it.

``extras["saccade_logits"]`` (B, k + 1, classes) holds the reading after each number of saccades
(entry k: after k saccades), as What/Where's, so the eccentricity grid measures it after 0, 1, ..., k
saccades (``evaluators.eccentricity_grid.saccades``). ``read`` picks that reading: ``last`` is the
classifier on the latest glimpse, ``all`` the mean of the log-probabilities of the glimpses so far
(evidence accumulated over the saccades).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stn_fovea.models.pose import TranslationPose
from stn_fovea.models.sampler import AffineSampler, glimpse_corners
from stn_fovea.models.transformer import ModelOutput

READS = ("last", "all")
AIMS = ("absolute", "residual")


class SaccadicATN(nn.Module):
    """``forward(image, saccades=None)`` -> :class:`ModelOutput` with ``saccades + 1`` glimpses.

    Args:
        localization: the peripheral encoder: image -> (B, ``out_features``), run once per image.
        classifier: reads a glimpse, returns (B, classes) logits (the What LeNet).
        sampler: samples the glimpse (28x28) from the full-resolution image.
        saccades: saccades of training and of the test protocols (the grid may ask for others).
        scale: the glimpse's fixed scale s (the window is 2 s of the image side; 0.25 = 32 px of 128).
        state: size of the recurrent state.
        classes: the classifier's number of classes.
        read: ``last`` (the latest glimpse's logits) or ``all`` (mean log-probabilities of the glimpses).
        aim: ``absolute`` (each pose is the GRU head's output) or ``residual`` (saccade 1 from the
            peripheral features, each later one a move from the last glimpse); see the module's doc.
            The default is the first version's, so that its checkpoints (written before ``aim``
            existed) load as they were trained; model=saccadic_atn sets ``residual``.
    """

    def __init__(
        self,
        localization: nn.Module,
        classifier: nn.Module,
        sampler: AffineSampler,
        saccades: int = 3,
        scale: float = 0.25,
        state: int = 64,
        classes: int = 10,
        read: str = "last",
        aim: str = "absolute",
    ) -> None:
        super().__init__()
        if saccades < 0:
            raise ValueError(f"saccades must be >= 0, got {saccades}")
        if state < 1:
            raise ValueError(f"state must be a positive size, got {state}")
        if read not in READS:
            raise ValueError(f"read must be one of {READS}, got {read!r}")
        if aim not in AIMS:
            raise ValueError(f"aim must be one of {AIMS}, got {aim!r}")
        self.localization, self.classifier, self.sampler = localization, classifier, sampler
        self.pose = TranslationPose(scale)
        self.saccades, self.read = saccades, read
        # the cell reads: peripheral features, what the last glimpse saw, where it was
        self.cell = nn.GRUCell(int(localization.out_features) + classes + 2, state)
        self.head = nn.Linear(state, 2)
        nn.init.zeros_(self.head.weight)  # every saccade starts at the centre: the pose is learned
        nn.init.zeros_(self.head.bias)
        self.first = nn.Linear(int(localization.out_features), 2) if aim == "residual" else None
        if self.first is not None:  # the peripheral ATN's regression, starting at the centre
            nn.init.zeros_(self.first.weight)
            nn.init.zeros_(self.first.bias)

    def localization_parameters(self) -> list[nn.Parameter]:
        """The parameters that decide where to look (an optimiser may give them their own LR)."""
        parts = (self.localization, self.cell, self.head, self.first)
        return [p for part in parts if part is not None for p in part.parameters()]

    def forward(self, image: Tensor, saccades: int | None = None) -> ModelOutput:
        count = self.saccades if saccades is None else saccades
        if count < 0:
            raise ValueError(f"saccades must be >= 0, got {count}")
        periphery = self.localization(image)
        state = periphery.new_zeros(len(image), self.cell.hidden_size)
        where = periphery.new_zeros(len(image), 2)  # (tx, ty): glimpse 0 at the centre
        glimpses, thetas, windows, readings, evidence = [], [], [], [], []
        for step in range(count + 1):
            theta = self.pose(where)
            glimpse = self.sampler(image, theta)
            logits = self.classifier(glimpse)
            log_probs = F.log_softmax(logits, dim=-1)
            evidence.append(log_probs)
            readings.append(logits if self.read == "last" else torch.stack(evidence).mean(0))
            glimpses.append(glimpse)
            thetas.append(theta)
            windows.append(glimpse_corners(theta.detach(), image.shape[-2:], self.sampler.align_corners))
            if step < count:
                state = self.cell(torch.cat((periphery, log_probs, where), dim=1), state)
                if self.first is None:
                    where = self.head(state)
                else:
                    where = self.first(periphery) if step == 0 else where + self.head(state)
        saccade_logits = torch.stack(readings, dim=1)
        return ModelOutput(
            saccade_logits[:, -1],
            torch.stack(glimpses, dim=1),
            torch.stack(thetas, dim=1),
            torch.stack(windows, dim=1),
            extras={"saccade_logits": saccade_logits},
        )
