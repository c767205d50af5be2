"""Small Keras models built in the test process, beyond the demo's shape: two inputs
(float + integer embedding indexes), an LSTM LiteRT cannot convert, a custom layer."""

from __future__ import annotations

from typing import Any

import numpy as np


def two_input_model() -> Any:
    """A float input and an int32 input of indexes into an Embedding(10, 4)."""
    import keras

    keras.utils.set_random_seed(3)
    numbers = keras.Input((3,), name="numbers")
    codes = keras.Input((2,), name="codes", dtype="int32")
    embedded = keras.layers.Flatten()(keras.layers.Embedding(10, 4)(codes))
    hidden = keras.layers.Dense(8, activation="relu")(
        keras.layers.Concatenate()([numbers, embedded])
    )
    return keras.Model([numbers, codes], keras.layers.Dense(3, activation="softmax")(hidden))


def lstm_model() -> Any:
    """An LSTM without unroll=True: LiteRT's builtins cannot convert it (flex ops)."""
    import keras

    keras.utils.set_random_seed(4)
    inputs = keras.Input((6,), name="series")
    steps = keras.layers.Reshape((3, 2))(inputs)
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.LSTM(4)(steps))
    return keras.Model(inputs, outputs)


def custom_layer_model() -> Any:
    import keras

    from chalicelib.custom_objects import ScaleShift

    keras.utils.set_random_seed(5)
    inputs = keras.Input((4,))
    scaled = ScaleShift()
    outputs = keras.layers.Dense(3, activation="softmax")(scaled(inputs))
    scaled.set_weights([np.array([2.0, -1.0, 0.5, 3.0]), np.array([0.1, 0.2, -0.3, 0.0])])
    return keras.Model(inputs, outputs)


def _erfinv_layer() -> Any:
    """A registered custom layer computing erfinv: neither LiteRT's builtins nor ONNX
    have that op, so a model using it converts nowhere (a Keras-only bundle)."""
    import keras

    @keras.saving.register_keras_serializable(package="serving_tests")
    class ErfInv(keras.layers.Layer):
        def call(self, inputs: Any) -> Any:
            return keras.ops.erfinv(keras.ops.tanh(inputs) * 0.5)

    return ErfInv


def erfinv_model() -> Any:
    """A model whose only conversion is Keras itself (see _erfinv_layer)."""
    import keras

    keras.utils.set_random_seed(6)
    inputs = keras.Input((6,), name="series")
    hidden = _erfinv_layer()()(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(hidden))
