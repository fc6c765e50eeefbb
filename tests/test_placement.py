"""STN placements (Finnveden et al. 2021): C0, CX, DLX, SLX and the iterative transformer."""

from __future__ import annotations

import pytest
import torch

from stn_fovea.errors import ConfigError
from stn_fovea.models.placement import PlacedSTN, compose


def translation(tx: float, ty: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    return torch.tensor([[[scale, 0.0, tx], [0.0, scale, ty]]])


def test_compose_is_first_applied_to_the_points_then_maps():
    # an output point p goes through `then` to the once-warped image, then through `first` to the input
    first, then = translation(0.2, -0.1, scale=0.5), translation(0.4, 0.3, scale=2.0)
    point = torch.tensor([0.3, -0.7, 1.0])
    expected = first[0] @ torch.cat((then[0] @ point, torch.ones(1)))
    assert torch.allclose(compose(first, then)[0] @ point, expected)


@pytest.mark.parametrize(("placement", "layer"), [("c", 0), ("c", 1), ("c", 2), ("dl", 1), ("sl", 2)])
def test_every_placement_starts_at_the_identity_and_reads_its_input_size(placement, layer):
    torch.manual_seed(0)
    net = PlacedSTN(placement, layer, input_size=60, downsample=2)
    image = torch.rand(3, 1, 60, 60)
    out = net(image)
    assert out.logits.shape == (3, 10) and out.glimpses.shape == (3, 1, 1, 30, 30)
    assert torch.allclose(out.thetas[:, 0], translation(0.0).expand(3, 2, 3))
    corners = torch.tensor([[-0.5, -0.5], [59.5, -0.5], [59.5, 59.5], [-0.5, 59.5]])  # the whole image
    assert torch.allclose(out.windows[0, 0], corners)
    with pytest.raises(ValueError, match="60px"):
        net(torch.rand(1, 1, 28, 28))


@pytest.mark.parametrize(("placement", "layer"), [("c", 0), ("c", 1), ("dl", 1), ("sl", 1)])
def test_the_glimpse_is_the_input_warped_by_the_predicted_transform(placement, layer):
    torch.manual_seed(0)
    net = PlacedSTN(placement, layer, input_size=60, downsample=2)
    with torch.no_grad():  # a transformer that moves: theta depends on the image
        net.localization.head.weight.normal_(std=0.3)
    image = torch.rand(3, 1, 60, 60)
    out = net(image)
    assert not torch.allclose(out.thetas[:, 0], translation(0.0).expand(3, 2, 3), atol=1e-2)
    expected = net.sampler(image, out.thetas[:, 0], (30, 30))
    torch.testing.assert_close(out.glimpses[:, 0], expected)


def test_the_cnn_baseline_reads_what_an_untrained_input_transformer_reads():
    torch.manual_seed(0)
    c0, cnn = (PlacedSTN(placement, 0, input_size=60, downsample=2) for placement in ("c", "none"))
    assert cnn.localization_parameters() == [] and cnn.localization is None
    cnn.blocks.load_state_dict(c0.blocks.state_dict())
    cnn.readout.load_state_dict(c0.readout.state_dict())
    image = torch.rand(2, 1, 60, 60)
    out = cnn(image)
    assert torch.allclose(out.thetas[:, 0], translation(0.0).expand(2, 2, 3))
    assert torch.allclose(out.logits, c0(image).logits)  # C0 starts at the identity: the same read-out
    assert out.glimpses.shape == (2, 1, 1, 30, 30)


def test_shared_localisation_adds_no_parameters_and_deeper_localisation_copies_the_blocks():
    count = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    c1, s1, d1 = (PlacedSTN(p, 1, input_size=28) for p in ("c", "sl", "dl"))
    assert count(s1) == count(c1)  # the paper's point: SLX costs no more than CX
    shared = {id(p) for p in s1.localization_parameters()}
    assert not shared & {id(p) for p in s1.blocks.parameters()}  # the shared block is the classifier's
    copies = list(d1.copies.parameters())
    assert copies and not {id(p) for p in copies} & {id(p) for p in d1.blocks.parameters()}
    assert torch.equal(copies[0], d1.blocks[0][0].weight)  # a copy: same start, its own parameters
    assert count(d1) == count(c1) + sum(p.numel() for p in d1.blocks[0].parameters())


def test_iterations_compose_the_predicted_transforms_and_resample_the_input():
    # a localisation net that always predicts "move by 0.25": k iterations move by 0.25 k in all
    for iterations in (1, 3):
        net = PlacedSTN("sl", 1, input_size=28, iterations=iterations)
        net.localization.head.bias.data = torch.tensor([1.0, 0.0, 0.25, 0.0, 1.0, 0.0])
        theta = net(torch.rand(2, 1, 28, 28)).thetas[:, 0]
        assert torch.allclose(theta, translation(0.25 * iterations).expand(2, 2, 3))


def test_the_feature_map_transformer_warps_features_not_the_image():
    torch.manual_seed(0)
    net = PlacedSTN("c", 1, input_size=28).eval()
    image = torch.rand(1, 1, 28, 28)
    before = net(image).logits
    net.localization.head.bias.data = torch.tensor([1.0, 0.0, 0.5, 0.0, 1.0, 0.0])  # shift the features
    moved = net(image)
    assert not torch.allclose(moved.logits, before)
    assert moved.windows[0, 0, 0, 0] == pytest.approx(6.5)  # the equivalent window in input pixels
    loss = moved.logits.sum()
    loss.backward()
    assert net.localization.head.weight.grad is not None and net.localization.head.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"placement": "x"}, "placement must be one of"),
        ({"placement": "sl", "layer": 0}, r"layer=0 must lie in \[1, 2\]"),
        ({"placement": "c", "layer": 3}, r"layer=3 must lie in \[0, 2\]"),
        ({"placement": "c", "layer": 1, "iterations": 2}, "iterations=2"),
        ({"placement": "none", "layer": 1}, "placement 'none' has no transformer"),
        ({"downsample": 3}, "downsample=3"),
    ],
)
def test_bad_placements_are_one_clear_line(settings, message):
    with pytest.raises(ConfigError, match=message):
        PlacedSTN(input_size=28, **settings)
