"""What a saved Keras model's output is, read from its config without TensorFlow
(milliseconds), so `make serve` can ask for LABELS before any server starts."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


@dataclass(frozen=True)
class Output:
    """The final layer's activation and width."""

    activation: str | None
    units: int

    @property
    def classes(self) -> int | None:
        """How many labels the model's probabilities are over, or None (not a classifier)."""
        if self.activation == "softmax" and self.units >= 2:
            return self.units
        if self.activation == "sigmoid":
            return 2 if self.units == 1 else self.units
        return None


def model_output(path: Path) -> Output | None:
    """The output of the model saved at `path` (a Keras zip or HDF5), or None when its config
    does not say plainly (the publisher then decides, loading it)."""
    try:
        config = _config(path)
        return _output(config) if config is not None else None
    except (OSError, ValueError, KeyError, TypeError, IndexError, zipfile.BadZipFile):
        return None


def _config(path: Path) -> dict[str, Any] | None:
    """The model's config: config.json in a Keras 3 zip, or an HDF5 file's model_config."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            config: dict[str, Any] = json.loads(archive.read("config.json"))
            return config
    with path.open("rb") as handle:
        if handle.read(8) != HDF5_SIGNATURE:
            return None
    import h5py

    with h5py.File(path, "r") as file:
        raw = file.attrs.get("model_config")
    if raw is None:
        return None
    loaded: dict[str, Any] = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    return loaded


def _output(config: dict[str, Any]) -> Output | None:
    body = config["config"]
    layers = body["layers"]
    outputs = body.get("output_layers")
    if outputs:
        if isinstance(outputs[0], str):  # one output: ["name", 0, 0]
            outputs = [outputs]
        if len(outputs) != 1:
            return None
        by_name = {layer.get("name", layer["config"]["name"]): layer for layer in layers}
        layer = by_name[outputs[0][0]]
    else:
        layer = layers[-1]
    return _layer_output(layer, layers)


def _layer_output(layer: dict[str, Any], layers: list[dict[str, Any]]) -> Output | None:
    settings = layer["config"]
    if layer["class_name"] == "Softmax":
        before = _previous(layer, layers)
        return Output("softmax", before.units) if before else None
    activation = settings.get("activation")
    units = settings.get("units")
    if not isinstance(units, int) or not (activation is None or isinstance(activation, str)):
        return None
    return Output(activation, units)


def _previous(layer: dict[str, Any], layers: list[dict[str, Any]]) -> Output | None:
    """The output of the layer feeding a Softmax layer (Sequential: the one before it)."""
    index = layers.index(layer)
    if index == 0:
        return None
    return _layer_output(layers[index - 1], layers)
