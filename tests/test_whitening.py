"""The What/Where pre-whitening (whatwhere.md 9.2): the filter's published landmarks, and the transform
equal to SLIP's fftshift formulation written in numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stn_fovea.models.whitening import Whitening, whitening_filter


def test_the_filter_has_the_published_landmarks():
    kernel = whitening_filter(128)
    assert kernel.mean().item() == pytest.approx(1.0, abs=1e-12)
    assert kernel[64, 64].item() == pytest.approx(5e-8, rel=0.5)  # DC radius 1e-6: about 5e-8
    peak = int(kernel.argmax())
    row, col = divmod(peak, 128)
    assert kernel.max().item() == pytest.approx(1.80, abs=0.01)
    assert np.hypot(row - 64, col - 64) / 128 == pytest.approx(0.31, abs=0.01)
    assert torch.equal(kernel, kernel.T)  # isotropic on a square grid


def slip_whiten(image: np.ndarray, alpha: float = 1.4, f_0: float = 0.4, steep: float = 4.0) -> np.ndarray:
    """SLIP's formulation, independently: filter on the fftshift-ed spectrum, back with ifftshift."""
    size = image.shape[-1]
    f_x, f_y = np.mgrid[-size // 2 : size // 2, -size // 2 : size // 2] / size
    radius = np.sqrt(f_x**2 + f_y**2)
    radius[size // 2, size // 2] = 1e-6
    kernel = radius**alpha * np.exp(-((radius / f_0) ** steep))
    kernel /= kernel.mean()
    return np.real(np.fft.ifft2(np.fft.ifftshift(np.fft.fftshift(np.fft.fft2(image)) * kernel)))


def test_whitening_equals_slip_and_recentres_into_the_unit_interval():
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(3, 1, 128, 128, generator=generator, dtype=torch.float64)
    images[1, 0, 40:60, 70:90] = 1.0  # a bright patch: edges the filter keeps
    whiten = Whitening(128)
    raw = whiten(images, recentre=False)
    expected = np.stack([slip_whiten(image[0].numpy()) for image in images])[:, None]
    np.testing.assert_allclose(raw.numpy(), expected, atol=1e-10)
    recentred = whiten(images)
    assert torch.equal(recentred, (raw + 0.5).clamp(0, 1))
    assert 0 < float((recentred == 0).double().mean() + (recentred == 1).double().mean()) < 0.5


def test_a_constant_image_whitens_to_grey_and_float32_follows_float64():
    whiten = Whitening(128)
    constant = torch.full((1, 1, 128, 128), 0.8)
    torch.testing.assert_close(whiten(constant), torch.full_like(constant, 0.5), atol=1e-6, rtol=0)
    image = torch.rand(2, 1, 128, 128, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(whiten(image), whiten(image.double()).float(), atol=1e-5, rtol=0)


def test_a_wrong_size_is_a_clear_error():
    with pytest.raises(ValueError, match="expects 128x128"):
        Whitening(128)(torch.zeros(1, 1, 64, 64))
    with pytest.raises(ValueError, match="even image size"):
        whitening_filter(127)
