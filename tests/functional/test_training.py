"""Training: the small session run beats the majority baseline; its outputs (feature stats,
metrics) are what publishing and the public metadata need, and name no path."""

from __future__ import annotations

import json
from pathlib import Path

from chalicelib.manifest import FeatureStats
from modelops.demo_data import generate, write_csv
from modelops.loan_schema import schema
from modelops.train import describe_data, train


def test_small_training_run_beats_the_baseline(model_dir: Path) -> None:
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["holdout_accuracy"] > metrics["baseline_accuracy"] + 0.15
    spec = json.loads((model_dir / "preprocessing.json").read_text())
    assert [f["name"] for f in spec["numeric"]] == [f["name"] for f in schema()["numeric"]]
    assert all(f["std"] > 0 for f in spec["numeric"])
    assert json.loads((model_dir / "labels.json").read_text()) == schema()["labels"]


def test_training_writes_encoded_feature_stats(model_dir: Path) -> None:
    stats = FeatureStats.from_json(json.loads((model_dir / "feature_stats.json").read_text()))
    width = len(schema()["encoded_features"])
    assert len(stats.mean) == len(stats.std) == width
    numeric = len(schema()["numeric"])
    # Standardised on the same training split: numeric columns have mean 0, std 1.
    assert max(abs(m) for m in stats.mean[:numeric]) < 1e-3
    assert max(abs(s - 1) for s in stats.std[:numeric]) < 1e-3
    assert all(0 <= m <= 1 for m in stats.mean[numeric:])  # one-hot shares


def test_metrics_describe_the_data_without_a_path(model_dir: Path) -> None:
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["data"] == "synthetic demo, 4,000 rows, seed 11"
    csv = Path("/some/internal/path/loans.csv")
    assert describe_data(csv, 12_345, 7) == "CSV, 12,345 rows"
    assert describe_data(Path("/srv/extract"), 10, 7) == "file, 10 rows"


def test_training_on_a_csv_records_no_path(tmp_path: Path) -> None:
    csv = tmp_path / "some" / "internal" / "path" / "loans.csv"
    csv.parent.mkdir(parents=True)
    write_csv(generate(600, 3), csv)
    result = train(tmp_path / "out", data=csv, epochs=1, verbose=0)
    written = (tmp_path / "out" / "metrics.json").read_text()
    assert result.metrics["data"] == "CSV, 600 rows"
    assert str(tmp_path) not in written and "loans" not in written and "/" not in written
