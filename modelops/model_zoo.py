"""Model kinds beyond dense layers, built with random weights in seconds: what the lite
runtime's engines must serve like Keras (tests/lambda_like, benchmarks.engines). Most take
2-D inputs (sequences and images made inside the model by a Reshape); `sequence-input`
takes a real [rows, steps, features] input, one nested-list field per record."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ZooModel:
    name: str
    build: Callable[[], Any]
    width: int
    #: Exclusive bound of the integer input's values; None: a float input.
    vocabulary: int | None = None
    #: One record's shape of a rank-3+ input named `seq` (its one field); None: flat.
    shape: tuple[int, ...] | None = None

    @property
    def features(self) -> list[str]:
        """The record's fields: x0, x1, ... or the nested input's name."""
        return ["seq"] if self.shape else [f"x{i}" for i in range(self.width)]

    def rows(self, count: int, seed: int = 7) -> np.ndarray:
        rng = np.random.default_rng(seed)
        if self.vocabulary is not None:
            return rng.integers(0, self.vocabulary, (count, self.width)).astype(np.int32)
        return rng.standard_normal((count, *(self.shape or (self.width,)))).astype(np.float32)

    def records(self, rows: np.ndarray) -> list[dict[str, Any]]:
        if self.shape:
            return [{"seq": row} for row in rows.tolist()]
        return [dict(zip(self.features, row, strict=True)) for row in rows.tolist()]


def _head(keras: Any, inputs: Any, hidden: Any) -> Any:
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))


def lstm() -> Any:
    import keras

    keras.utils.set_random_seed(11)
    inputs = keras.Input((12,))
    return _head(keras, inputs, keras.layers.LSTM(8)(keras.layers.Reshape((4, 3))(inputs)))


def bilstm() -> Any:
    """A bidirectional LSTM with Dropout (inactive when serving)."""
    import keras

    keras.utils.set_random_seed(19)
    inputs = keras.Input((12,))
    steps = keras.layers.Reshape((4, 3))(inputs)
    hidden = keras.layers.Dropout(0.3)(keras.layers.Bidirectional(keras.layers.LSTM(5))(steps))
    return _head(keras, inputs, hidden)


def masked_gru() -> Any:
    """Index 0 is padding: Embedding(mask_zero=True) masks it through the GRU."""
    import keras

    keras.utils.set_random_seed(12)
    inputs = keras.Input((8,), dtype="int32")
    embedded = keras.layers.Embedding(20, 4, mask_zero=True)(inputs)
    return _head(keras, inputs, keras.layers.GRU(6)(embedded))


def attention() -> Any:
    import keras

    keras.utils.set_random_seed(13)
    inputs = keras.Input((24,))
    steps = keras.layers.Reshape((6, 4))(inputs)
    attended = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)(steps, steps)
    block = keras.layers.LayerNormalization()(keras.layers.Add()([steps, attended]))
    return _head(keras, inputs, keras.layers.GlobalAveragePooling1D()(block))


def conv1d() -> Any:
    import keras

    keras.utils.set_random_seed(14)
    inputs = keras.Input((24,))
    conv = keras.layers.Conv1D(6, 3, activation="relu")(keras.layers.Reshape((12, 2))(inputs))
    return _head(keras, inputs, keras.layers.GlobalMaxPooling1D()(conv))


def sequence_input() -> Any:
    """A real [rows, 10, 4] input (no Reshape): Conv1D then pooling."""
    import keras

    keras.utils.set_random_seed(18)
    inputs = keras.Input((10, 4), name="seq")
    conv = keras.layers.Conv1D(6, 3, activation="relu")(inputs)
    return _head(keras, inputs, keras.layers.GlobalAveragePooling1D()(conv))


def two_heads() -> Any:
    """Two named outputs over a [rows, 10, 4] input: `grade`, a softmax over 3 classes,
    and `default`, a sigmoid (binary)."""
    import keras

    keras.utils.set_random_seed(33)
    given = keras.Input((10, 4), name="seq")
    hidden = keras.layers.Flatten()(given)
    grade = keras.layers.Dense(3, activation="softmax", name="grade")(hidden)
    default = keras.layers.Dense(1, activation="sigmoid", name="default")(hidden)
    return keras.Model(given, [grade, default])


def conv2d_batchnorm() -> Any:
    import keras

    keras.utils.set_random_seed(15)
    inputs = keras.Input((36,))
    conv = keras.layers.Conv2D(4, 3)(keras.layers.Reshape((6, 6, 1))(inputs))
    norm = keras.layers.BatchNormalization()
    hidden = keras.layers.Flatten()(keras.layers.ReLU()(norm(conv)))
    model = _head(keras, inputs, hidden)
    rng = np.random.default_rng(15)  # moving statistics other than 0 and 1
    gamma, beta = rng.uniform(0.5, 2, 4), rng.normal(size=4)
    norm.set_weights([gamma, beta, rng.normal(size=4), rng.uniform(0.5, 3, 4)])
    return model


def normalization() -> Any:
    import keras

    keras.utils.set_random_seed(16)
    inputs = keras.Input((5,))
    layer = keras.layers.Normalization()
    layer.adapt(np.random.default_rng(16).normal(3.0, 2.0, (200, 5)).astype(np.float32))
    return _head(keras, inputs, keras.layers.Dense(8, activation="relu")(layer(inputs)))


def custom_layer() -> Any:
    """chalicelib.custom_objects' example layer, registered, with non-trivial weights."""
    import keras

    from chalicelib.custom_objects import ScaleShift

    keras.utils.set_random_seed(5)
    inputs = keras.Input((4,))
    scaled = ScaleShift()
    model = _head(keras, inputs, scaled(inputs))
    scaled.set_weights([np.array([2.0, -1.0, 0.5, 3.0]), np.array([0.1, 0.2, -0.3, 0.0])])
    return model


def gelu() -> Any:
    import keras

    keras.utils.set_random_seed(17)
    inputs = keras.Input((6,))
    return _head(keras, inputs, keras.layers.Dense(8, activation="gelu")(inputs))


ZOO = {
    model.name: model
    for model in (
        ZooModel("lstm", lstm, 12),
        ZooModel("bilstm", bilstm, 12),
        ZooModel("masked-gru", masked_gru, 8, vocabulary=20),
        ZooModel("attention", attention, 24),
        ZooModel("conv1d", conv1d, 24),
        ZooModel("sequence-input", sequence_input, 40, shape=(10, 4)),
        ZooModel("two-heads", two_heads, 40, shape=(10, 4)),
        ZooModel("conv2d-batchnorm", conv2d_batchnorm, 36),
        ZooModel("normalization", normalization, 5),
        ZooModel("custom-layer", custom_layer, 4),
        ZooModel("gelu", gelu, 6),
    )
}


def keras_outputs(model: Any, rows: np.ndarray) -> np.ndarray:
    """The model's outputs for `rows` as one (rows, columns) matrix, heads side by side."""
    outputs = model(rows, training=False)
    arrays = outputs if isinstance(outputs, list | tuple) else [outputs]
    return np.concatenate([np.asarray(a).reshape(len(rows), -1) for a in arrays], axis=1)


def served_outputs(model: Any, predictions: list[dict[str, Any]]) -> np.ndarray:
    """/predict's `predictions` as `keras_outputs` lays them out: each head's probabilities
    in the model's output order, a one-unit (binary) head's as its positive class's."""
    if len(model.outputs) == 1:
        return np.array([list(p["probabilities"].values()) for p in predictions])
    widths = [int(output.shape[-1]) for output in model.outputs]
    rows = []
    for prediction in predictions:
        row: list[float] = []
        for name, width in zip(model.output_names, widths, strict=True):
            values = list(prediction[name]["probabilities"].values())
            row += values[-1:] if width == 1 else values
        rows.append(row)
    return np.array(rows)


def lookup_model() -> Any:
    """Built-in layers no lite engine converts (IntegerLookup's hash table): Keras only."""
    import keras

    keras.utils.set_random_seed(18)
    inputs = keras.Input((3,), dtype="int64")
    lookup = keras.layers.IntegerLookup(vocabulary=[3, 5, 7, 11], output_mode="one_hot")
    return _head(keras, inputs, keras.layers.Flatten()(lookup(inputs)))
