"""How many of the Where net's first-layer units are dead: zero (after their ReLU) for every input of a
validation set, with each retina bank (whatwhere.md 9.7), at initialisation and, given checkpoints, in
trained What/Where nets.

    .venv/bin/python scripts/where_dead_units.py                       # at initialisation, both banks
    .venv/bin/python scripts/where_dead_units.py --samples 500 --init-seeds 1 2 3 \\
        --checkpoint <What/Where run>/checkpoints/last.ckpt

The inputs are the Where net's own: model=what_where's validation draws (noise 1.0, radius |N(0, 30)| px
clipped at 40, contrast 0.7 unless --contrast), whitened with the +0.5 and clip of training and encoded
by the bank. A fresh net is PyTorch's default initialisation, seeded.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch import Tensor

from stn_fovea.checkpoint import read_checkpoint
from stn_fovea.models.where_net import WhereNet
from stn_fovea.models.where_retina import RetinaBankSpec, WhereRetina
from stn_fovea.models.whitening import Whitening

ROOT = Path(__file__).resolve().parents[1]
BANKS = ("slip_20171205", "slip_20191113")


def validation_images(samples: int, contrast: float, data_dir: str) -> Tensor:
    """The first ``samples`` digits of model=what_where's validation set (a seeded draw of MNIST train)."""
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["model=what_where", f"data.contrast={contrast}"])
    datamodule = instantiate(cfg.data, data_dir=data_dir, val_size=samples, eval_batch_size=samples)
    datamodule.setup("fit")
    return datamodule.render(next(iter(datamodule.val_dataloader()[0])))["image"]


def dead_share(first_layer: torch.nn.Linear, features: Tensor) -> float:
    """The share of the layer's units whose ReLU output is 0 for every row of ``features``."""
    with torch.no_grad():
        active = torch.relu(first_layer(features)) > 0
    return float((~active.any(dim=0)).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--contrast", type=float, default=0.7)
    parser.add_argument("--init-seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--checkpoint", nargs="*", default=[], help="What/Where checkpoints to measure")
    parser.add_argument("--cache-dir", default=str(ROOT / ".cache"))
    parser.add_argument("--data-dir", default=os.environ.get("STN_FOVEA_DATA", str(ROOT / "data")))
    args = parser.parse_args()
    torch.set_num_threads(1)
    images = validation_images(args.samples, args.contrast, args.data_dir)
    whitened = Whitening(128)(images.double()).float()
    print(f"{args.samples} validation images of model=what_where, contrast {args.contrast}, noise 1.0")
    features = {}
    for bank in BANKS:
        features[bank] = WhereRetina(RetinaBankSpec(normalization=bank), args.cache_dir)(whitened)
        shares = []
        for seed in args.init_seeds:
            torch.manual_seed(seed)
            shares.append(dead_share(WhereNet().hidden[0], features[bank]))
        spread = features[bank].std(dim=0)
        print(
            f"{bank}: dead first-layer units at initialisation (seeds {args.init_seeds}): "
            + ", ".join(f"{share:.1%}" for share in shares)
            + f"; feature std across samples: median {spread.median():.3f}, max {spread.max():.3f}; "
            f"|mean feature|: max {features[bank].mean(dim=0).abs().max():.2f}"
        )
    for path in args.checkpoint:
        checkpoint = read_checkpoint(path)
        spec_node = checkpoint["stn_fovea"]["config"]["model"]["net"]["retina"]["spec"]
        bank = spec_node.get("normalization", "slip_20191113")
        state = checkpoint["state_dict"]
        layer = torch.nn.Linear(*reversed(state["net.where_net.hidden.0.weight"].shape))
        layer.load_state_dict(
            {"weight": state["net.where_net.hidden.0.weight"], "bias": state["net.where_net.hidden.0.bias"]}
        )
        print(f"{path} ({bank}): dead first-layer units {dead_share(layer, features[bank]):.1%}")


if __name__ == "__main__":
    main()
