"""`python -m stn_fovea.compare DIR...`: one table of the metrics.json files found under run folders.

Prints model, noise and the accuracy of every test protocol; for 28x28 runs the shift-map ring means
at a few radii and the reference's central/general numbers, for 128x128 runs the grid means over
eccentricities per contrast and the reference's means; ``--csv FILE`` writes the rows too.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

RING_RADII = (0, 5, 10, 15, 20)


def find_metrics(folders: list[Path]) -> list[Path]:
    """Every metrics.json under the given folders (or the files themselves), sorted."""
    found: set[Path] = set()
    for folder in folders:
        if folder.is_file() and folder.name == "metrics.json":
            found.add(folder)
        elif folder.is_dir():
            found.update(folder.rglob("metrics.json"))
    return sorted(found)


def row(path: Path) -> dict[str, Any]:
    metrics = json.loads(path.read_text())
    reference = metrics.get("reference", {})
    result: dict[str, Any] = {
        "run": str(path.parent),
        "model": metrics["model"],
        "noise": metrics["noise"],
        **metrics["accuracy"],
    }
    if "shift_map" in metrics:
        rings = metrics["shift_map"].get("ring_means", {})
        result.update({f"ring_{r}px": rings.get(str(r)) for r in RING_RADII})
    if "grid" in metrics:
        grid = metrics["grid"]
        result.update({f"grid_mean_c{c}": m for c, m in grid["mean_over_eccentricities"].items()})
        result["grid_digits_per_cell"] = grid["digits_per_cell"]
        if grid.get("reference_means"):
            result["reference"] = " / ".join(f"{m:.3f}" for m in grid["reference_means"].values())
    if reference:
        result["reference"] = (
            f"{reference['central']:.3f} / {reference['general']:.3f} (noise {reference['noise']})"
        )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stn_fovea.compare", description=__doc__)
    parser.add_argument("folders", nargs="+", type=Path, help="run folders (searched for metrics.json)")
    parser.add_argument("--csv", type=Path, help="also write the table to this CSV file")
    args = parser.parse_args(argv)
    paths = find_metrics(args.folders)
    if not paths:
        print(f"stn_fovea: error: no metrics.json under {[str(f) for f in args.folders]}", file=sys.stderr)
        return 2
    rows = [row(path) for path in paths]
    columns = list(dict.fromkeys(key for r in rows for key in r))
    table = Table(title="stn_fovea runs")
    for column in columns:
        table.add_column(column)
    for r in rows:
        table.add_row(*[f"{r[c]:.4f}" if isinstance(r.get(c), float) else str(r.get(c, "")) for c in columns])
    Console(width=max(160, shutil.get_terminal_size().columns)).print(table)
    if args.csv:
        with args.csv.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
