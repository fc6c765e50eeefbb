"""`python -m stn_fovea.bench`: samples/s of the data generators and of training steps, per device.

Numbers come from wall-clock timing of repeated calls after a warm-up, synchronised on GPU:
- generators: our batched torch recipes (28x28 and 128x128), and the reference per-sample numpy +
  MotionClouds 128x128 pipeline (when MotionClouds is installed) as the yardstick;
- training steps: render a batch from raw digits on the device, forward, backward, optimiser step;
  the epoch time is 55,000 training digits at that rate (validation not included);
- the training loop's overhead: the same model and data in a bare PyTorch loop and in Lightning's;
- Adam steps of an MLP (What/Where's Where net by default) with torch's three implementations
  (for-loop, foreach, fused), and with half the entries dead (zero gradients, denormal moments, as
  dead ReLU units leave them) with and without flush_denormal (CPU only; it applies to threads started
  after it is set, so time these with threads=1): the optimiser was half of a Where-net training step.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext

import hydra
import lightning as L
import numpy as np
import torch
from hydra import compose
from hydra.utils import instantiate
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from stn_fovea.allocator import tune_glibc_malloc
from stn_fovea.data.counter_rng import sample_keys
from stn_fovea.data.recipe import Recipe
from stn_fovea.data.reference_pipeline import ReferencePipeline
from stn_fovea.errors import ConfigError, user_errors_exit

EPOCH_DIGITS = 55_000


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def samples_per_second(
    step: Callable[[], None], batch: int, device: torch.device, min_seconds: float
) -> float:
    """Run ``step`` (one batch) for at least ``min_seconds`` after two warm-up calls."""
    for _ in range(2):
        step()
    _synchronise(device)
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_seconds:
        step()
        calls += 1
        if calls % 5 == 0:
            _synchronise(device)
    _synchronise(device)
    return calls * batch / (time.perf_counter() - start)


def _batches(recipe: Recipe, batch: int, device: torch.device) -> Callable[[], torch.Tensor]:
    """A function rendering a new batch of random digits at every call (fresh keys each time)."""
    digits = torch.randint(0, 256, (batch, 28, 28), dtype=torch.uint8, device=device)
    counter = iter(range(10**9))

    def render() -> torch.Tensor:
        index = torch.arange(batch, device=device) + batch * next(counter)
        return recipe(digits, sample_keys(index, 0, "train", *recipe.level)).images

    return render


def bench_generator(recipe: Recipe, batch: int, device: torch.device, min_seconds: float) -> float:
    render = _batches(recipe, batch, device)

    def step() -> None:
        render()

    return samples_per_second(step, batch, device, min_seconds)


def bench_reference_pipeline(min_seconds: float) -> float:
    """Samples/s of the reference per-sample numpy + MotionClouds pipeline (one process)."""
    pipeline = ReferencePipeline()
    digit = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    counter = iter(range(10**9))
    return samples_per_second(lambda: pipeline(digit, next(counter)), 1, torch.device("cpu"), min_seconds)


def _optimizer(module: L.LightningModule) -> torch.optim.Optimizer:
    """The module's optimiser (configure_optimizers returns it alone or in a dict with its scheduler)."""
    configured = module.configure_optimizers()
    return configured["optimizer"] if isinstance(configured, dict) else configured


def bench_training_step(
    model_cfg: DictConfig,
    recipe: Recipe,
    batch: int,
    device: torch.device,
    min_seconds: float,
    channels_last: bool = False,
    amp: bool = False,
) -> float:
    """Samples/s of render + forward + backward + SGD step; ``amp`` (bf16 autocast) applies on GPU."""
    module = instantiate(model_cfg).to(device)
    optimizer = _optimizer(module)
    gpu = device.type == "cuda"
    if channels_last:
        module = module.to(memory_format=torch.channels_last)
    render = _batches(recipe, batch, device)
    labels = torch.randint(0, 10, (batch,), device=device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if amp and gpu else nullcontext()

    def step() -> None:
        images = render()
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = module.task.loss(module(images), {"label": labels})
        loss.backward()
        optimizer.step()

    return samples_per_second(step, batch, device, min_seconds)


ADAM_IMPLEMENTATIONS = {
    "for-loop": {"foreach": False},
    "foreach": {"foreach": True},
    "fused": {"fused": True},
}


def bench_adam_step(
    sizes: Sequence[int],
    implementation: str,
    device: torch.device,
    min_seconds: float,
    dead: float = 0.0,
    flush_denormal: bool = False,
) -> float:
    """Adam steps per second on the parameters of an MLP with layer ``sizes``, gradients set once. A
    ``dead`` fraction of the entries has zero gradients and denormal moments (1e-39: the first moment
    decays to 0 within ~150 steps, the second one stays), as dead ReLU units leave them;
    ``flush_denormal`` computes with denormals as 0 (torch.set_flush_denormal)."""
    layers = [torch.nn.Linear(a, b) for a, b in itertools.pairwise(sizes)]
    params = [p for layer in layers for p in layer.to(device).parameters()]
    generator = torch.Generator().manual_seed(0)
    for param in params:
        param.grad = torch.randn(param.shape, generator=generator).to(device)
    optimizer = torch.optim.Adam(params, lr=1e-4, **ADAM_IMPLEMENTATIONS[implementation])
    optimizer.step()
    for param in params:
        mask = (torch.rand(param.shape, generator=generator) < dead).to(device)
        param.grad[mask] = 0.0
        for moment in ("exp_avg", "exp_avg_sq"):
            optimizer.state[param][moment][mask] = 1e-39
    torch.set_flush_denormal(flush_denormal)
    try:
        return samples_per_second(optimizer.step, 1, device, min_seconds)
    finally:
        torch.set_flush_denormal(False)


class _EpochClock(L.Callback):
    """Wall time of each training epoch of a Lightning run (start to end of the epoch's batches)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.seconds.append(time.perf_counter() - self._start)


def bench_loop_overhead(model: str, data: str, train_size: int, epochs: int = 2) -> tuple[float, float]:
    """Training samples/s of the same model, data and batches in a bare PyTorch loop (render, forward,
    loss, backward, step) and in Lightning's loop (``Trainer.fit`` as ``stn_fovea.train`` runs it: the
    module's step with its metrics and logging; no validation, checkpoints, logger or progress bar).
    The last of ``epochs`` epochs is timed (the first warms up), on the CPU."""
    cfg = compose("train", overrides=[f"model={model}", f"data={data}", f"data.train_size={train_size}"])

    def build() -> tuple[L.LightningModule, L.LightningDataModule]:
        torch.manual_seed(0)
        datamodule = instantiate(cfg.data)
        datamodule.prepare_data()
        datamodule.setup("fit")
        return instantiate(cfg.model).to(memory_format=torch.channels_last), datamodule

    module, datamodule = build()
    optimizer = _optimizer(module)
    module.train()
    for _ in range(epochs):
        start = time.perf_counter()
        for batch in datamodule.train_dataloader():
            batch = datamodule.render(batch)
            optimizer.zero_grad(set_to_none=True)
            module.task.loss(module(batch["image"]), batch).backward()
            optimizer.step()
        bare = time.perf_counter() - start
    module, datamodule = build()
    clock = _EpochClock()
    trainer = L.Trainer(
        accelerator="cpu", devices=1, max_epochs=epochs, limit_val_batches=0, num_sanity_val_steps=0,
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[clock],
    )  # fmt: skip
    trainer.fit(module, datamodule=datamodule)
    return train_size / bare, train_size / clock.seconds[-1]


def devices(choice: str) -> list[torch.device]:
    if choice == "auto":
        return [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda was asked for but no CUDA device is available; use device=cpu or auto")
    if choice not in ("cpu", "cuda"):
        raise ConfigError(f"device must be auto, cpu or cuda, got {choice!r}")
    return [torch.device(choice)]


def _recipe_for(data: str) -> Recipe:
    """The recipe of the fixed validation protocol of ``conf/data/<data>.yaml`` (e.g. shift std 15 px)."""
    try:
        config = compose("train", overrides=[f"data={data}"])
    except Exception as error:  # Hydra's MissingConfigException lists the options
        raise ConfigError(f"benchmark data {data!r}: {str(error).splitlines()[0]}") from error
    # random digits, as the batches' own: a cluttered recipe cuts its clutter from them
    return instantiate(config.data).val_recipe.bind(torch.randint(0, 256, (1000, 28, 28), dtype=torch.uint8))


def run(cfg: DictConfig) -> Table:
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    table = Table(
        title=f"stn_fovea benchmark (torch {torch.__version__}, {torch.get_num_threads()} CPU threads)"
    )
    for column in ("what", "device", "batch", "samples/s", "epoch (55k digits)", "note"):
        table.add_column(column, justify="left" if column in ("what", "device", "note") else "right")
    reference_rate = None
    if cfg.reference_pipeline:
        try:
            reference_rate = bench_reference_pipeline(cfg.min_seconds)
        except ConfigError as error:
            table.add_row("reference numpy+MotionClouds 128", "cpu", "1", "-", "-", str(error))
        else:
            table.add_row(
                "reference numpy+MotionClouds 128", "cpu", "1", f"{reference_rate:,.0f}", "", "1 process"
            )
    for device in devices(cfg.device):
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        for data in cfg.generators:
            recipe = _recipe_for(data)
            for batch in cfg.generator_batch_sizes:
                rate = bench_generator(recipe, int(batch), device, cfg.min_seconds)
                note = ""
                if data == "mnist128" and reference_rate:
                    note = f"{rate / reference_rate:.1f}x the reference"
                table.add_row(f"generator {data}", name, str(batch), f"{rate:,.0f}", "", note)
        amp = bool(cfg.amp) and device.type == "cuda"
        variants = [(False, False)] + ([(bool(cfg.channels_last), amp)] if cfg.channels_last or amp else [])
        for model, data in cfg.models.items():
            train_cfg = compose("train", overrides=[f"model={model}", f"data={data}"])
            recipe = _recipe_for(data)
            for channels_last, amp in variants:
                rate = bench_training_step(
                    train_cfg.model, recipe, int(cfg.batch_size), device, cfg.min_seconds, channels_last, amp
                )
                options = ", ".join(
                    option for option, on in (("channels_last", channels_last), ("bf16 autocast", amp)) if on
                )
                table.add_row(
                    f"train step {model}",
                    name,
                    str(cfg.batch_size),
                    f"{rate:,.0f}",
                    f"{EPOCH_DIGITS / rate:,.0f} s",
                    "incl. rendering" + (f"; {options}" if options else ""),
                )
        if cfg.adam_mlp:
            sizes = [int(size) for size in cfg.adam_mlp]
            count = sum(a * b + b for a, b in itertools.pairwise(sizes))
            cases = [(i, 0.0, False) for i in ADAM_IMPLEMENTATIONS] + [
                (i, 0.5, flush) for i in ("foreach", "fused") for flush in (False, True)
            ]
            for implementation, dead, flush in cases:
                rate = bench_adam_step(sizes, implementation, device, cfg.min_seconds, dead, flush)
                state = f", {dead:.0%} dead" + (", flush_denormal" if flush else "") if dead else ""
                table.add_row(
                    f"Adam step ({implementation}{state})", name, "", f"{rate:,.1f}", "",
                    f"steps/s; MLP {'-'.join(map(str, sizes))}, {count / 1e6:.1f} M params",
                )  # fmt: skip
    if cfg.loop_overhead:
        settings = cfg.loop_overhead
        bare, lightning = bench_loop_overhead(settings.model, settings.data, int(settings.train_size))
        label = f"{settings.model} on {settings.data}"
        table.add_row(f"train loop {label}: bare PyTorch", "cpu", "", f"{bare:,.0f}", "", "")
        table.add_row(
            f"train loop {label}: Lightning", "cpu", "", f"{lightning:,.0f}", "",
            f"{lightning / bare:.1%} of the bare loop's samples/s",
        )  # fmt: skip
    return table


@hydra.main(version_base="1.3", config_path="../conf", config_name="bench")
def main(cfg: DictConfig) -> None:
    tune_glibc_malloc()  # large per-batch tensors: avoid mmap/munmap churn
    with user_errors_exit():
        Console(width=150).print(run(cfg))


if __name__ == "__main__":
    main()
