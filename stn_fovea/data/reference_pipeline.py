"""The reference 128x128 pipeline, one sample at a time in numpy + MotionClouds (whatwhere.md 1.1, 1.3).

RetinaFill -> WhereShift -> RetinaBackground -> RetinaMask, as the int-lab-book STN notebooks ran it:
``np.random.seed(index)`` per sample, a MotionClouds texture seeded by a hash of the shifted digit. It
exists as the yardstick of ``stn_fovea.bench`` (our batched torch generator must be much faster) and
for cross-checks in the tests. MotionClouds is an optional dev dependency (GPLv2), imported lazily.
"""

from __future__ import annotations

import numpy as np

from stn_fovea.errors import ConfigError


def _motion_clouds():
    try:
        import MotionClouds
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ConfigError(
            "the reference pipeline needs the MotionClouds package: pip install -e '.[dev]'"
        ) from error
    return MotionClouds


class ReferencePipeline:
    """Per-sample generator of one noisy 128x128 image, following the reference code step by step.

    Args:
        eccentricity_std_px: std of the half-normal radius (``offset_std``).
        eccentricity_max_px: radius clip (``offset_max``, 40).
        contrast: fixed digit contrast.
        noise: noise amplitude (0.75 in the STN study).
    """

    size = 128
    fovea = 28

    def __init__(
        self,
        eccentricity_std_px: float = 40.0,
        eccentricity_max_px: float = 40.0,
        contrast: float = 0.7,
        noise: float = 0.75,
        sf_0: float = 0.1,
        B_sf: float = 0.1,
    ) -> None:
        self.mc = _motion_clouds()
        self.eccentricity_std_px, self.eccentricity_max_px = eccentricity_std_px, eccentricity_max_px
        self.contrast, self.noise = contrast, noise
        self.sf_0, self.B_sf = sf_0, B_sf
        axis = np.linspace(-1, 1, self.size)
        x, y = np.meshgrid(axis, axis)
        self.disc = np.sqrt(x**2 + y**2) < 1

    def motion_cloud_noise(self, seed: int) -> np.ndarray:
        """The reference's ``MotionCloudNoise``: grids, envelope and cloud are built on every call."""
        fx, fy, ft = self.mc.get_grids(self.size, self.size, 1)
        envelope = self.mc.envelope_gabor(
            fx, fy, ft, sf_0=self.sf_0, B_sf=self.B_sf, B_theta=np.inf, V_X=0.0, V_Y=0.0, B_V=0.0, alpha=0.0
        )
        return self.mc.rectif(self.mc.random_cloud(envelope, seed=seed))[:, :, 0]

    def __call__(self, digit: np.ndarray, index: int) -> np.ndarray:
        """digit (28, 28) uint8 -> image (128, 128) float64 in [0, 1]."""
        canvas = np.zeros((self.size, self.size))
        start = (self.size - self.fovea) // 2
        canvas[start : start + self.fovea, start : start + self.fovea] = digit
        np.random.seed(index)
        radius = min(abs(np.random.randn()) * self.eccentricity_std_px, self.eccentricity_max_px)
        angle = np.random.rand() * 2 * np.pi
        i, j = int(radius * np.cos(angle)), int(radius * np.sin(angle))
        shifted = np.zeros_like(canvas)
        shifted[max(i, 0) : self.size + min(i, 0), max(j, 0) : self.size + min(j, 0)] = canvas[
            max(-i, 0) : self.size + min(-i, 0), max(-j, 0) : self.size + min(-j, 0)
        ]
        seed = hash(tuple(shifted.flatten())) % (2**31 - 1)
        texture = self.motion_cloud_noise(seed)
        span = shifted.max() - shifted.min()
        strokes = 0.5 + self.contrast * ((shifted - shifted.min()) / span - 0.5)
        strokes[strokes <= 0.5] = -np.inf
        image = np.clip(np.maximum(strokes, 0.5 + self.noise * (texture - 0.5)), 0.0, 1.0)
        image = (image - image.min()) / (image.max() - image.min())
        return (image - 0.5) * self.disc + 0.5
