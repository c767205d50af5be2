"""Train the loan-grade classifier (the original architecture) with Keras 3 on TensorFlow.

    python -m modelops.train --out artifacts/demo                 # synthetic demo data
    python -m modelops.train --data loans.csv --out artifacts/lc  # a real cleaned extract

Writes model.keras, preprocessing.json, labels.json, metrics.json, feature_stats.json
(mean/std of every encoded feature, for the service's range rule) and holdout.csv
(the held-out raw records) to --out. Means/stds come from the training split.
Metrics describe the data ("CSV, 12,345 rows"), never its path: they are public.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chalicelib.encoding import FeatureEncoder, fit_numeric_stats
from chalicelib.manifest import (
    CategoricalFeature,
    FeatureStats,
    NumericFeature,
    PreprocessingSpec,
)
from modelops.cli_errors import OneLineParser, fail
from modelops.dataset import DatasetError, read_loans
from modelops.demo_data import generate, write_csv
from modelops.loan_schema import GRADE_COLUMN, categorical_fields, labels, numeric_fields, schema

TEST_SHARE = 0.2


@dataclass(frozen=True)
class TrainingResult:
    out_dir: Path
    metrics: dict[str, Any]


def build_model(width: int, classes: int) -> Any:
    """Dense(100, relu, MaxNorm 3) -> Dropout .2 -> Dense(60, relu, MaxNorm 3) -> Dropout .2
    -> Dense(classes, softmax); categorical cross-entropy, Adam (the original model)."""
    import keras

    norm = keras.constraints.MaxNorm(3)
    model = keras.Sequential([
        keras.Input((width,), name="features"),
        keras.layers.Dense(100, activation="relu", kernel_constraint=norm),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(60, activation="relu", kernel_constraint=norm),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(classes, activation="softmax"),
    ])  # fmt: skip
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def fit_preprocessing(columns: dict[str, np.ndarray], rows: np.ndarray) -> PreprocessingSpec:
    """Means/stds of the numeric fields over `rows`; categories from the schema."""
    names = numeric_fields()
    mean, std = fit_numeric_stats(np.column_stack([columns[n][rows] for n in names]))
    spec = PreprocessingSpec(
        tuple(
            NumericFeature(n, float(m), float(s)) for n, m, s in zip(names, mean, std, strict=True)
        ),
        tuple(CategoricalFeature(n, tuple(c)) for n, c in categorical_fields().items()),
    )
    if spec.encoded_features() != schema()["encoded_features"]:
        raise AssertionError("preprocessing order differs from the schema's encoded_features")
    return spec


def fit_feature_stats(inputs: np.ndarray) -> FeatureStats:
    """Mean and std of each encoded column of the training inputs (std 0 becomes 1)."""
    mean, std = fit_numeric_stats(inputs)
    return FeatureStats(tuple(map(float, mean)), tuple(map(float, std)))


def describe_data(data: Path | None, count: int, seed: int) -> str:
    """What the model was trained on, fit for public metadata: no path, no file name."""
    if data is None:
        return f"synthetic demo, {count:,} rows, seed {seed}"
    return f"{data.suffix.lstrip('.').upper() or 'file'}, {count:,} rows"


def train(
    out_dir: Path,
    data: Path | None = None,
    rows: int = 50_000,
    epochs: int = 15,
    seed: int = 7,
    verbose: int = 2,
) -> TrainingResult:
    """Train on `data` (or `rows` synthetic applications) and write the model files."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    started = time.perf_counter()
    columns: dict[str, Any] = read_loans(data) if data else generate(rows, seed)
    import keras

    keras.utils.set_random_seed(seed)
    count = len(columns[GRADE_COLUMN])
    order = np.random.default_rng(seed).permutation(count)
    test_rows, train_rows = order[: int(count * TEST_SHARE)], order[int(count * TEST_SHARE) :]
    spec = fit_preprocessing(columns, train_rows)
    encoder = FeatureEncoder(spec)
    inputs = encoder.encode_columns({n: columns[n] for n in spec.raw_fields()})
    label_names = labels()
    targets = np.searchsorted(np.array(label_names), columns[GRADE_COLUMN])
    one_hot = np.eye(len(label_names), dtype=np.float32)[targets]

    model = build_model(inputs.shape[1], len(label_names))
    fit_started = time.perf_counter()
    model.fit(inputs[train_rows], one_hot[train_rows], epochs=epochs, batch_size=256,
              validation_split=0.1, verbose=verbose)  # fmt: skip
    fit_seconds = time.perf_counter() - fit_started
    predicted = np.asarray(model(inputs[test_rows], training=False)).argmax(axis=1)
    accuracy = float((predicted == targets[test_rows]).mean())
    majority = np.bincount(targets[train_rows], minlength=len(label_names)).argmax()
    baseline = float((targets[test_rows] == majority).mean())

    out_dir.mkdir(parents=True, exist_ok=True)
    model.save(out_dir / "model.keras")
    (out_dir / "preprocessing.json").write_text(json.dumps(spec.to_json(), indent=2))
    feature_stats = fit_feature_stats(inputs[train_rows])
    (out_dir / "feature_stats.json").write_text(json.dumps(feature_stats.to_json(), indent=2))
    (out_dir / "labels.json").write_text(json.dumps(label_names))
    write_csv({name: values[np.sort(test_rows)] for name, values in columns.items()},
              out_dir / "holdout.csv")  # fmt: skip
    metrics = {
        "holdout_accuracy": round(accuracy, 4),
        "baseline_accuracy": round(baseline, 4),
        "baseline": f"always {label_names[majority]} (majority class)",
        "holdout_rows": len(test_rows),
        "train_rows": len(train_rows),
        "epochs": epochs,
        "train_seconds": round(fit_seconds, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        "data": describe_data(data, count, seed),
    }
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return TrainingResult(out_dir, metrics)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m modelops.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="CSV in the cleaned layout (default: demo)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=50_000, help="demo rows")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.data and not args.data.is_file():
        return fail(f"--data={args.data}: no such file; give a CSV in the cleaned layout")
    print(f"==> {'reading ' + str(args.data) if args.data else 'generating demo data'}",
          flush=True)  # fmt: skip
    try:
        result = train(args.out, args.data, args.rows, args.epochs, args.seed)
    except (OSError, UnicodeDecodeError, DatasetError) as exc:  # unreadable or malformed files
        return fail(f"{exc}; check --data {args.data} and --out {args.out}")
    m = result.metrics
    print(f"""
held-out accuracy   {m["holdout_accuracy"]:.3f}   ({m["holdout_rows"]} rows)
majority baseline   {m["baseline_accuracy"]:.3f}   ({m["baseline"]})
training            {m["train_seconds"]:.1f} s fit, {m["total_seconds"]:.1f} s total
wrote {args.out}/model.keras, preprocessing.json, labels.json, metrics.json,
      feature_stats.json, holdout.csv""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
