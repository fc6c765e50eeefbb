"""OmegaConf resolvers used by the configs (registered when stn_fovea.train is imported)."""

from __future__ import annotations

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from stn_fovea.checkpoint import run_dir_of
from stn_fovea.errors import ConfigError


def device_for_job(job_num: int, device_count: int) -> int:
    """Round-robin device index of sweep job ``job_num`` over ``device_count`` devices."""
    if device_count < 1:
        raise ConfigError(
            "trainer=gpu_sweep found no CUDA device: use trainer=cpu (or trainer=default) for this sweep"
        )
    return job_num % device_count


def _job_gpu() -> int:
    num = HydraConfig.get().job.get("num") if HydraConfig.initialized() else 0
    return device_for_job(int(num or 0), torch.cuda.device_count())


def register() -> None:
    if not OmegaConf.has_resolver("job_gpu"):
        OmegaConf.register_new_resolver("job_gpu", _job_gpu)
    if not OmegaConf.has_resolver("run_dir_of"):  # hydra.run.dir: a resumed run continues in its own
        OmegaConf.register_new_resolver("run_dir_of", run_dir_of)
