"""The one table of engines: kind -> what every part of the project needs to know of it.

Settings validation, the store, the publisher (conversion and engine choice), the layer
build (wheels, pruning, proof), local serving (environment) and the benchmarks all read
this table. Adding an engine is one entry here, its module and its converter module.
Factories and converters are named as strings and imported only when chosen, so
TensorFlow is never imported unless the `keras` engine is configured. The order is the
publisher's preference among engines that convert a model and pass parity (LiteRT
first: its cold start is ~20 ms shorter than ONNX Runtime's, docs/models.md).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicelib.engines.base import InferenceEngine


@dataclass(frozen=True)
class EnginePrune:
    """Files of an engine's wheels the runtime can do without (layer_build proves it)."""

    name: str
    globs: tuple[str, ...]
    why: str


@dataclass(frozen=True)
class EngineSpec:
    """One engine kind: what it loads, which class loads it, how a bundle gets its
    artifact and which runtime carries it."""

    kind: str
    #: The key of its file in the manifest's `artifacts` (part of the S3 format).
    artifact: str
    #: File suffixes it loads; the first is the default, e.g. ".keras" before ".h5".
    suffixes: tuple[str, ...]
    #: "module:Class"; the class has `from_file(path) -> InferenceEngine`.
    factory: str
    #: Where this engine runs, for messages that tell a user what to deploy.
    runtime: str
    #: Its name for people (publish's console, benchmarks' tables).
    label: str = ""
    #: "module:function" turning a Keras file (Path) into the artifact's bytes at publish;
    #: None: the artifact is the Keras file itself.
    converter: str | None = None
    #: The runtime flavors (layer_build.flavors) that carry it; the first is its own.
    flavors: tuple[str, ...] = ("lite",)
    #: Pinned wheels it adds to each flavor carrying it, beyond the flavor's lock file.
    wheels: tuple[str, ...] = ()
    #: What of those wheels the runtime prunes (applied to the flavors carrying it).
    prune: tuple[EnginePrune, ...] = ()
    #: Environment set before it is imported, wherever it runs (also set by its module).
    environment: Mapping[str, str] = field(default_factory=dict)

    def file_name(self, suffix: str | None = None) -> str:
        """The artifact's file name in a bundle: `model<suffix>`, the default suffix
        unless `suffix` is another one this engine loads."""
        return f"model{suffix if suffix in self.suffixes else self.suffixes[0]}"

    def load(self, path: str) -> InferenceEngine:
        """Import the engine's module (only now) and load the artifact at `path`, wrapped
        in `GuardedEngine` (what it raises while predicting is `EngineRefused`)."""
        from chalicelib.engines.base import GuardedEngine

        engine: InferenceEngine = _named(self.factory).from_file(path)
        return GuardedEngine(engine)  # an engine's failure on inputs is a 422, never a 500

    def convert(self, keras_model_path: Path) -> bytes:
        """The artifact for the Keras file (its converter imported only now)."""
        if self.converter is None:
            return keras_model_path.read_bytes()
        convert: Callable[[Path], bytes] = _named(self.converter)
        return convert(keras_model_path)


def _named(reference: str) -> Any:
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


ENGINES: dict[str, EngineSpec] = {
    spec.kind: spec
    for spec in (
        EngineSpec(
            "litert",
            "tflite",
            (".tflite",),
            "chalicelib.engines.litert:LiteRTEngine",
            "the lite runtime flavor (stage dev/prod)",
            label="LiteRT",
            converter="modelops.convert:convert_to_tflite",
            flavors=("lite", "tensorflow"),
        ),
        EngineSpec(
            "onnx",
            "onnx",
            (".onnx",),
            "chalicelib.engines.onnx_engine:OnnxEngine",
            "the lite runtime flavor (stage dev/prod)",
            label="ONNX Runtime",
            converter="modelops.onnx_convert:convert_to_onnx",
            flavors=("lite",),
            wheels=("onnxruntime==1.32.0",),
            prune=(
                EnginePrune(
                    "ONNX Runtime tooling",
                    (
                        "onnxruntime/tools",
                        "onnxruntime/quantization",
                        "onnxruntime/transformers",
                        "onnxruntime/datasets",
                        "onnxruntime/backend",
                        "onnxruntime/capi/libonnxruntime.so*",
                    ),
                    "model tools, quantization, transformer optimizers, sample data, the ONNX "
                    "backend API and the standalone C library: inference uses the Python "
                    "binding's own copy of the runtime (the 15 KB provider bridge stays: "
                    "without it every import warns on stderr)",
                ),
            ),
            environment={"ORT_DISABLE_TELEMETRY": "1"},
        ),
        EngineSpec(
            "keras",
            "keras",
            (".keras", ".h5"),
            "chalicelib.engines.keras_engine:KerasEngine",
            "the tensorflow runtime flavor "
            "(MODEL_ENGINE=keras, stage dev-tensorflow/prod-tensorflow)",
            label="Keras (TensorFlow)",
            flavors=("tensorflow",),
        ),
    )
}


def engine_spec(kind: str) -> EngineSpec:
    """The registry entry for `kind`; ValueError names the known kinds."""
    try:
        return ENGINES[kind]
    except KeyError:
        raise ValueError(f"unknown engine {kind!r}; known: {', '.join(ENGINES)}") from None


def load_engine(kind: str, path: str) -> InferenceEngine:
    """Load the engine `kind` from the artifact at `path`."""
    return engine_spec(kind).load(path)


def engines_for(artifacts: Iterable[str]) -> list[str]:
    """The engine kinds that can serve a bundle holding these artifact keys."""
    present = set(artifacts)
    return [spec.kind for spec in ENGINES.values() if spec.artifact in present]


def flavor_engines(flavor: str) -> list[str]:
    """The engine kinds a runtime flavor carries, in preference order."""
    return [spec.kind for spec in ENGINES.values() if flavor in spec.flavors]


def serving_engine(configured: str, artifacts: Iterable[str]) -> str | None:
    """The engine that serves a bundle with these artifacts where `configured` is the
    runtime's engine: `configured` if the bundle has its artifact, else another engine its
    runtime flavor carries (the lite flavor serves LiteRT and ONNX bundles); None: none."""
    present = set(artifacts)
    if engine_spec(configured).artifact in present:
        return configured
    carried = flavor_engines(engine_spec(configured).flavors[0])
    return next((kind for kind in carried if ENGINES[kind].artifact in present), None)


def engine_environment() -> dict[str, str]:
    """Every engine's environment, for processes that may import any engine (local serving)."""
    return {name: value for spec in ENGINES.values() for name, value in spec.environment.items()}
