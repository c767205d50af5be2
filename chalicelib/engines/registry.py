"""The one table of engines: kind -> the bundle artifact it runs and its factory.

Settings validation, the store, the publisher and the layer proof all read this
table. Adding an engine is one entry here plus its module. Factories are named
as strings and imported only when chosen, so TensorFlow is never imported unless
the `keras` engine is configured.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chalicelib.engines.base import InferenceEngine


@dataclass(frozen=True)
class EngineSpec:
    """One engine kind: what it loads and which class loads it."""

    kind: str
    #: The key of its file in the manifest's `artifacts` (part of the S3 format).
    artifact: str
    #: File suffixes it loads; the first is the default, e.g. ".keras" before ".h5".
    suffixes: tuple[str, ...]
    #: "module:Class"; the class has `from_file(path) -> InferenceEngine`.
    factory: str
    #: Where this engine runs, for messages that tell a user what to deploy.
    runtime: str

    def file_name(self, suffix: str | None = None) -> str:
        """The artifact's file name in a bundle: `model<suffix>`, the default suffix
        unless `suffix` is another one this engine loads."""
        return f"model{suffix if suffix in self.suffixes else self.suffixes[0]}"

    def load(self, path: str) -> InferenceEngine:
        """Import the engine's module (only now) and load the artifact at `path`, wrapped
        in `GuardedEngine` (what it raises while predicting is `EngineRefused`)."""
        from chalicelib.engines.base import GuardedEngine

        module, _, cls = self.factory.partition(":")
        engine: InferenceEngine = getattr(importlib.import_module(module), cls).from_file(path)
        return GuardedEngine(engine)  # an engine's failure on inputs is a 422, never a 500


ENGINES: dict[str, EngineSpec] = {
    spec.kind: spec
    for spec in (
        EngineSpec(
            "litert",
            "tflite",
            (".tflite",),
            "chalicelib.engines.litert:LiteRTEngine",
            "the lite runtime flavor (MODEL_ENGINE=litert, stage dev/prod)",
        ),
        EngineSpec(
            "keras",
            "keras",
            (".keras", ".h5"),
            "chalicelib.engines.keras_engine:KerasEngine",
            "the tensorflow runtime flavor "
            "(MODEL_ENGINE=keras, stage dev-tensorflow/prod-tensorflow)",
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
