"""Your custom Keras layers and objects: the one place publishing and the Keras engine
load them from.

A model with a custom layer loads only where the layer's class is known; otherwise
Keras fails with `Could not locate class ...`. Define (or import) custom classes here:

- decorate a class with `@keras.saving.register_keras_serializable(package="...")`:
  a model saved with it records `"<package>>ClassName"`, and loading finds it because
  this module was imported first; train with the class imported from here, so the
  saved name matches;
- or add an entry to `CUSTOM_OBJECTS` (name -> object) for objects saved without
  registration, e.g. a custom activation function saved by its name.

`modelops.publish` (loading and converting) and `chalicelib.engines.keras_engine`
import this module, and only inside functions: it imports Keras, which the lite
runtime flavor does not ship. A custom layer whose ops LiteRT has converts like any
other; one it cannot convert is published Keras-only (the tensorflow flavor serves it).
`ScaleShift` is an example, used by the tests; remove it or keep it, it costs nothing.
"""

from __future__ import annotations

from typing import Any

import keras


@keras.saving.register_keras_serializable(package="serving_examples")
class ScaleShift(keras.layers.Layer):
    """Example custom layer: a learned scale and shift per feature, `x * scale + shift`."""

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        width = (int(input_shape[-1]),)  # type: ignore[arg-type]
        self.scale = self.add_weight(shape=width, initializer="ones", name="scale")
        self.shift = self.add_weight(shape=width, initializer="zeros", name="shift")

    def call(self, inputs: Any) -> Any:
        return inputs * self.scale + self.shift


#: Extra objects by the name a saved model refers to them; passed to every load.
CUSTOM_OBJECTS: dict[str, Any] = {}
