"""The LightningDataModule of every noisy-MNIST experiment; the recipe (28x28 shifts, 128x128 retina,
...) comes from the data config.

The DataLoaders only carry raw uint8 digits, labels and dataset indices. The noisy images are rendered
batch-wise on the training device in ``on_after_batch_transfer``, by a pure generator ("recipe"), from
per-sample keys ``(seed, split, index, curriculum level)``. Validation and test images are therefore the
same for every run and model with the same data seed, and a curriculum only has to swap the recipe.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch import Tensor
from torch.utils.data import DataLoader, Sampler

from stn_fovea.data.batches import DigitBatches, EpochShuffleSampler, keep_batch
from stn_fovea.data.counter_rng import sample_keys
from stn_fovea.data.mnist import Digits, load_mnist, spread_subset
from stn_fovea.data.recipe import Recipe, Scene
from stn_fovea.data.sample_cache import SampleCache
from stn_fovea.errors import ConfigError

TRAIN, VAL, VAL_LEVEL, TEST = "train", "val", "val_level", "test"
TEST_EACH_EPOCH = "test_each_epoch"  # the headline test set, scored with the validation sets


class NoisyMNIST(L.LightningDataModule):
    """MNIST digits rendered by a recipe: one DataModule for every noisy-MNIST dataset.

    Args:
        recipe: the recipe class (or a partial of it, ``_partial_: true`` in the config); it is built
            with ``recipe_fields``.
        data_dir: root holding ``MNIST/raw`` (downloaded there when missing and ``download``).
        seed: data seed; with it, every sample is a function of (split, index, level).
        shuffle_seed: seed of the training order (a function of (shuffle_seed, epoch)).
        val_size: digits held out of MNIST train for validation; 0 = train on all 60,000 and validate
            on the test digits (with draws of their own), as the reference scored its test set each epoch.
        train_size: use N of the training digits (quick runs); None = all.
        test_size: use N test digits, a seeded subset spread over the whole test set; None = all.
        resample_every_epoch: draw a fresh training set every epoch (the reference keeps it fixed
            within a curriculum stage).
        stage_fixed_draws: a training digit keeps its placement and contrast draws (e.g. its angle and
            |z|, the radius being |z| x the stage's std) in every curriculum stage, as the reference's
            draws seeded by the digit's index do; its noise still changes with the stage. False = every
            stage draws anew.
        cache_train_renders: keep up to this many rendered training samples in memory (by sample id)
            instead of rendering them again each epoch: the same images, faster when the training set
            is fixed and rendering costs as much as the model (What/Where's MLP); 0 = off.
        val_protocol: recipe changes of the fixed validation set that picks the best checkpoint, e.g.
            ``{shift_std_px: 15}``; a second validation set ("val_level") follows the curriculum level.
        test_protocols: name -> recipe changes of each fixed test set (run by ``trainer.test``).
        headline_protocol: the test protocol of the run's headline number (the default sweep metric is
            its accuracy, ``test/<headline_protocol>/acc``); None = "general" where there is one (runs
            saved before this setting existed), else the first protocol.
        test_each_epoch: also score the headline test set after every epoch, logged as
            ``test_each_epoch/<headline_protocol>/acc``: the "best test epoch" some papers report, for
            comparison only (the checkpoint is still picked on the validation set).
        recipe_fields: the recipe's parameters (the fields of its dataclass), e.g. ``contrast``,
            ``noise``; the curriculum changes some of them stage by stage.
    """

    def __init__(
        self,
        recipe: Callable[..., Recipe],
        data_dir: str | Path,
        download: bool = True,
        seed: int = 0,
        shuffle_seed: int = 0,
        batch_size: int = 100,
        eval_batch_size: int = 1000,
        num_workers: int = 0,
        val_size: int = 5000,
        train_size: int | None = None,
        test_size: int | None = None,
        resample_every_epoch: bool = False,
        stage_fixed_draws: bool = False,
        cache_train_renders: int = 0,
        val_protocol: Mapping[str, Any] | None = None,
        test_protocols: Mapping[str, Mapping[str, Any]] | None = None,
        headline_protocol: str | None = None,
        test_each_epoch: bool = False,
        **recipe_fields: Any,
    ) -> None:
        super().__init__()
        if batch_size <= 0 or eval_batch_size <= 0:
            raise ConfigError(f"batch sizes must be positive, got {batch_size} and {eval_batch_size}")
        if not 0 <= val_size < 60000:
            raise ConfigError(f"val_size must be in [0, 60000), got {val_size}")
        if stage_fixed_draws and resample_every_epoch:
            raise ConfigError(
                "data.stage_fixed_draws=true keeps each digit's draws and data.resample_every_epoch=true "
                "draws them anew every epoch: set one of them to false"
            )
        if not test_protocols:
            raise ConfigError("data.test_protocols needs at least one protocol")
        if headline_protocol is None:
            headline_protocol = "general" if "general" in test_protocols else str(next(iter(test_protocols)))
        if headline_protocol not in test_protocols:
            raise ConfigError(
                f"data.headline_protocol={headline_protocol} is not one of data.test_protocols "
                f"{sorted(test_protocols)}: set data.headline_protocol=<one of them>"
            )
        self.headline_protocol, self.test_each_epoch = headline_protocol, test_each_epoch
        try:
            self.train_recipe: Recipe = recipe(**recipe_fields)
        except TypeError as error:  # a field the recipe does not have
            raise ConfigError(f"data: {error}. Check the data config's recipe fields.") from error
        self.val_recipe = self.train_recipe.with_level(**dict(val_protocol or {}))
        self.test_recipes = {
            str(name): self.train_recipe.with_level(**dict(changes))
            for name, changes in test_protocols.items()
        }
        self.data_dir, self.download = Path(data_dir), download
        self.seed, self.shuffle_seed = seed, shuffle_seed
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.num_workers = num_workers
        self.val_size, self.train_size, self.test_size = val_size, train_size, test_size
        self.resample_every_epoch, self.stage_fixed_draws = resample_every_epoch, stage_fixed_draws
        self.render_cache = SampleCache(cache_train_renders)
        self._train: DigitBatches | None = None
        self._val: DigitBatches | None = None
        self._test: Digits | None = None

    @property
    def image_size(self) -> int:
        """Side of the rendered images in pixels."""
        return self.train_recipe.image_size

    # -- curriculum -------------------------------------------------------------------------------
    def set_train_level(self, **level: float) -> None:
        """Apply a curriculum stage (e.g. ``shift_std_px=3``) to training and the val_level set."""
        self.train_recipe = self.train_recipe.with_level(**level)

    def check_level(self, **level: float) -> None:
        """Raise a ConfigError now if a curriculum stage is invalid for this dataset."""
        self.train_recipe.with_level(**level)

    # -- data ---------------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        load_mnist(self.data_dir, train=True, download=self.download)
        load_mnist(self.data_dir, train=False, download=self.download)

    def setup(self, stage: str | None = None) -> None:
        if self._test is None:
            self._test = load_mnist(self.data_dir, train=False, download=self.download)
        if self._train is None:
            train = load_mnist(self.data_dir, train=True, download=self.download)
            order = torch.randperm(len(train.labels), generator=torch.Generator().manual_seed(self.seed))
            val_indices, train_indices = order[: self.val_size], order[self.val_size :]
            if self.train_size is not None:
                train_indices = train_indices[: self.train_size]
            self._train = DigitBatches(train, train_indices, TRAIN)
            if self.val_size:
                self._val = DigitBatches(train, val_indices, VAL)
            else:  # the test digits, drawn with the "val" split's keys (not the test protocols' images)
                test = self.test_digits
                self._val = DigitBatches(test, torch.arange(len(test.labels)), VAL)
            self._bind(train.images)

    def _bind(self, pool: Tensor) -> None:
        """Give every recipe the MNIST training digits (a cluttered recipe cuts its clutter from them)."""
        self.train_recipe = self.train_recipe.bind(pool)
        self.val_recipe = self.val_recipe.bind(pool)
        self.test_recipes = {name: recipe.bind(pool) for name, recipe in self.test_recipes.items()}

    @property
    def test_digits(self) -> Digits:
        """The MNIST test digits of the test protocols: all, or ``test_size`` of them drawn with the data
        seed from the whole set (never the first N: the set is ordered by writer population)."""
        self.setup("test")
        assert self._test is not None
        total = len(self._test.labels)
        chosen = spread_subset(total, self.test_size or total, self.seed)
        return Digits(self._test.images[chosen], self._test.labels[chosen])

    @property
    def world_size(self) -> int:
        """Processes that share the data (DDP): 1 outside a distributed run."""
        return self.trainer.world_size if self.trainer is not None else 1

    def _loader(self, dataset: DigitBatches, batch_size: int, shuffle: bool) -> DataLoader:
        """Training: the epoch's order, which Lightning splits over the processes under DDP. Evaluation:
        the digits in order; under DDP each process reads its own share, every digit exactly once (no
        padding), and the metrics are summed over the processes."""
        sampler: Sampler[int] | None = None
        if shuffle:
            sampler = EpochShuffleSampler(len(dataset), self.shuffle_seed)
        elif self.world_size > 1:
            assert self.trainer is not None
            sampler = UnrepeatedDistributedSampler(
                dataset, num_replicas=self.world_size, rank=self.trainer.global_rank, shuffle=False
            )
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            collate_fn=keep_batch,
            persistent_workers=False,
        )

    def train_dataloader(self) -> DataLoader:
        """Batches of ``batch_size`` digits in all: under DDP each of the N processes takes 1/N of them."""
        assert self._train is not None, "call setup() first"
        if self.batch_size % self.world_size:
            raise ConfigError(
                f"data.batch_size={self.batch_size} is the global batch, split over {self.world_size} "
                "processes (DDP): make it a multiple of trainer.devices x nodes"
            )
        return self._loader(self._train, self.batch_size // self.world_size, shuffle=True)

    def val_dataloader(self) -> list[DataLoader]:
        assert self._val is not None, "call setup() first"
        level = DigitBatches(self._val.digits, self._val.indices, VAL_LEVEL)
        loaders = [
            self._loader(self._val, self.eval_batch_size, False),
            self._loader(level, self.eval_batch_size, False),
        ]
        if self.test_each_epoch:
            loaders.append(self._test_loader(f"{TEST_EACH_EPOCH}/{self.headline_protocol}"))
        return loaders

    def test_dataloader(self) -> list[DataLoader]:
        return [self._test_loader(f"{TEST}/{name}") for name in self.test_recipes]

    def _test_loader(self, source: str) -> DataLoader:
        """The test digits, in order, as one batch source (``test/<name>`` or ``test_each_epoch/<name>``)."""
        digits = self.test_digits
        batches = DigitBatches(digits, torch.arange(len(digits.labels)), source)
        return self._loader(batches, self.eval_batch_size, False)

    # -- rendering ------------------------------------------------------------------------------------
    def recipe_for(self, source: str) -> tuple[Recipe, str]:
        """The recipe and key split of a batch source ("train", "val", "val_level", "test/<name>")."""
        if source == TRAIN:
            return self.train_recipe, TRAIN
        if source == VAL:
            return self.val_recipe, VAL
        if source == VAL_LEVEL:
            return self.train_recipe, VAL
        for prefix in (TEST, TEST_EACH_EPOCH):  # the same test images, whenever they are scored
            if source.startswith(f"{prefix}/") and source[len(prefix) + 1 :] in self.test_recipes:
                return self.test_recipes[source[len(prefix) + 1 :]], TEST
        raise KeyError(f"unknown batch source {source!r}")

    def sample_keys(self, source: str, index: Tensor) -> Tensor:
        """The keys of samples ``index`` of a batch source: (data seed, split, recipe level[, epoch])."""
        recipe, split = self.recipe_for(source)
        parts: list[int | float | str] = [self.seed, split, *recipe.level]
        if source == TRAIN and self.resample_every_epoch and self.trainer is not None:
            parts.append(self.trainer.current_epoch)
        return sample_keys(index, *parts)

    def render(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Turn a batch of raw digits into noisy images (on the batch's device), with each digit's offset
        ("shift", rows and cols), its contrast, and an id of the rendered image ("sample_id")."""
        source, index = batch["source"], batch["index"]
        recipe, _ = self.recipe_for(source)
        keys = self.sample_keys(source, index)
        # the id of each rendered image: its 32-bit key and its index in the split (< 2**16) side by side
        sample_id = keys * 65536 + index
        # with stage_fixed_draws, a training digit's own draws (placement, contrast); the stage's noise
        fixed = source == TRAIN and self.stage_fixed_draws
        scene = recipe.sample(sample_keys(index, self.seed, TRAIN) if fixed else keys)._replace(keys=keys)
        if source == TRAIN and self.render_cache.max_items:
            images, shifts, contrast = self._cached_render(recipe, batch["digit"], scene, sample_id)
        else:
            images, shifts, contrast = recipe.render(batch["digit"], scene), scene.shifts, scene.contrast
        return {**batch, "image": images, "shift": shifts, "contrast": contrast, "sample_id": sample_id}

    def _cached_render(
        self, recipe: Recipe, digits: Tensor, scene: Scene, sample_id: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``recipe.render(digits, scene)`` through the render cache: each row packs image, shift and
        contrast."""

        def render_rows(positions: Tensor) -> Tensor:
            part = Scene(*(draw[positions] for draw in scene))
            images, shifts, contrast = recipe.render(digits[positions], part), part.shifts, part.contrast
            parts = (images.flatten(1), shifts.to(images.dtype), contrast.to(images.dtype).view(-1, 1))
            return torch.cat(parts, dim=1)

        positions = torch.arange(len(sample_id), device=sample_id.device)
        rows = self.render_cache.encode(positions, sample_id, render_rows)
        size = self.image_size
        images = rows[:, : size * size].view(len(rows), 1, size, size)
        return images, rows[:, -3:-1].round().to(torch.int64), rows[:, -1]

    def on_after_batch_transfer(self, batch: dict[str, Any] | Tensor, dataloader_idx: int) -> Any:
        # a tensor is already images: the model's example input (the model summary counts FLOPs on it)
        return batch if isinstance(batch, Tensor) else self.render(batch)
