"""Tiny Keras models of each kind, built (not trained) in seconds for publish tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

WIDTH = 4
FEATURES = [f"x{i}" for i in range(WIDTH)]


def tiny_model(kind: str, path: Path, seed: int = 3) -> Path:
    """Save a random-weight model to `path`: `binary` (one sigmoid), `multilabel` (three
    sigmoids), `regression` (two linear outputs scaled to thousands) or `logits` (three
    linear outputs, i.e. a classifier without its softmax)."""
    import keras

    keras.utils.set_random_seed(seed)
    head = {
        "binary": [keras.layers.Dense(1, activation="sigmoid")],
        "multilabel": [keras.layers.Dense(3, activation="sigmoid")],
        "regression": [keras.layers.Dense(2), keras.layers.Rescaling(1000.0)],
        "logits": [keras.layers.Dense(3)],
    }[kind]
    # A fixed input name: two versions built in one process keep one request contract
    # (Keras would name the second one's input `input_layer_1`).
    model = keras.Sequential(
        [keras.Input((WIDTH,), name="features"), keras.layers.Dense(8, activation="relu"), *head]
    )
    model.save(path)
    return path


def sample_rows(count: int, seed: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((count, WIDTH)).astype(np.float32)


def as_records(rows: np.ndarray) -> list[dict[str, float]]:
    return [dict(zip(FEATURES, row, strict=True)) for row in rows.tolist()]


def keras_outputs(path: Path, rows: np.ndarray) -> Any:
    import keras

    model = keras.saving.load_model(path, compile=False)
    return np.asarray(model(rows, training=False), dtype=np.float32)
