"""A seeded STN trained on a few thousand noisy digits beats chance (10 %) by a wide margin."""

from conftest import TINY_RUN
from stn_fovea.train import train


def test_seeded_stn_learns_noisy_mnist(compose_train):
    cfg = compose_train(
        *TINY_RUN,
        "model=stn",
        "optimizer=adam",
        "optimizer.lr=1e-3",
        "curriculum=none",
        "data.train_size=4000",
        "data.test_size=1000",
        "data.shift_std_px=0",
        "data.val_shift_std_px=0",  # pick the best checkpoint on the trained condition
        "trainer.max_epochs=3",
        "evaluate=false",
        "seed=7",
    )
    metrics = train(cfg)
    assert metrics["test"]["test/central/acc"] > 0.45
