"""The engine registry is the whole story of an engine: which bundle artifact a runtime
serves, what the lite flavor installs and prunes, the environment set before import,
and how a conversion failure is named in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chalicelib.engines.registry import (
    ENGINES,
    engine_environment,
    flavor_engines,
    serving_engine,
)
from layer_build.flavors import FLAVORS
from layer_build.prune_rules import rules_for
from modelops.convert import conversion_problem
from modelops.onnx_convert import UnconvertibleOps, fold_captured_inputs, rewrite_erfc, unknown_ops
from project_paths import PROJECT_DIR


def test_the_lite_flavor_carries_litert_then_onnx_runtime_and_installs_its_wheel() -> None:
    assert flavor_engines("lite") == ["litert", "onnx"]
    assert FLAVORS["lite"].engines == ("litert", "onnx")
    assert FLAVORS["lite"].engine_wheels == ("onnxruntime==1.32.0",)
    assert FLAVORS["tensorflow"].engines == ("litert", "keras")
    assert FLAVORS["tensorflow"].engine_wheels == ()


def test_onnx_runtime_pruning_applies_to_the_lite_flavor_only() -> None:
    assert "ONNX Runtime tooling" in [rule.name for rule in rules_for("lite")]
    assert "ONNX Runtime tooling" not in [rule.name for rule in rules_for("tensorflow")]


@pytest.mark.parametrize(
    ("configured", "artifacts", "served"),
    [
        ("litert", {"tflite", "keras"}, "litert"),
        ("litert", {"onnx", "keras"}, "onnx"),  # the lite runtime carries both
        ("onnx", {"tflite", "keras"}, "litert"),
        ("litert", {"keras"}, None),  # Keras-only: the tensorflow flavor's
        ("keras", {"onnx", "keras"}, "keras"),
        ("keras", {"tflite"}, "litert"),
        ("keras", {"onnx"}, None),  # the tensorflow flavor carries no ONNX Runtime
    ],
)
def test_a_runtime_serves_a_bundle_with_an_engine_its_flavor_carries(
    configured: str, artifacts: set[str], served: str | None
) -> None:
    assert serving_engine(configured, artifacts) == served


def test_telemetry_is_switched_off_for_every_process_that_may_import_onnx_runtime() -> None:
    assert engine_environment() == {"ORT_DISABLE_TELEMETRY": "1"}
    assert ENGINES["onnx"].converter == "modelops.onnx_convert:convert_to_onnx"


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (UnconvertibleOps(["Erfinv"]), "ops ONNX has no equivalent for: Erfinv"),
        (RuntimeError("...\nCustom ops: Erfinv\n..."), "ops LiteRT's builtins lack: Erfinv"),
        (
            RuntimeError(
                "x 'tf.HashTableV2' op is neither a custom op nor a flex op\n"
                "y 'tf.LookupTableFindV2' op is neither a custom op nor a flex op"
            ),
            "ops LiteRT's builtins lack: HashTableV2, LookupTableFindV2",
        ),
        (RuntimeError("Lowering tensor list ops is failed"), "TensorList ops"),
    ],
)
def test_a_failed_conversion_names_the_ops_in_one_line(error: Exception, said: str) -> None:
    assert said in conversion_problem(error) and "\n" not in conversion_problem(error)


def test_erfc_becomes_one_minus_erf_and_captured_inputs_become_constants() -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("Erfc", ["x"], ["e"], "erfc"),
            helper.make_node("Sub", ["e", "m"], ["y"]),
        ],
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [None, 2]) for n in ("x", "m")],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert unknown_ops(proto) == ["Erfc"]
    fold_captured_inputs(proto, {"m": np.array([1.0, 2.0], np.float32)})
    rewrite_erfc(proto)
    assert unknown_ops(proto) == [] and [i.name for i in proto.graph.input] == ["x"]
    onnx.checker.check_model(proto)

    from chalicelib.engines.onnx_engine import OnnxEngine

    x = np.array([[0.5, -1.0]], np.float32)
    from math import erfc

    expected = np.array([[erfc(0.5) - 1.0, erfc(-1.0) - 2.0]], np.float32)
    got = OnnxEngine(proto.SerializeToString()).predict({"x": x})
    assert np.abs(got - expected).max() <= 1e-6


def test_importing_the_engines_leaves_numpy_one_thread(tmp_path: Path) -> None:
    """numpy's OpenBLAS pool spin-waits (~110 ms of CPU per cold start): the engines
    package caps it before numpy is first imported, unless the environment says otherwise."""
    code = (
        "import os, chalicelib.engines, numpy\n"
        "numpy.ones((64, 64)) @ numpy.ones((64, 64))\n"
        "print(len(os.listdir('/proc/self/task')), os.environ['OPENBLAS_NUM_THREADS'])"
    )
    env = {"PATH": os.environ.get("PATH", ""), "TMPDIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, cwd=PROJECT_DIR, check=True)  # fmt: skip
    assert result.stdout.split() == ["1", "1"]
