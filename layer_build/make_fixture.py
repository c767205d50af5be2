"""Regenerate the tiny fixture model the runtime proofs predict with.

    .venv/bin/python -m layer_build.make_fixture

Writes fixtures/tiny.keras, tiny_expected.json (inputs and Keras's probabilities) and the
committed conversions (tiny.tflite): a few KB, committed, so a build needs no training. An
engine without a committed fixture gets one from its registry converter when the layer
proof first needs it (layer_build.proof.fixtures_for), so adding an engine commits none.
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
    for spec in ENGINES.values():  # the committed conversions (tests/fakes.py uses LiteRT's)
        committed = FIXTURES / f"tiny{spec.suffixes[0]}"
        if spec.converter is not None and committed.exists():
            committed.write_bytes(spec.convert(FIXTURES / "tiny.keras"))
    expected = np.asarray(model(inputs, training=False)).tolist()
    (FIXTURES / "tiny_expected.json").write_text(
        json.dumps({"inputs": inputs.tolist(), "probabilities": expected})
    )


if __name__ == "__main__":
    main()
