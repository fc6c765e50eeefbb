"""`python -m stn_fovea.compare DIR...`: one table of the metrics.json files found under run folders.

Prints model, noise, seed, schedule length, training time and the accuracy of every test protocol;
for 28x28 runs the shift-map ring means at a few radii and the reference's central/general numbers,
for 128x128 runs the grid means over eccentricities per contrast and the reference's means; ``--csv
FILE`` writes the rows too.

``--out DIR`` writes the study's tables instead (the per-run table above goes to runs.csv):
protocols.csv / .md (stn_fovea.evaluation.seed_table: every test protocol's accuracy and macro F1 over
seeds, with 95 % intervals, beside the published score), and for runs with an eccentricity grid
benchmark.csv (every grid cell over seeds with its interval, the reference beside it), benchmark.md
(the means over eccentricities, within 80 columns for plain model names) and benchmark.png (a panel
per noise and contrast). It prints the two markdown tables. With ``--curves``, each training run under the
folders whose model has a reference training curve (ATN, POLO-ATN, STN_128) also gets
training_curve_<run>.csv / .png there: its per-epoch validation curve beside the notebook's.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from rich.console import Console
from rich.table import Table

from stn_fovea.evaluation import benchmark, benchmark_figure, benchmark_tables, seed_table, training_curves

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
        "seed": metrics.get("seed"),
        "train_epochs": benchmark.train_epochs(metrics),
        "train_seconds": metrics.get("train_seconds"),  # absent from runs before it was recorded
        "weights": benchmark.scored_weights(metrics),
        **(metrics.get("accuracy") or {}),  # none when evaluated with evaluators.protocols=null
    }
    if "shift_map" in metrics:
        rings = metrics["shift_map"].get("ring_means", {})
        result.update({f"ring_{r}px": rings.get(str(r)) for r in RING_RADII})
    if "grid" in metrics:
        grid = metrics["grid"]
        if "saccades" in grid:  # a model that saccades: its 1-saccade grid (the paper's main figure)
            grid = grid["saccades"].get("1") or next(iter(grid["saccades"].values()))
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
    parser.add_argument(
        "--out",
        type=Path,
        help="write protocols.csv/.md, benchmark.csv/.md/.png (runs with a grid) and runs.csv here; "
        "prints the markdown tables",
    )
    parser.add_argument(
        "--curves", action="store_true", help="with --out: training runs' curves beside the reference's"
    )
    parser.add_argument(
        "--name", default="benchmark", help="file name of benchmark.csv/.md/.png under --out (benchmark)"
    )
    parser.add_argument(
        "--saccades", type=int, default=1, help="the curve of a model that saccades in benchmark.png (1)"
    )
    args = parser.parse_args(argv)
    if args.curves:  # training runs' curves, finished or not
        if not args.out:
            parser.error("--curves writes its files under --out DIR: give one")
        curves = write_curves(args.folders, args.out)
    paths = find_metrics(args.folders)
    if not paths and args.curves and curves:  # training runs not yet evaluated
        return 0
    if not paths:
        print(f"stn_fovea: error: no metrics.json under {[str(f) for f in args.folders]}", file=sys.stderr)
        return 2
    rows = [row(path) for path in paths]
    columns = list(dict.fromkeys(key for r in rows for key in r))
    if args.out:  # the 80-column markdown tables are printed; the wide per-run table goes to runs.csv
        args.out.mkdir(parents=True, exist_ok=True)
        for path in (args.out / "runs.csv", args.csv):
            if path:
                write_rows(rows, columns, path)
        return write_benchmark(paths, args.out, args.saccades, args.name)
    table = Table(title="stn_fovea runs")
    for column in columns:
        table.add_column(column)
    for r in rows:
        table.add_row(*[_cell(c, r.get(c)) for c in columns])
    Console(width=max(160, shutil.get_terminal_size().columns)).print(table)
    if args.csv:
        write_rows(rows, columns, args.csv)
    return 0


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.0f}" if column == "train_seconds" else f"{value:.4f}"
    return str(value)


def write_rows(rows: list[dict[str, Any]], columns: list[str], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def write_curves(folders: list[Path], out: Path) -> int:
    """Every training run's per-epoch curve beside its reference's (those on a reference schedule); how
    many."""
    runs = sorted({config.parent for folder in folders for config in folder.rglob("config_resolved.yaml")})
    count, labels = 0, Counter[str]()
    for run in runs:
        config = OmegaConf.load(run / "config_resolved.yaml")
        experiment = config.get("experiment_name")
        label = f"{experiment or config.model_name}_seed{config.seed}"
        if experiment and not f"{experiment}_".startswith(f"{config.model_name}_"):  # on another's schedule
            label = f"{config.model_name}_on_{label}"
        labels[label] += 1
        if labels[label] > 1:  # a copy of a run (a parked one beside its live folder): both kept
            label = f"{label}_{labels[label]}"
            print(f"stn_fovea: compare: {run} repeats an earlier run's curve name; written as {label}",
                  file=sys.stderr)  # fmt: skip
        if not (run / "tensorboard").is_dir():
            print(f"stn_fovea: compare: {run} has no tensorboard/ events: no curve", file=sys.stderr)
            continue
        found = training_curves.reference_curve(experiment)
        if found is None:  # not a reference schedule: nothing to set it beside
            continue
        if changed := training_curves.schedule_change(config, len(found[1])):
            print(f"stn_fovea: compare: {run} changed its reference schedule ({changed}): its epochs do not"
                  " line up with the reference's, no curve", file=sys.stderr)  # fmt: skip
            continue
        written = training_curves.write_comparison(run, found, out, label)
        if written is not None:
            print(f"{written.name}, .png: {out}")
            count += 1
    return count


def write_benchmark(paths: list[Path], out: Path, saccades: int, name: str = "benchmark") -> int:
    out.mkdir(parents=True, exist_ok=True)
    rows = seed_table.summarise(score for path in paths for score in seed_table.read_scores(path))
    seed_table.write_csv(rows, out / "protocols.csv")
    protocols = seed_table.markdown_table(rows)
    (out / "protocols.md").write_text(protocols)
    written = ["protocols.csv", "protocols.md"]
    points = benchmark.aggregate(cell for path in paths for cell in benchmark.read_cells(path))
    if points:  # runs with an eccentricity grid (128x128): the study's figure
        benchmark_tables.write_csv(points, out / f"{name}.csv")
        table = benchmark_tables.markdown_table(points)
        (out / f"{name}.md").write_text(table)
        benchmark_figure.plot_benchmark(points, out / f"{name}.png", saccades)
        written += [f"{name}.csv", f"{name}.md", f"{name}.png"]
        print(table)
    print(protocols)
    print(f"{', '.join(written)}: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
