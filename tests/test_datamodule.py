import pytest
import torch

from conftest import data_root
from stn_fovea.callbacks.curriculum import Curriculum
from stn_fovea.callbacks.glimpses import draw_glimpse_boxes, input_glimpse_grid
from stn_fovea.data.datamodule import NoisyMNIST
from stn_fovea.data.shifted_digits import ShiftedDigits
from stn_fovea.errors import ConfigError

PROTOCOLS = {"central": {"shift_std_px": 0.0}, "general": {"shift_std_px": 15.0}}


def datamodule(**kwargs) -> NoisyMNIST:
    dm = NoisyMNIST(
        ShiftedDigits,
        data_dir=data_root(),
        val_size=500,
        train_size=1000,
        test_size=300,
        val_protocol={"shift_std_px": 15.0},
        test_protocols=PROTOCOLS,
        **kwargs,
    )
    dm.setup("fit")
    return dm


def first_batch(loader):
    return next(iter(loader))


def test_validation_is_held_out_of_training_and_fixed_across_instances():
    a, b = datamodule(), datamodule(shuffle_seed=99)
    assert not set(a._train.indices.tolist()) & set(a._val.indices.tolist())
    val_a = a.render(first_batch(a.val_dataloader()[0]))
    val_b = b.render(first_batch(b.val_dataloader()[0]))
    assert torch.equal(val_a["image"], val_b["image"])
    test_a = a.render(first_batch(a.test_dataloader()[1]))
    test_b = b.render(first_batch(b.test_dataloader()[1]))
    assert torch.equal(test_a["image"], test_b["image"]) and test_a["source"] == "test/general"
    assert datamodule(seed=1)._val.indices.tolist() != a._val.indices.tolist()


def test_protocols_render_their_own_shift_level():
    dm = datamodule()
    central = dm.render(first_batch(dm.test_dataloader()[0]))
    general = dm.render(first_batch(dm.test_dataloader()[1]))
    assert torch.all(central["shift"] == 0)
    assert 8 < float(general["shift"].float().std()) < 16
    val_level = dm.render(first_batch(dm.val_dataloader()[1]))
    assert torch.all(val_level["shift"] == 0)  # follows the training level (0 before any stage)
    dm.set_train_level(shift_std_px=4.0)
    assert float(dm.render(first_batch(dm.val_dataloader()[1]))["shift"].abs().max()) > 0


def test_set_train_level_rejects_unknown_or_bad_values():
    dm = datamodule()
    with pytest.raises(ConfigError, match="unknown dataset parameter"):
        dm.set_train_level(eccentricity_std_px=3.0)
    with pytest.raises(ConfigError, match=">= 0"):
        dm.check_level(shift_std_px=-1.0)


def test_epoch_shuffle_is_a_function_of_seed_and_epoch():
    sampler = datamodule(shuffle_seed=5).train_dataloader().sampler
    sampler.set_epoch(3)
    order = list(sampler)
    assert sorted(order) == list(range(1000))
    sampler.set_epoch(4)
    assert list(sampler) != order
    sampler.set_epoch(3)
    assert list(sampler) == order


def test_curriculum_stage_timing_and_validation():
    curriculum = Curriculum([{"shift_std_px": 0}, {"shift_std_px": 5}, {"shift_std_px": 9}], [2, 1, 3])
    assert [curriculum.stage_at(e) for e in range(8)] == [0, 0, 1, 2, 2, 2, 2, 2]
    assert curriculum.total_epochs == 6
    with pytest.raises(ConfigError):
        Curriculum([{"shift_std_px": 0}], [1, 2])
    with pytest.raises(ConfigError):
        Curriculum([], 3)
    with pytest.raises(ConfigError, match="stage 1"):
        Curriculum([{"shift_std_px": 0}, {"shift_std_px": -2}], 1).check(datamodule())


def test_input_glimpse_grid_puts_each_glimpse_beside_its_input():
    images, glimpses = torch.zeros(4, 1, 28, 28), torch.ones(4, 1, 14, 14)
    grid = input_glimpse_grid(images, glimpses, pairs_per_row=2)
    # 2 rows of 4 tiles (28 px + 2 px padding each), RGB
    assert grid.shape == (3, 2 + 2 * 30, 2 + 4 * 30)
    assert float(grid[0, 2 + 10, 2 + 10]) == 0.0 and float(grid[0, 2 + 10, 32 + 10]) == 1.0


def test_glimpse_pictures_show_standardised_images_without_clipping_them():
    unit = torch.linspace(0, 1, 28 * 28).view(1, 1, 28, 28)
    assert torch.equal(input_glimpse_grid(unit, unit)[0, 2:30, 2:30], unit[0, 0])  # [0, 1] data as they are
    standardised = (unit - 0.1307) / 0.3081  # data=mnist's: -0.42 .. 2.82
    grid = input_glimpse_grid(standardised, standardised)[0, 2:30, 2:30]
    assert grid.min() == 0.0 and grid.max() == 1.0
    assert torch.allclose(grid, unit[0, 0], atol=1e-6)  # its whole range, in order, none saturated
    boxes = draw_glimpse_boxes(standardised, torch.zeros(1, 1, 4, 2))
    assert (boxes[0, 2:30, 2:30] < 250).float().mean() > 0.9  # not white wherever the digit is above 1


def test_resample_every_epoch_redraws_training_but_not_validation():
    from types import SimpleNamespace

    fixed, fresh = datamodule(), datamodule(resample_every_epoch=True)
    batches = {}
    for dm in (fixed, fresh):
        train_batch, val_batch = first_batch(dm.train_dataloader()), first_batch(dm.val_dataloader()[0])
        for epoch in (0, 1):
            dm.trainer = SimpleNamespace(current_epoch=epoch)
            batches[id(dm), epoch] = dm.render(train_batch)["image"], dm.render(val_batch)["image"]
    assert torch.equal(batches[id(fixed), 0][0], batches[id(fixed), 1][0])
    assert not torch.equal(batches[id(fresh), 0][0], batches[id(fresh), 1][0])
    assert torch.equal(batches[id(fresh), 0][1], batches[id(fresh), 1][1])


def test_cached_training_renders_are_the_renders_and_follow_the_level():
    plain, cached = datamodule(), datamodule(cache_train_renders=10_000)
    batch = first_batch(plain.train_dataloader())
    levels = (2.0, 2.0, 5.0)  # the same stage twice, then a new one
    expected = []
    for level in levels:
        plain.set_train_level(shift_std_px=level)
        expected.append(plain.render(batch))
    calls = []
    recipe_call = type(cached.train_recipe).render

    def counting(recipe, digits, scene):
        calls.append(len(scene.keys))
        return recipe_call(recipe, digits, scene)

    type(cached.train_recipe).render = counting  # type: ignore[method-assign]
    try:
        for level, want in zip(levels, expected, strict=True):
            cached.set_train_level(shift_std_px=level)
            got = cached.render(batch)
            for field in ("image", "shift", "contrast", "sample_id"):
                assert torch.equal(got[field], want[field]), field
            assert got["shift"].dtype == want["shift"].dtype
    finally:
        type(cached.train_recipe).render = recipe_call  # type: ignore[method-assign]
    assert calls == [len(batch["index"]), len(batch["index"])]  # the repeated stage came from the cache
    val = first_batch(cached.val_dataloader()[0])
    type(cached.train_recipe).render = counting  # type: ignore[method-assign]
    try:
        for _ in range(2):  # validation is rendered each time: only training samples are kept
            cached.render(val)
    finally:
        type(cached.train_recipe).render = recipe_call  # type: ignore[method-assign]
    assert calls[2:] == [len(val["index"])] * 2 and len(cached.render_cache) == len(batch["index"]) * 2


def test_stage_fixed_draws_keep_each_digits_placement_and_contrast_but_not_its_noise():
    fixed, fresh = datamodule(stage_fixed_draws=True), datamodule()
    batch = first_batch(fixed.train_dataloader())
    rendered = {}
    for dm in (fixed, fresh):
        for level in ((4.0, (0.3, 0.7), 1.0), (8.0, (0.5, 0.7), 1.0), (8.0, (0.5, 0.7), 0.999)):
            std, contrast, noise = level
            dm.set_train_level(shift_std_px=std, contrast=contrast, noise=noise)
            rendered[id(dm), level] = dm.render(batch)
    low, high, quieter = ((4.0, (0.3, 0.7), 1.0), (8.0, (0.5, 0.7), 1.0), (8.0, (0.5, 0.7), 0.999))
    for dm, keeps in ((fixed, True), (fresh, False)):
        a, b = rendered[id(dm), low], rendered[id(dm), high]
        # the same N(0, 1) draw times the stage's std (truncated toward zero): twice the shift, +-1 px
        same_z = bool(((b["shift"] - 2 * a["shift"]).abs() <= 1).all())
        # the same U(0, 1) draw within each stage's contrast range
        same_u = torch.allclose((a["contrast"] - 0.3) / 0.4, (b["contrast"] - 0.5) / 0.2, atol=1e-5)
        assert same_z == keeps and same_u == keeps
        # a new stage (here only the noise amplitude changes by 0.1 %) draws a new noise field
        moved = (rendered[id(dm), quieter]["image"] - b["image"]).abs().mean()
        assert moved > 0.05
    assert float(rendered[id(fixed), low]["shift"].float().std()) > 2  # digits do move


def test_stage_fixed_draws_and_a_fresh_draw_every_epoch_are_exclusive():
    with pytest.raises(ConfigError, match="stage_fixed_draws"):
        NoisyMNIST(
            ShiftedDigits, data_dir=data_root(), test_protocols=PROTOCOLS,
            stage_fixed_draws=True, resample_every_epoch=True,
        )  # fmt: skip


def test_val_size_0_trains_on_every_digit_and_validates_on_the_test_digits_with_draws_of_their_own():
    dm = NoisyMNIST(
        ShiftedDigits, data_dir=data_root(), val_size=0, test_size=300, test_protocols=PROTOCOLS,
        val_protocol={"shift_std_px": 15.0},
    )  # fmt: skip
    dm.setup("fit")
    assert sorted(dm._train.indices.tolist()) == list(range(60000))
    assert torch.equal(dm._val.digits.images, dm.test_digits.images)
    val = dm.render(first_batch(dm.val_dataloader()[0]))
    test = dm.render(first_batch(dm.test_dataloader()[1]))  # general: the val protocol's level
    assert torch.equal(val["label"], test["label"]) and not torch.equal(val["image"], test["image"])


def test_test_loader_reads_the_seeded_spread_subset_reaching_past_the_middle_of_the_test_set():
    """MNIST's test set is ordered by writer population: a reduced test set must not be its first N.

    The 300 digits the test loader serves are found in the full test set by their pixels, so the
    check does not trust the datamodule's own indices. Catches a subset taken as the first N digits
    (all indices below 300) or one that ignores the data seed.
    """
    from torchvision.datasets import MNIST

    full = MNIST(str(data_root()), train=False, download=False)
    position = {bytes(image.numpy().tobytes()): i for i, image in enumerate(full.data)}
    dm = datamodule()
    served = torch.cat([batch["digit"] for batch in dm.test_dataloader()[0]])
    indices = sorted(position[bytes(image.numpy().tobytes())] for image in served)
    generator = torch.Generator().manual_seed(dm.seed)
    assert indices == sorted(torch.randperm(10_000, generator=generator)[:300].tolist())
    assert sum(i >= 5_000 for i in indices) > 100  # the second writer population is read too
    assert indices != list(range(300))
    other_seed = datamodule(seed=dm.seed + 1)
    assert not torch.equal(other_seed.test_digits.images, dm.test_digits.images)
