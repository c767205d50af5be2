"""Keras -> ONNX conversion for the ONNX Runtime engine (tf2onnx, as Keras' own export).

Two repairs make Keras' ONNX export servable by ONNX Runtime: tensors the traced call
captures (a `Normalization` layer's mean and variance) come out as graph inputs, and are
folded into constants; `Erfc` (GELU), which ONNX does not define, becomes `1 - Erf`.
Any other TensorFlow op tf2onnx leaves unconverted is named in the refusal.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np


class UnconvertibleOps(ValueError):
    """tf2onnx left TensorFlow ops ONNX does not define; `ops` names them."""

    def __init__(self, ops: list[str]) -> None:
        super().__init__(f"ops ONNX has no equivalent for: {', '.join(ops)}")
        self.ops = ops


def convert_to_onnx(keras_model_path: Path) -> bytes:
    """Convert a `.keras` or `.h5` model (custom objects registered) to ONNX bytes with a
    dynamic batch dimension; UnconvertibleOps names what blocked it."""
    from chalicelib.engines.keras_engine import load_keras_model

    return keras_to_onnx(load_keras_model(str(keras_model_path)))


def keras_to_onnx(model: Any) -> bytes:
    """ONNX bytes for a loaded Keras model (called once here: the export needs it)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with warnings.catch_warnings():  # tf2onnx 1.17 probes numpy 2 for removed names
        warnings.simplefilter("ignore", FutureWarning)
        import tf2onnx
        from keras.src.export.export_utils import get_input_signature, make_tf_tensor_spec
        from keras.src.export.onnx import get_concrete_fn
        from keras.src.export.tf2onnx_lib import patch_tf2onnx
        from keras.src.tree import map_structure

    from modelops.convert import converter_output_silenced

    model(_zeros_like_inputs(model), training=False)  # export refuses a never-called model
    signature = map_structure(make_tf_tensor_spec, get_input_signature(model))
    with converter_output_silenced():
        function = get_concrete_fn(model, signature)
        concrete = function.get_concrete_function(*signature)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            patch_tf2onnx()  # tf2onnx 1.17 and numpy 2 (what Keras' export does too)
            proto, _ = tf2onnx.convert.from_function(function, signature)
    captured = {
        placeholder.name: np.asarray(value.numpy())
        for placeholder, value in zip(
            concrete.graph.internal_captures, concrete.captured_inputs, strict=False
        )
        if value.dtype.name != "resource"
    }
    fold_captured_inputs(proto, captured)
    rewrite_erfc(proto)
    unconvertible = unknown_ops(proto)
    if unconvertible:
        raise UnconvertibleOps(unconvertible)
    return bytes(proto.SerializeToString())


def _zeros_like_inputs(model: Any) -> Any:
    arrays = [
        np.zeros([1, *(d or 1 for d in tensor.shape[1:])], dtype=tensor.dtype)
        for tensor in model.inputs
    ]
    return arrays[0] if len(arrays) == 1 else arrays


def fold_captured_inputs(proto: Any, captured: dict[str, np.ndarray]) -> None:
    """Graph inputs that are captured tensors become initializers (constants)."""
    from onnx import numpy_helper

    for graph_input in list(proto.graph.input):
        if graph_input.name in captured:
            proto.graph.initializer.append(
                numpy_helper.from_array(captured[graph_input.name], graph_input.name)
            )
            proto.graph.input.remove(graph_input)


def rewrite_erfc(proto: Any) -> None:
    """Each `Erfc(x)` node becomes `1 - Erf(x)` (same output name)."""
    from onnx import helper, numpy_helper

    nodes = list(proto.graph.node)
    if not any(node.op_type == "Erfc" for node in nodes):
        return
    del proto.graph.node[:]
    for node in nodes:
        if node.op_type != "Erfc":
            proto.graph.node.append(node)
            continue
        erf, one = f"{node.name}/erf", f"{node.name}/one"
        proto.graph.initializer.append(numpy_helper.from_array(np.array(1.0, np.float32), one))
        proto.graph.node.append(helper.make_node("Erf", [node.input[0]], [erf], f"{node.name}_erf"))
        proto.graph.node.append(helper.make_node("Sub", [one, erf], [node.output[0]], node.name))


def unknown_ops(proto: Any) -> list[str]:
    """Op types in the default domain that ONNX does not define (TensorFlow leftovers)."""
    from onnx import defs

    return sorted(
        {
            node.op_type
            for node in proto.graph.node
            if node.domain in ("", "ai.onnx") and not defs.has(node.op_type)
        }
    )
