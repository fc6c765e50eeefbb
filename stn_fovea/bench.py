"""`python -m stn_fovea.bench`: print samples/s of the data generator and of training steps.

Numbers come from wall-clock timing of repeated calls after a warm-up, synchronised on GPU.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import hydra
import torch
import torch.nn.functional as F
from hydra import compose
from hydra.utils import instantiate
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from stn_fovea.data.counter_rng import sample_keys
from stn_fovea.data.shifted_digits import ShiftedDigits


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


def bench_generator(batch: int, device: torch.device, min_seconds: float) -> float:
    recipe = ShiftedDigits(shift_std_px=15.0)
    digits = torch.randint(0, 256, (batch, 28, 28), dtype=torch.uint8, device=device)
    counter = iter(range(10**9))

    def step() -> None:
        index = torch.arange(batch, device=device) + batch * next(counter)
        recipe(digits, sample_keys(index, 0, "train", 15.0))

    return samples_per_second(step, batch, device, min_seconds)


def bench_training_step(model_cfg: DictConfig, batch: int, device: torch.device, min_seconds: float) -> float:
    module = instantiate(model_cfg).to(device)
    optimizer = module.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    images = torch.rand(batch, 1, 28, 28, device=device)
    labels = torch.randint(0, 10, (batch,), device=device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(module(images).logits, labels).backward()
        optimizer.step()

    return samples_per_second(step, batch, device, min_seconds)


def devices(choice: str) -> list[torch.device]:
    if choice == "auto":
        return [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    return [torch.device(choice)]


@hydra.main(version_base="1.3", config_path="../conf", config_name="bench")
def main(cfg: DictConfig) -> None:
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    table = Table(
        title=f"stn_fovea benchmark (torch {torch.__version__}, {torch.get_num_threads()} CPU threads)"
    )
    for column in ("what", "device", "batch", "samples/s"):
        table.add_column(column, justify="right" if column in ("batch", "samples/s") else "left")
    for device in devices(cfg.device):
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        for batch in cfg.generator_batch_sizes:
            rate = bench_generator(int(batch), device, cfg.min_seconds)
            table.add_row("generator mnist28 (std 15)", name, str(batch), f"{rate:,.0f}")
        for model in cfg.models:
            model_cfg = compose("train", overrides=[f"model={model}"]).model
            rate = bench_training_step(model_cfg, int(cfg.batch_size), device, cfg.min_seconds)
            table.add_row(f"train step {model}", name, str(cfg.batch_size), f"{rate:,.0f}")
    Console().print(table)


if __name__ == "__main__":
    main()
