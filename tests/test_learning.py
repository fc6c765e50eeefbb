"""A seeded STN trained on a few thousand noisy digits beats chance (10 %) by a wide margin."""

from conftest import TINY_RUN, TINY_RUN_128
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
        "data.val_protocol.shift_std_px=0",  # pick the best checkpoint on the trained condition
        "trainer.max_epochs=3",
        "evaluate=false",
        "seed=7",
    )
    metrics = train(cfg)
    assert metrics["test"]["test/central/acc"] > 0.45


def test_seeded_peripheral_atn_learns_an_easy_retina_setting(compose_train):
    # Digits near the centre (radius std 4.4 px) at contrast 0.7: the first, centred glimpse already
    # holds most of the digit, so a few epochs must take the classifier far above chance.
    easy = "{eccentricity_std_px:4.444,contrast:0.7}"
    cfg = compose_train(
        *TINY_RUN_128,
        "model=peripheral_atn",
        "optimizer=adam",
        "optimizer.lr=1e-3",
        "curriculum=none",
        "data.train_size=3000",
        "data.test_size=500",
        "data.eccentricity_std_px=4.444",
        "data.contrast=0.7",
        f"data.val_protocol={easy}",
        "~data.test_protocols",
        f"+data.test_protocols={{easy:{easy}}}",
        "data.headline_protocol=easy",
        "trainer.max_epochs=3",
        "evaluate=false",
        "seed=7",
    )
    metrics = train(cfg)
    assert metrics["test"]["test/easy/acc"] > 0.3  # chance is 0.1; measured 0.43
