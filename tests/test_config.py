"""Every config group option composes, and its objects instantiate."""

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import OmegaConf

import stn_fovea.resolvers
from stn_fovea.data.datamodule import NoisyMNIST
from stn_fovea.errors import ConfigError
from stn_fovea.models.module import GlimpseModule
from stn_fovea.run_setup import build_data, build_model, run_info

CONF = Path(__file__).resolve().parents[1] / "conf"
stn_fovea.resolvers.register()


def options(group: str) -> list[str]:
    return sorted(path.stem for path in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("model", options("model"))
def test_every_model_reads_some_data_and_refuses_the_rest_clearly(compose_train, model):
    readable = []
    for data in options("data"):
        cfg = compose_train(f"model={model}", f"data={data}")
        if "load_pretrained" in cfg.model:  # built from a checkpoint's weights, not its pretrained parts
            cfg = compose_train(f"model={model}", f"data={data}", "model.load_pretrained=false")
        try:
            module = build_model(cfg, build_data(cfg))
        except ConfigError as error:
            assert f"model={model} data={data}" in str(error)
            assert "cannot read" in str(error) or "cannot be built" in str(error)
            continue
        assert isinstance(module, GlimpseModule)
        readable.append(data)
    assert readable, f"model={model} reads none of the data configs"


@pytest.mark.parametrize("optimizer", options("optimizer"))
def test_optimizers_compose(compose_train, optimizer):
    cfg = compose_train(f"optimizer={optimizer}")
    assert type(instantiate(cfg.model).configure_optimizers()).__name__.lower() == optimizer


def test_the_curriculum_and_the_evaluators_follow_the_data_unless_named(compose_train):
    def staged(cfg) -> set[str]:
        return instantiate(cfg.curriculum).stage_parameters() if cfg.curriculum.get("_target_") else set()

    retina = compose_train("data=mnist128", "model=polo_atn")
    assert staged(retina) == {"eccentricity_std_px", "contrast"}
    assert "eccentricity_grid" in retina.evaluators and "shift_map" not in retina.evaluators
    shifted = compose_train("data=mnist28")
    assert staged(shifted) == {"shift_std_px"}
    assert "shift_map" in shifted.evaluators and "eccentricity_grid" not in shifted.evaluators
    assert staged(compose_train("data=mnist128", "curriculum=none")) == set()
    assert staged(compose_train("data=mnist128", "curriculum=shift")) == {"shift_std_px"}


@pytest.mark.parametrize("scheduler", options("scheduler"))
def test_schedulers_compose(compose_train, scheduler):
    cfg = compose_train(f"scheduler={scheduler}")
    configured = instantiate(cfg.model).configure_optimizers()
    assert type(configured["lr_scheduler"]["scheduler"]).__name__.lower().startswith(scheduler)


@pytest.mark.parametrize("experiment", options("experiment"))
def test_experiments_compose_and_cite_their_source(compose_train, experiment):
    cfg = compose_train(f"experiment={experiment}")
    datamodule = instantiate(cfg.data)
    assert isinstance(datamodule, NoisyMNIST)
    assert isinstance(build_model(cfg, datamodule), GlimpseModule)
    if cfg.curriculum.get("_target_"):  # every stage is valid for the experiment's data
        instantiate(cfg.curriculum).check(datamodule)
    header = (CONF / "experiment" / f"{experiment}.yaml").read_text().splitlines()[1]
    assert header.startswith("# ") and len(header) > 20


def test_reference_protocols_have_the_published_parameters(compose_train):
    stn = compose_train("experiment=stn28_reference")
    assert (stn.data.noise, stn.optimizer.lr, stn.curriculum.epochs_per_stage) == (0.75, 0.01, 10)
    assert [stage["shift_std_px"] for stage in stn.curriculum.stages] == list(range(16))
    assert OmegaConf.to_container(stn.data.contrast) == [0.3, 0.7]
    what = compose_train("experiment=what28_reference")
    assert (what.data.noise, what.optimizer._target_, what.optimizer.lr) == (
        1.0,
        "torch.optim.Adam",
        0.005,
    )
    assert instantiate(what.curriculum).total_epochs == 80


@pytest.mark.parametrize(
    ("experiment", "lr", "step_size", "gamma"),
    [
        ("atn_reference", 0.01, 10, 0.5),
        ("polo_atn_reference", 0.005, 10, 0.5),
        ("stn128_reference", 0.01, 30, 0.1),
    ],
)
def test_128_reference_protocols_have_the_published_schedules(
    compose_train, experiment, lr, step_size, gamma
):
    cfg = compose_train(f"experiment={experiment}")
    assert (cfg.data.noise, cfg.data.eccentricity_max_px, cfg.data.batch_size) == (0.75, 40.0, 100)
    assert (cfg.optimizer.lr, cfg.optimizer.momentum) == (lr, 0.0)
    assert (cfg.scheduler.step_size, cfg.scheduler.gamma) == (step_size, gamma)
    curriculum = instantiate(cfg.curriculum)
    assert curriculum.total_epochs == 110 == run_info(cfg)["train_epochs"]  # what metrics.json records
    assert run_info(compose_train(f"experiment={experiment}", "trainer.max_epochs=3"))["train_epochs"] == 3
    stds = [stage["eccentricity_std_px"] for stage in curriculum.stages]
    assert stds == pytest.approx([40 * k / 9 for k in range(1, 10)] + [40.0, 40.0], abs=1e-4)
    contrasts = [stage["contrast"] for stage in curriculum.stages]
    assert contrasts == [0.7] * 9 + [[0.5, 0.7], [0.3, 0.7]]
    # one new optimiser at a tenth of the LR before the contrast stages (0.01 -> 0.001, 0.005 -> 0.0005)
    assert [stage.get("lr_restart") for stage in curriculum.stages] == [None] * 9 + [0.1, None]


@pytest.mark.parametrize(
    "group", ["data", "curriculum", "trainer", "logger", "callbacks", "paths", "evaluators", "task"]
)
def test_every_option_of_the_other_groups_composes(compose_train, group):
    for option in options(group):
        cfg = compose_train(f"{group}={option}")
        node = cfg[group]
        if group == "trainer":
            assert node._target_.endswith("Trainer")
        elif group in ("logger", "callbacks", "evaluators"):
            for child in (node or {}).values():
                instantiate(child)  # must not raise
        elif group in ("data", "curriculum", "task") and node.get("_target_"):
            instantiate(node)  # must not raise


@pytest.mark.parametrize("name", ["evaluate", "bench"])
def test_other_entry_point_configs_compose(compose_train, name):
    cfg = compose_train(config_name=name)
    assert cfg.paths.data_dir


def test_sweep_jobs_get_gpus_round_robin():
    from stn_fovea.resolvers import device_for_job

    assert [device_for_job(job, 4) for job in range(6)] == [0, 1, 2, 3, 0, 1]
    with pytest.raises(ValueError, match="no CUDA device"):
        device_for_job(0, 0)


def test_trainer_gpu_sweep_gives_each_job_of_a_sweep_its_own_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        devices = []
        for job in range(3):
            cfg = compose(
                "train", overrides=["trainer=gpu_sweep", f"hydra.job.num={job}"], return_hydra_config=True
            )
            HydraConfig.instance().set_config(cfg)
            devices.append(list(cfg.trainer.devices))
    GlobalHydra.instance().clear()
    assert devices == [[0], [1], [0]]
