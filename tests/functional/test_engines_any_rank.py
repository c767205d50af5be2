"""The engines take inputs of any rank (rows first): a sequence [rows, steps, features] and
an image [rows, h, w, c] convert for LiteRT and ONNX Runtime and run like Keras, whatever
the batch size, ahead of the publisher accepting such inputs (issue 18, item 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chalicelib.engines.keras_engine import KerasEngine
from chalicelib.engines.registry import ENGINES
from modelops.convert import load_artifact


def sequence_model() -> Any:
    import keras

    keras.utils.set_random_seed(21)
    inputs = keras.Input((12, 2), name="seq")
    conv = keras.layers.Conv1D(4, 3, activation="relu")(inputs)
    hidden = keras.layers.GlobalAveragePooling1D()(conv)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))


def image_model() -> Any:
    import keras

    keras.utils.set_random_seed(22)
    inputs = keras.Input((6, 6, 1), name="image")
    conv = keras.layers.BatchNormalization()(keras.layers.Conv2D(4, 3)(inputs))
    hidden = keras.layers.Flatten()(conv)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(hidden))


def gru_model() -> Any:
    import keras

    keras.utils.set_random_seed(23)
    inputs = keras.Input((5, 3), name="steps")
    return keras.Model(inputs, keras.layers.Dense(2, "softmax")(keras.layers.GRU(4)(inputs)))


CASES = [("sequence", sequence_model, "litert"), ("sequence", sequence_model, "onnx"),
         ("image", image_model, "litert"), ("image", image_model, "onnx"),
         ("gru", gru_model, "onnx")]  # fmt: skip


@pytest.mark.parametrize(("kind", "build", "engine"), CASES)
def test_an_engine_runs_a_higher_rank_input_like_keras(
    kind: str, build: Any, engine: str, tmp_path: Path
) -> None:
    model = build()
    path = tmp_path / f"{kind}.keras"
    model.save(path)
    served = load_artifact(engine, ENGINES[engine].convert(path))
    rng = np.random.default_rng(3)
    for rows in (1, 7, 2):  # a batch size change resizes LiteRT's input tensors
        batch = rng.standard_normal((rows, *model.inputs[0].shape[1:])).astype(np.float32)
        inputs = {model.inputs[0].name: batch}
        expected = KerasEngine(model).predict(inputs)
        assert served.predict(inputs).shape == expected.shape
        assert np.abs(served.predict(inputs) - expected).max() <= 1e-5
