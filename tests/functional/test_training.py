"""The trained model (small session run) clearly beats the majority-class baseline."""

from __future__ import annotations

import json
from pathlib import Path

from modelops.loan_schema import schema


def test_small_training_run_beats_the_baseline(model_dir: Path) -> None:
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["holdout_accuracy"] > metrics["baseline_accuracy"] + 0.15
    spec = json.loads((model_dir / "preprocessing.json").read_text())
    assert [f["name"] for f in spec["numeric"]] == [f["name"] for f in schema()["numeric"]]
    assert all(f["std"] > 0 for f in spec["numeric"])
    assert json.loads((model_dir / "labels.json").read_text()) == schema()["labels"]
