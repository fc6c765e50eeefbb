"""Random affine jitter of a batch, a different transform per sample, drawn from the sample keys.

torchvision's ``RandomAffine`` draws one transform per call, so on a batch every image would get the
same one. Here each sample's angle, translation, scale and shear come from its key (the counter RNG),
and the whole batch is warped by one ``grid_sample``. The warp follows torchvision's tensor kernel
(``transforms.v2.functional.affine``) exactly: the same matrix about the image centre, the same
pixel-centre grid, nearest or bilinear reads, 0 outside; ``tests/test_clean_mnist.py`` checks it against
torchvision sample by sample.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from stn_fovea.data.counter_rng import uniform
from stn_fovea.errors import ConfigError

AFFINE_STREAM = 11


class AffineParams(NamedTuple):
    """Per-sample affine parameters as torchvision's ``affine`` reads them.

    Attributes:
        angle: (B,) rotation in degrees, counter-clockwise.
        translate: (B, 2) integer translation in pixels, (x, y) = (right, down).
        scale: (B,) isotropic scale.
        shear: (B, 2) shear angles in degrees, (x, y).
    """

    angle: Tensor
    translate: Tensor
    scale: Tensor
    shear: Tensor


def scale_range(scale: tuple[float, ...] | list[float]) -> tuple[float, float]:
    """Read a scale range [low, high]; a ConfigError unless 0 < low <= high."""
    values = tuple(float(value) for value in scale)
    if len(values) != 2 or not 0 < values[0] <= values[1]:
        raise ConfigError(f"scale must be a range [low, high] with 0 < low <= high, got {list(values)}")
    return values[0], values[1]


def sample_affine(
    keys: Tensor,
    size: int,
    degrees: float,
    translate: float,
    scale: tuple[float, float],
    shear_deg: float,
) -> AffineParams:
    """Draw ``RandomAffine(degrees, translate=(t, t), scale, shear=shear_deg)``'s parameters per key.

    As torchvision's ``RandomAffine.get_params``: angle U(-degrees, degrees); translation
    round(U(-t * size, t * size)) pixels on each axis; scale U(low, high); x shear U(-shear, shear)
    degrees and no y shear.
    """
    u = uniform(keys, AFFINE_STREAM, 5)
    low, high = scale
    max_shift = translate * size
    return AffineParams(
        angle=(2.0 * u[:, 0] - 1.0) * degrees,
        translate=torch.round((2.0 * u[:, 1:3] - 1.0) * max_shift),
        scale=low + (high - low) * u[:, 3],
        shear=torch.stack(((2.0 * u[:, 4] - 1.0) * shear_deg, torch.zeros_like(u[:, 4])), dim=1),
    )


def inverse_affine_matrices(params: AffineParams) -> Tensor:
    """(B, 2, 3) matrices from output pixel to input pixel, both about the image centre
    (torchvision's ``_get_inverse_affine_matrix`` with centre 0, batched)."""
    rot = torch.deg2rad(params.angle)
    sx, sy = torch.deg2rad(params.shear[:, 0]), torch.deg2rad(params.shear[:, 1])
    # rotation-scale-shear R(a) S(s) SHy(sy) SHx(sx) without the scale: [[a, b], [c, d]], det 1
    a = torch.cos(rot - sy) / torch.cos(sy)
    b = -torch.cos(rot - sy) * torch.tan(sx) / torch.cos(sy) - torch.sin(rot)
    c = torch.sin(rot - sy) / torch.cos(sy)
    d = -torch.sin(rot - sy) * torch.tan(sx) / torch.cos(sy) + torch.cos(rot)
    inverse = torch.stack((torch.stack((d, -b), dim=1), torch.stack((-c, a), dim=1)), dim=1)
    inverse = inverse / params.scale.view(-1, 1, 1)
    offset = -(inverse @ params.translate.to(inverse.dtype).unsqueeze(-1))  # undo the translation first
    return torch.cat((inverse, offset), dim=2)


def warp_affine(images: Tensor, params: AffineParams, mode: str = "nearest") -> Tensor:
    """Each image of (B, C, H, W) transformed by its own parameters; 0 where it reads outside."""
    batch, _, height, width = images.shape
    matrices = inverse_affine_matrices(params).to(images.dtype)
    xs = torch.linspace((1.0 - width) * 0.5, (width - 1.0) * 0.5, width, device=images.device)
    ys = torch.linspace((1.0 - height) * 0.5, (height - 1.0) * 0.5, height, device=images.device)
    base = torch.stack(
        (
            xs.expand(height, width),
            ys.unsqueeze(1).expand(height, width),
            torch.ones(height, width, device=images.device),
        ),
        dim=-1,
    ).to(images.dtype)  # (H, W, 3): pixel centres about the image centre, homogeneous
    points = base.view(1, height * width, 3) @ matrices.transpose(1, 2)  # (B, H*W, 2) input pixels
    grid = points / torch.tensor([0.5 * width, 0.5 * height], dtype=images.dtype, device=images.device)
    grid = grid.view(batch, height, width, 2)
    return F.grid_sample(images, grid, mode=mode, padding_mode="zeros", align_corners=False)
