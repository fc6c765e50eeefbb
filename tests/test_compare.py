import csv
import json

from stn_fovea.compare import main


def write_metrics(folder, model, central, general):
    folder.mkdir(parents=True)
    metrics = {
        "model": model,
        "noise": 0.75,
        "accuracy": {"central": central, "general": general},
        "shift_map": {"ring_means": {"0": central, "5": 0.5, "10": 0.3}},
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))


def test_compare_tabulates_every_run_found(tmp_path, capsys):
    write_metrics(tmp_path / "a" / "eval", "stn", 0.9, 0.45)
    write_metrics(tmp_path / "b" / "eval", "what", 0.8, 0.35)
    out = tmp_path / "table.csv"
    assert main([str(tmp_path), "--csv", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [(r["model"], float(r["central"]), float(r["general"])) for r in rows] == [
        ("stn", 0.9, 0.45),
        ("what", 0.8, 0.35),
    ]
    assert rows[0]["ring_5px"] == "0.5" and rows[0]["ring_20px"] == ""
    assert "stn_fovea runs" in capsys.readouterr().out


def test_compare_without_metrics_is_a_clear_error(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "no metrics.json" in capsys.readouterr().err
