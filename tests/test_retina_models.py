"""The 128x128 model family: log-polar bank, poses, glimpse geometry, shapes and first glimpses."""

import math
from types import SimpleNamespace

import pytest
import torch
from hydra.utils import instantiate
from torchmetrics.classification import MulticlassAccuracy

from stn_fovea.callbacks.lost_glimpse import LostGlimpseError, StopOnLostGlimpse
from stn_fovea.models.module import ON_IMAGE, GlimpseModule
from stn_fovea.models.pose import AttentionPose, TranslationPose
from stn_fovea.models.retina import LogPolarRetina, cropped_pyramid, log_polar_bank
from stn_fovea.models.sampler import AffineSampler, glimpse_corners, on_image
from stn_fovea.tasks.classification import Classification


def test_log_polar_bank_shape_normalisation_and_where_the_energy_lies():
    bank = log_polar_bank()  # POLO-ATN: width 32, 2 eccentricities, 16 azimuths, 8 orientations, 1 phase
    assert bank.shape == (2, 16, 8, 1, 32, 32)
    assert torch.allclose(bank.mean(dim=(-2, -1)), torch.zeros(2, 16, 8, 1, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(bank.abs().amax(dim=(-2, -1)), torch.ones(2, 16, 8, 1, dtype=torch.float64))
    energy = bank.pow(2)
    rows = torch.arange(32, dtype=torch.float64)
    total = energy.sum(dim=(-2, -1))
    centroid_row = (energy.sum(-1) * rows).sum(-1) / total - 16
    centroid_col = (energy.sum(-2) * rows).sum(-1) / total - 16
    # each filter's energy sits towards its azimuth (staggered by half a step on the second ring) ...
    for ecc in range(2):
        for az in range(16):
            azimuth = (az + ecc / 2) * 2 * math.pi / 16
            angles = torch.atan2(centroid_col[ecc, az], centroid_row[ecc, az])
            error = torch.remainder(angles - azimuth + math.pi, 2 * math.pi) - math.pi
            assert float(error.abs().max()) < math.radians(20), (ecc, az)
    # ... the outer ring farther out than the inner one, and the energy alike around a ring
    distance = torch.sqrt(centroid_row**2 + centroid_col**2)
    assert float(distance[1].mean()) > float(distance[0].mean()) + 1.0
    for ecc in range(2):
        assert float(total[ecc].max() / total[ecc].min()) < 2.5


def test_cropped_pyramid_levels_and_retina_code_shape():
    flat = torch.full((2, 1, 128, 128), 0.7)
    levels = cropped_pyramid(flat)
    assert levels.shape == (2, 3, 1, 32, 32)
    assert torch.allclose(levels[:, :2], torch.zeros(2, 2, 1, 32, 32), atol=1e-6)  # Laplacian of a constant
    assert torch.allclose(levels[:, 2], torch.full((2, 1, 32, 32), 0.7))
    retina = LogPolarRetina()
    code = retina(torch.rand(3, 1, 128, 128))
    assert code.shape == (3, 768) and retina.out_features == 768
    assert float(retina(flat).abs().max()) < 1e-3  # zero-mean filters ignore a uniform image
    assert not any(p.requires_grad for p in retina.parameters())


def test_attention_and_translation_poses_build_scaled_translations():
    theta = AttentionPose(0.2)(torch.tensor([[0.3, 0.5, -0.25]]))
    assert torch.equal(theta, torch.tensor([[[0.3, 0.0, 0.5], [0.0, 0.3, -0.25]]]))
    assert torch.equal(AttentionPose(0.2).initial_params(), torch.tensor([0.2, 0.0, 0.0]))
    fixed = TranslationPose(0.2)(torch.tensor([[0.1, 0.2]]))
    assert torch.allclose(fixed, torch.tensor([[[0.2, 0.0, 0.1], [0.0, 0.2, 0.2]]]))
    assert torch.equal(TranslationPose().initial_params(), torch.zeros(2))


def test_a_bounded_translation_keeps_the_window_on_the_image():
    """max_shift = 1 - scale: whatever the head outputs, the 0.25-scale window lies wholly on the
    image (the outputs our peripheral ATN's localisation gave when it had sent every glimpse off the
    image, and far beyond); unbounded, the same outputs put it off the image."""
    outputs = torch.tensor([[0.54, -2.1], [100.0, -100.0], [0.0, 0.0]])
    bounded = glimpse_corners(TranslationPose(0.25, max_shift=0.75)(outputs), (128, 128))
    assert bool(((bounded >= -0.5 - 1e-4) & (bounded <= 127.5 + 1e-4)).all())
    assert torch.allclose(bounded[2, :, 0].mean(), torch.tensor(63.5))  # the centre stays the start
    unbounded = glimpse_corners(TranslationPose(0.25)(outputs[:1]), (128, 128))
    assert float(unbounded[0, :, 1].max()) < -0.5  # wholly above the image
    raw = torch.tensor([[0.3, -0.2]], requires_grad=True)  # and a bounded shift still learns
    TranslationPose(0.25, max_shift=0.75)(raw)[0, :, 2].sum().backward()
    assert bool((raw.grad > 0).all())
    with pytest.raises(ValueError, match="max_shift"):
        TranslationPose(0.25, max_shift=0.0)


def test_a_window_is_on_the_image_while_it_reads_any_of_it():
    """A 25.6 px window (scale 0.2) moved right, then down: on the image while bilinear sampling
    reads any pixel of it, off once none (tx = 1.205: its edge 0.2 px short of where the last pixel's
    weight ends; 1.21: beyond it)."""
    shifts = torch.tensor([0.0, 0.9, 1.205, 1.21, 3.0])
    thetas = torch.zeros(5, 2, 3)
    thetas[:, 0, 0] = thetas[:, 1, 1] = 0.2
    for axis in (0, 1):
        moved = thetas.clone()
        moved[:, axis, 2] = shifts
        assert on_image(glimpse_corners(moved, (128, 128)), (128, 128)).tolist() == [True] * 3 + [False] * 2
        moved[:, axis, 2] = -shifts
        assert on_image(glimpse_corners(moved, (128, 128)), (128, 128)).tolist() == [True] * 3 + [False] * 2


def test_glimpse_corners_follow_the_sampling_grid():
    identity = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    corners = glimpse_corners(identity, (128, 128))
    assert torch.allclose(
        corners[0], torch.tensor([[-0.5, -0.5], [127.5, -0.5], [127.5, 127.5], [-0.5, 127.5]])
    )
    # tx = 0.625 shows the window 40 px to the right of the centre
    window = glimpse_corners(torch.tensor([[[0.2, 0.0, 0.625], [0.0, 0.2, 0.0]]]), (128, 128))[0]
    assert float(window[:, 0].mean()) == pytest.approx(63.5 + 40.0)
    assert float(window[1, 0] - window[0, 0]) == pytest.approx(25.6)
    # a bright square there is what the 28x28 glimpse reads
    image = torch.zeros(1, 1, 128, 128)
    image[..., 54:74, 94:114] = 1.0
    glimpse = AffineSampler((28, 28))(image, torch.tensor([[[0.2, 0.0, 0.625], [0.0, 0.2, 0.0]]]))
    assert float(glimpse[..., 8:20, 8:20].min()) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("model", "glimpse_side", "theta"),
    [
        ("stn128", 128, [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]),
        ("atn", 28, [0.2, 0.0, 0.0, 0.0, 0.2, 0.0]),
        ("polo_atn", 28, [0.2, 0.0, 0.0, 0.0, 0.2, 0.0]),
        ("peripheral_atn", 28, [0.25, 0.0, 0.0, 0.0, 0.25, 0.0]),
    ],
)
def test_every_128_model_has_its_shapes_and_first_glimpse(compose_train, model, glimpse_side, theta):
    module = instantiate(compose_train(f"model={model}", "data=mnist128").model)
    image = torch.rand(2, 1, 128, 128)
    output = module(image)
    assert output.logits.shape == (2, 10)
    assert output.glimpses.shape == (2, 1, 1, glimpse_side, glimpse_side)
    assert torch.allclose(output.thetas[:, 0], torch.tensor(theta).view(1, 2, 3).expand(2, 2, 3))
    if model == "stn128":
        assert torch.allclose(output.glimpses[:, 0], image, atol=1e-5)  # identity at initialisation
    else:
        # the first glimpse is a centred window: a uniform centre gives a uniform glimpse
        centred = torch.zeros(1, 1, 128, 128)
        centred[..., 44:84, 44:84] = 0.8
        assert torch.allclose(module(centred).glimpses[:, 0], torch.full((1, 1, 28, 28), 0.8))


def watched(net: torch.nn.Module) -> GlimpseModule:
    task = Classification(torch.nn.CrossEntropyLoss(), {"acc": MulticlassAccuracy(num_classes=10)})
    return GlimpseModule(net, task, optimizer=lambda groups: torch.optim.SGD(groups, lr=0.1))


def test_the_share_of_windows_on_the_image_is_logged_per_glimpse_and_a_lost_glimpse_stops_the_run():
    """One share per glimpse index of a several-glimpse model: a learned saccade that left the image
    for every input stops the run although the first glimpse (at the centre) stays on it; a share
    above 0, or no share at all, does not. Reflection padding mirrors the image into a window off it,
    so those models are not watched."""
    on = glimpse_corners(TranslationPose(0.25)(torch.zeros(4, 2)), (128, 128))
    off = glimpse_corners(TranslationPose(0.25)(torch.full((4, 2), 3.0)), (128, 128))
    module, logged = watched(torch.nn.Linear(1, 1)), {}
    module.log = lambda name, value, **options: logged.update({name: float(value)})  # type: ignore[method-assign]
    module._log_windows_on_image(torch.stack((on, off), dim=1), torch.Size((128, 128)), {})
    assert logged == {f"{ON_IMAGE}/0": 1.0, f"{ON_IMAGE}/1": 0.0}
    logged.clear()
    module._log_windows_on_image(torch.cat((on[:1], off[1:])).unsqueeze(1), torch.Size((128, 128)), {})
    assert logged == {ON_IMAGE: 0.25}

    def epoch_end(metrics: dict[str, float]) -> None:
        trainer = SimpleNamespace(
            callback_metrics={k: torch.tensor(v) for k, v in metrics.items()}, current_epoch=4
        )
        StopOnLostGlimpse().on_train_epoch_end(trainer, module)  # type: ignore[arg-type]

    with pytest.raises(LostGlimpseError, match=f"epoch 4 .*{ON_IMAGE}/1 = 0"):
        epoch_end({f"{ON_IMAGE}/0": 1.0, f"{ON_IMAGE}/1": 0.0, "train/acc": 0.0})
    epoch_end({ON_IMAGE: 0.25, "train/acc": 0.0})  # a share left on the image, and other metrics at 0
    epoch_end({})
    assert module.watch_windows
    assert not watched(AffineSampler(padding_mode="reflection")).watch_windows
    assert watched(AffineSampler(padding_mode="border")).watch_windows
