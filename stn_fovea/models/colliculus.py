"""The What/Where "colliculus": a 240-cell log-polar map of where a saccade would pay (whatwhere.md 3.3,
exactly as 9.4).

Cell (azimuth, ring) of the map, index ``azimuth * n_rings + ring``, averages the image over the summed
energy of the retina filters at that place (every orientation and phase), normalised to sum 1: this is
the reference's map, not the Gaussian kernels of the paper. A saccade to a cell goes to the pixel where
that weight peaks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MAP_SIZE = 55  # the What accuracy map: shifts -27 .. 27
MAP_FILL = 0.1  # the field around the pasted map (CollFill, WhereShift)


class Colliculus(nn.Module):
    """Weights (cells, pixels) and the saccade offset of every cell: the (rows, cols) offset of its peak
    from the image centre, unclamped as the reference's (ring 9 reaches about 55 px; the model clamps
    the fixation, the sum of its saccades, whatwhere.md 9.7).

    Args:
        bank: retina filters (orientations, azimuths, rings, phases, size, size), e.g.
            :func:`~stn_fovea.models.where_retina.where_retina_bank`.
    """

    def __init__(self, bank: Tensor) -> None:
        super().__init__()
        _, azimuths, rings, _, height, width = bank.shape
        energy = (bank.double() ** 2).sum(dim=(0, 3)).reshape(azimuths * rings, height, width)
        weights = energy / energy.sum(dim=(-2, -1), keepdim=True)
        self.register_buffer("weights", weights.float(), persistent=False)
        peak = weights.flatten(1).argmax(dim=1)  # the first pixel of a tie, as numpy's argmax
        offsets = torch.stack((peak // width - height // 2, peak % width - width // 2), dim=1)
        self.register_buffer("cell_offsets", offsets, persistent=False)

    @property
    def num_cells(self) -> int:
        return int(self.weights.shape[0])

    def target_table(self, accuracy_map: Tensor, max_shift_px: int) -> Tensor:
        """Targets for every digit offset (i, j) in [-max, max]^2: (2 max + 1, 2 max + 1, cells).

        The 55x55 accuracy map (element [27 + a, 27 + b]: the What net's accuracy for a digit moved a
        rows, b columns) is pasted on a field of 0.1 at rows and columns 37:92 of 128 (map centre on
        pixel 64), moved by the digit's (i, j), and averaged by each cell's weights.
        """
        if accuracy_map.shape != (MAP_SIZE, MAP_SIZE):
            raise ValueError(
                f"the accuracy map must be {MAP_SIZE}x{MAP_SIZE}, got {tuple(accuracy_map.shape)}"
            )
        height, width = self.weights.shape[-2:]
        top = height // 2 - MAP_SIZE // 2  # 37 for 128: map index 27 on pixel 64
        left = width // 2 - MAP_SIZE // 2
        # target(i, j)[c] = 0.1 + sum_{a, b} (map[a, b] - 0.1) * W[c, top + i + a, left + j + b]
        kernel = (accuracy_map.to(self.weights) - MAP_FILL).view(1, 1, MAP_SIZE, MAP_SIZE)
        side = 2 * max_shift_px + 1
        before = max(0, max_shift_px - min(top, left))  # zero weights beyond the image
        after = max(0, max(top, left) + max_shift_px + MAP_SIZE - min(height, width))
        padded = F.pad(self.weights.unsqueeze(1), (before, after, before, after))
        row0, col0 = before + top - max_shift_px, before + left - max_shift_px
        span = side + MAP_SIZE - 1
        window = padded[..., row0 : row0 + span, col0 : col0 + span]
        table = F.conv2d(window, kernel).squeeze(1)  # (cells, side, side)
        return (table + MAP_FILL).permute(1, 2, 0).contiguous()
