"""Published / recorded numbers of the reference study, drawn dashed beside ours in figures.

Source: ../shared/reference/whatwhere.md (sections 2 and 5.5), itself read from the notebooks of
laurentperrinet/WhereIsMyMNIST and dabane-ghassan/int-lab-book. These are the reference's results,
never ours.
"""

from __future__ import annotations

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

# Tables of published accuracies per model, by the name an evaluator's config gives them.
REFERENCE_TABLES = {"central_general_28": CENTRAL_GENERAL_28}
