import pytest
import torch
from hydra.utils import instantiate

from stn_fovea.models.classifier import WhatNet
from stn_fovea.models.localization import TutorialLocalization
from stn_fovea.models.pose import AffinePose
from stn_fovea.models.sampler import AffineSampler
from stn_fovea.models.transformer import GlimpseClassifier, SpatialTransformer


def digit_image() -> torch.Tensor:
    torch.manual_seed(0)
    image = torch.zeros(2, 1, 28, 28)
    image[:, :, 8:20, 10:18] = torch.rand(2, 1, 12, 8)
    return image


def identity(batch: int) -> torch.Tensor:
    return torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).expand(batch, 2, 3)


@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
def test_identity_theta_returns_the_input(padding_mode):
    image = digit_image()
    glimpse = AffineSampler(padding_mode=padding_mode)(image, identity(2))
    assert torch.allclose(glimpse, image, atol=1e-5)


@pytest.mark.parametrize("pixels", [1, 3, -4])
def test_translation_theta_moves_the_digit_by_the_expected_pixels(pixels):
    image = digit_image()
    theta = identity(2).clone()
    theta[:, 0, 2] = (
        2.0 * pixels / 28
    )  # affine_grid maps output to input: tx = 2 k / W shows content k px right
    glimpse = AffineSampler()(image, theta)
    # the content moves LEFT by k pixels: glimpse[..., c] == image[..., c + k]
    if pixels > 0:
        assert torch.allclose(glimpse[..., : 28 - pixels], image[..., pixels:], atol=1e-5)
    else:
        assert torch.allclose(glimpse[..., -pixels:], image[..., : 28 + pixels], atol=1e-5)


def test_sampler_output_size_and_argument_checks():
    assert AffineSampler(output_size=(12, 12))(digit_image(), identity(2)).shape == (2, 1, 12, 12)
    with pytest.raises(ValueError, match="padding_mode"):
        AffineSampler(padding_mode="wrap")


def test_stn_starts_at_the_identity_and_exposes_theta():
    net = GlimpseClassifier(
        WhatNet(), SpatialTransformer(TutorialLocalization(), AffinePose(), AffineSampler((28, 28)))
    )
    image = digit_image()
    out = net(image)
    assert out.logits.shape == (2, 10)
    assert torch.allclose(out.thetas, identity(2).unsqueeze(1))
    assert torch.allclose(out.glimpses, image.unsqueeze(1), atol=1e-5)


def test_what_baseline_reads_its_input():
    out = GlimpseClassifier(WhatNet())(digit_image())
    assert out.thetas is None and out.logits.shape == (2, 10)
    assert torch.equal(out.glimpses[:, 0], digit_image())
    with pytest.raises(ValueError, match="28x28"):
        WhatNet()(torch.zeros(1, 1, 32, 32))


@pytest.mark.parametrize("model", ["what", "stn"])
def test_model_configs_build_a_module_that_learns_a_batch(compose_train, model):
    cfg = compose_train(f"model={model}", "optimizer=adam", "optimizer.lr=1e-3")
    module = instantiate(cfg.model)
    optimizer = module.configure_optimizers()
    image, labels = digit_image(), torch.tensor([3, 7])
    losses = []
    for _ in range(20):
        loss = torch.nn.functional.cross_entropy(module(image).logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]


def test_localization_lr_scale_makes_a_second_parameter_group(compose_train):
    cfg = compose_train("model=stn", "model.localization_lr_scale=0.1", "optimizer.lr=0.01")
    optimizer = instantiate(cfg.model).configure_optimizers()
    assert [group["lr"] for group in optimizer.param_groups] == pytest.approx([0.01, 0.001])
