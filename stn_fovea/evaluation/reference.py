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
