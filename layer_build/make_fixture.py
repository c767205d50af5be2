"""Regenerate the tiny fixture model the runtime proofs predict with.

    .venv/bin/python -m layer_build.make_fixture

Writes fixtures/tiny.keras, its conversion for each engine with a converter in the
registry (tiny.tflite, tiny.onnx) and tiny_expected.json (inputs and Keras's
probabilities): a few KB, committed, so a build needs no training.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parent / "fixtures"
WIDTH, CLASSES, ROWS = 113, 7, 16


def main() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from chalicelib.engines.registry import ENGINES

    keras.utils.set_random_seed(3)
    model = keras.Sequential([
        keras.Input((WIDTH,)),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(CLASSES, activation="softmax"),
    ])  # fmt: skip
    inputs = np.random.default_rng(3).standard_normal((ROWS, WIDTH)).astype(np.float32)
    FIXTURES.mkdir(exist_ok=True)
    model.save(FIXTURES / "tiny.keras")
    for spec in ENGINES.values():
        if spec.converter is not None:
            artifact = spec.convert(FIXTURES / "tiny.keras")
            (FIXTURES / f"tiny{spec.suffixes[0]}").write_bytes(artifact)
    expected = np.asarray(model(inputs, training=False)).tolist()
    (FIXTURES / "tiny_expected.json").write_text(
        json.dumps({"inputs": inputs.tolist(), "probabilities": expected})
    )


if __name__ == "__main__":
    main()
