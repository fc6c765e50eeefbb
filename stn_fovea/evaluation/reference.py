"""Published / recorded numbers of the reference study, drawn dashed beside ours in figures.

Source: ../shared/reference/whatwhere.md (sections 2 and 5.5), itself read from the notebooks of
laurentperrinet/WhereIsMyMNIST and dabane-ghassan/int-lab-book. These are the reference's results,
never ours.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

# 28x28, central (shift std 0) and general (shift std 15) test accuracy, contrast U(0.3, 0.7).
CENTRAL_GENERAL_28 = {
    "stn": {"central": 0.8764, "general": 0.4261, "noise": 0.75},
    "what": {"central": 0.8389, "general": 0.3450, "noise": 1.0},
}

# Ring means of the 55x55 shift accuracy maps: radius (px) -> accuracy.
SHIFT_MAP_RING_MEANS_28 = {
    "stn": {
        0: 0.874,
        2: 0.868,
        4: 0.854,
        5: 0.843,
        7: 0.819,
        10: 0.749,
        12: 0.675,
        15: 0.494,
        20: 0.186,
        25: 0.122,
    },
    "what": {
        0: 0.845,
        2: 0.822,
        4: 0.780,
        5: 0.753,
        7: 0.689,
        10: 0.569,
        12: 0.483,
        15: 0.351,
        20: 0.176,
        25: 0.120,
    },
}

# 128x128 benchmark (int-lab-book src/benchmark.ipynb; whatwhere.md 5.5): accuracy at the fixed radii
# 40 k / 9 px (k = 1..9), random angle, fixed contrast, noise 0.75, 10000 test digits per cell.
GRID_ECCENTRICITIES_128 = [4.444, 8.889, 13.333, 17.778, 22.222, 26.667, 31.111, 35.556, 40.0]
ECCENTRICITY_GRID_128 = {
    "stn128": {
        0.7: [0.9715, 0.9657, 0.9628, 0.9650, 0.9623, 0.9621, 0.9572, 0.9548, 0.9558],
        0.5: [0.9548, 0.9553, 0.9539, 0.9533, 0.9509, 0.9433, 0.9483, 0.9424, 0.9433],
        0.3: [0.7656, 0.7598, 0.7455, 0.7433, 0.7367, 0.7242, 0.7422, 0.7437, 0.6892],
    },
    "atn": {
        0.7: [0.9606, 0.9509, 0.9417, 0.9324, 0.9224, 0.9218, 0.9147, 0.9335, 0.9456],
        0.5: [0.9314, 0.9316, 0.9248, 0.9334, 0.9258, 0.9152, 0.9177, 0.9179, 0.9264],
        0.3: [0.7122, 0.6868, 0.6760, 0.6779, 0.6871, 0.6744, 0.6549, 0.6768, 0.6111],
    },
    "polo_atn": {
        0.7: [0.8654, 0.8457, 0.8002, 0.7282, 0.6109, 0.4977, 0.4231, 0.3836, 0.3362],
        0.5: [0.7733, 0.7443, 0.6974, 0.6212, 0.5517, 0.4665, 0.3947, 0.3196, 0.2394],
        0.3: [0.4094, 0.3913, 0.3405, 0.2858, 0.2480, 0.2055, 0.1752, 0.1487, 0.1151],
    },
}
# Means over eccentricities as the study reports them (contrast -> mean).
ECCENTRICITY_GRID_MEANS_128 = {
    "stn128": {0.7: 0.962, 0.5: 0.950, 0.3: 0.739},
    "atn": {0.7: 0.936, 0.5: 0.925, 0.3: 0.673},
    "polo_atn": {0.7: 0.610, 0.5: 0.534, 0.3: 0.258},
}

# What/Where, Fig 4 and 5 (WhereIsMyMNIST notebooks/4_results_figure_contrast.ipynb; whatwhere.md 4.1):
# accuracy after k saccades at the same radii, ascending, noise 1.0, one Where net per contrast, one
# batch of 1000 test digits per cell (k = 0: the central crop).
WHAT_WHERE_GRID_128 = {
    0: {
        0.7: [0.899, 0.756, 0.532, 0.287, 0.159, 0.104, 0.102, 0.112, 0.111],
        0.5: [0.823, 0.699, 0.478, 0.306, 0.151, 0.108, 0.127, 0.105, 0.111],
        0.3: [0.528, 0.455, 0.342, 0.182, 0.131, 0.103, 0.103, 0.115, 0.093],
    },
    1: {
        0.7: [0.900, 0.879, 0.859, 0.782, 0.777, 0.724, 0.714, 0.672, 0.628],
        0.5: [0.833, 0.811, 0.762, 0.717, 0.660, 0.625, 0.566, 0.537, 0.422],
        0.3: [0.538, 0.512, 0.466, 0.397, 0.368, 0.318, 0.252, 0.234, 0.164],
    },
    2: {
        0.7: [0.872, 0.879, 0.879, 0.860, 0.836, 0.824, 0.786, 0.765, 0.703],
        0.5: [0.804, 0.799, 0.780, 0.776, 0.728, 0.678, 0.649, 0.608, 0.493],
        0.3: [0.538, 0.501, 0.470, 0.436, 0.411, 0.325, 0.341, 0.258, 0.197],
    },
    3: {
        0.7: [0.875, 0.890, 0.854, 0.857, 0.838, 0.830, 0.809, 0.781, 0.729],
        0.5: [0.792, 0.789, 0.790, 0.765, 0.715, 0.706, 0.657, 0.607, 0.502],
        0.3: [0.506, 0.509, 0.453, 0.438, 0.416, 0.357, 0.323, 0.261, 0.210],
    },
    4: {
        0.7: [0.877, 0.884, 0.876, 0.869, 0.856, 0.826, 0.814, 0.777, 0.714],
        0.5: [0.789, 0.792, 0.791, 0.747, 0.719, 0.721, 0.649, 0.631, 0.526],
        0.3: [0.484, 0.498, 0.453, 0.444, 0.359, 0.330, 0.326, 0.282, 0.224],
    },
    5: {
        0.7: [0.886, 0.866, 0.872, 0.854, 0.842, 0.833, 0.823, 0.800, 0.740],
        0.5: [0.805, 0.780, 0.787, 0.752, 0.737, 0.686, 0.651, 0.602, 0.523],
        0.3: [0.476, 0.470, 0.462, 0.404, 0.347, 0.341, 0.319, 0.288, 0.204],
    },
}


# The noise each published grid was measured at.
GRID_REFERENCE_NOISE = {"stn128": 0.75, "atn": 0.75, "polo_atn": 0.75, "what_where": 1.0}


def grid_reference(
    model: str, saccades: int | None = None, noise: float | None = None
) -> dict[float, list[float]] | None:
    """The published grid of a model by contrast (None where the study has none, or, when ``noise`` is
    given, where it measured at another noise): the STN study's for its models, What/Where's after
    ``saccades`` saccades."""
    if noise is not None and GRID_REFERENCE_NOISE.get(model) != noise:
        return None
    if saccades is not None:
        return WHAT_WHERE_GRID_128.get(saccades) if model == "what_where" else None
    return ECCENTRICITY_GRID_128.get(model)


def published_cell(
    curves: Mapping[float, Sequence[float]] | None, contrast: float, radius: float
) -> float | None:
    """The published accuracy at (contrast, radius) of a grid from :func:`grid_reference`, when the study
    measured that cell (its radii are GRID_ECCENTRICITIES_128)."""
    if curves is None or contrast not in curves:
        return None
    for index, published in enumerate(GRID_ECCENTRICITIES_128):
        if abs(published - radius) < 0.01:
            return curves[contrast][index]
    return None


# Tables of published accuracies per model, by the name an evaluator's config gives them.
REFERENCE_TABLES = {"central_general_28": CENTRAL_GENERAL_28}


class PublishedScore(NamedTuple):
    """A published test accuracy (%) over runs: mean, standard deviation, runs, and how the run's
    number was chosen."""

    mean: float
    sd: float | None
    runs: int
    selection: str


# (experiment, model, test protocol) -> published score. STN_challenge (seed 004; stn-literature.md
# 1.3): 5 runs each of Conv and CoordConv, each run's best test epoch; the "best MVP" is one run.
PROTOCOL_REFERENCE: dict[tuple[str, str, str], PublishedScore] = {
    ("stn_challenge", "stn_tutorial", "clean"): PublishedScore(99.05, 0.03, 5, "best test epoch"),
    ("stn_challenge", "stn_coordconv", "clean"): PublishedScore(99.06, 0.09, 5, "best test epoch"),
    ("stn_challenge_mvp", "stn_coordconv", "clean"): PublishedScore(99.40, None, 1, "best test epoch"),
}
