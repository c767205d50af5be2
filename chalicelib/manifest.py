"""The model bundle's manifest: what a bundle holds and how to feed its model.

Where a bundle's files live is `chalicelib.bundle_layout`'s business; which engine
runs which artifact is `chalicelib.engines.registry`'s; what a task's outputs mean
is `chalicelib.tasks`'s. The manifest is written by
`modelops.publish` and read by `chalicelib.store`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from chalicelib.engines.registry import engines_for
from chalicelib.tasks import Task, task_named

FORMAT_VERSION = 1


class ManifestError(ValueError):
    """A manifest or preprocessing spec is malformed or inconsistent."""


@dataclass(frozen=True)
class NumericFeature:
    """A raw numeric field, standardised as (x - mean) / std."""

    name: str
    mean: float
    std: float


@dataclass(frozen=True)
class CategoricalFeature:
    """A raw string field, one-hot encoded over `categories` in this order."""

    name: str
    categories: tuple[str, ...]


@dataclass(frozen=True)
class PreprocessingSpec:
    """How raw records become the model's encoded input vector.

    The encoded order is every numeric field, then each categorical field's
    one-hot columns; one-hot columns are named by their category string.
    """

    numeric: tuple[NumericFeature, ...]
    categorical: tuple[CategoricalFeature, ...]

    def encoded_features(self) -> list[str]:
        names = [feature.name for feature in self.numeric]
        for feature in self.categorical:
            names.extend(feature.categories)
        return names

    def raw_fields(self) -> list[str]:
        return [f.name for f in self.numeric] + [f.name for f in self.categorical]

    def to_json(self) -> dict[str, Any]:
        return {
            "numeric": [asdict(f) for f in self.numeric],
            "categorical": [
                {"name": f.name, "categories": list(f.categories)} for f in self.categorical
            ],
        }

    @classmethod
    def from_json(cls, data: Any) -> PreprocessingSpec:
        """Parse and check a preprocessing spec (the `preprocessing` manifest section)."""
        try:
            numeric = tuple(
                NumericFeature(str(f["name"]), float(f["mean"]), float(f["std"]))
                for f in data["numeric"]
            )
            categorical = tuple(
                CategoricalFeature(str(f["name"]), tuple(str(c) for c in f["categories"]))
                for f in data["categorical"]
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"malformed preprocessing spec: {exc!r}") from exc
        spec = cls(numeric, categorical)
        spec._check()
        return spec

    def _check(self) -> None:
        if _duplicates(self.raw_fields()):
            raise ManifestError(f"duplicate raw fields: {_duplicates(self.raw_fields())}")
        if _duplicates(self.encoded_features()):
            raise ManifestError(
                f"encoded feature names collide: {_duplicates(self.encoded_features())}"
            )
        for feature in self.numeric:
            if not (math.isfinite(feature.mean) and math.isfinite(feature.std) and feature.std > 0):
                raise ManifestError(
                    f"numeric field {feature.name!r} needs a finite mean and a finite std > 0"
                )
        for cat in self.categorical:
            if not cat.categories:
                raise ManifestError(f"categorical field {cat.name!r} has no categories")


@dataclass(frozen=True)
class FeatureStats:
    """Training mean and standard deviation of every encoded feature, in encoded order,
    and the smallest and largest value seen (when computed from a sample: `min`/`max`).

    Optional in a manifest: with it the service refuses encoded inputs far outside the
    training range; without it, only the output check guards encoded records.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    min: tuple[float, ...] = ()
    max: tuple[float, ...] = ()

    def to_json(self) -> dict[str, Any]:
        extremes = {"min": list(self.min), "max": list(self.max)} if self.min else {}
        return {"mean": list(self.mean), "std": list(self.std)} | extremes

    @classmethod
    def from_json(cls, data: Any) -> FeatureStats:
        """Parse and check a `feature_stats` section."""
        try:
            stats = cls(
                tuple(map(float, data["mean"])),
                tuple(map(float, data["std"])),
                tuple(map(float, data.get("min") or ())),
                tuple(map(float, data.get("max") or ())),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ManifestError(f"malformed feature_stats: {exc!r}") from exc
        if len(stats.mean) != len(stats.std):
            raise ManifestError("feature_stats mean and std differ in length")
        if (stats.min or stats.max) and not len(stats.min) == len(stats.max) == len(stats.mean):
            raise ManifestError("feature_stats min and max need one entry per feature")
        if not all(math.isfinite(x) for x in stats.min + stats.max):
            raise ManifestError("feature_stats min and max must be finite")
        if not all(math.isfinite(m) for m in stats.mean):
            raise ManifestError("feature_stats means must be finite")
        if not all(math.isfinite(s) and s > 0 for s in stats.std):
            raise ManifestError("feature_stats stds must be finite and > 0")
        return stats


#: Input dtypes a bundle may declare; integer inputs take whole numbers (e.g. embedding indexes).
INPUT_DTYPES = ("float32", "int32", "int64")
#: The name of the one input of a manifest without `inputs` (engines with one input
#: take their only array whatever its name).
DEFAULT_INPUT = "input"


@dataclass(frozen=True)
class ModelInput:
    """One input of the model: its name, dtype and the encoded features it takes, in
    column order. Records stay flat; this maps each feature to its input and position.

    `index_range` (integer inputs): the inclusive range of valid values the publisher
    found in the model, e.g. (0, input_dim - 1) for an Embedding's indexes.

    `shape` (inputs of rank 3 or more, e.g. a sequence [rows, steps, features] or an
    image [rows, h, w, c]): one record's shape, e.g. (10, 4). Such an input takes one
    field, named like the input, holding a nested list of that shape; empty for 2-D
    inputs, whose features are flat fields.
    """

    name: str
    dtype: str
    features: tuple[str, ...]
    index_range: tuple[int, int] | None = None
    shape: tuple[int, ...] = ()

    @property
    def record_shape(self) -> tuple[int, ...]:
        """One record's shape in this input: `shape`, or (features,) for a 2-D input."""
        return self.shape or (len(self.features),)

    def widths(self) -> dict[str, int]:
        """How many matrix columns each feature takes (a tensor's field: all its values)."""
        return (
            {self.features[0]: math.prod(self.shape)}
            if self.shape
            else dict.fromkeys(self.features, 1)
        )

    def to_json(self) -> dict[str, Any]:
        entry = {"name": self.name, "dtype": self.dtype, "features": list(self.features)}
        shape = {"shape": list(self.shape)} if self.shape else {}
        return entry | shape | ({"range": list(self.index_range)} if self.index_range else {})

    @classmethod
    def from_json(cls, data: Any) -> ModelInput:
        try:
            given = data.get("range")
            if given is not None and len(given) != 2:
                raise ValueError("range must be [low, high]")
            index_range = None if given is None else (int(given[0]), int(given[1]))
            shape = data.get("shape") or ()
            if not all(type(dim) is int for dim in shape):
                raise ValueError("shape must be a list of integers")
            return cls(
                str(data["name"]),
                str(data["dtype"]),
                tuple(map(str, data["features"])),
                index_range,
                tuple(shape),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ManifestError(f"malformed inputs entry: {exc!r}") from exc


#: The task of a manifest whose model has several named outputs (`heads`).
HEADS_TASK = "heads"


@dataclass(frozen=True)
class Head:
    """One named output of a model with several: its own task, labels or output names
    and threshold, as a one-output manifest has them. Its columns follow the previous
    heads' in the engines' concatenated output, in the model's output order."""

    name: str
    task: str
    labels: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    threshold: float | None = None

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": self.name, "task": self.task}
        if self.labels:
            entry["labels"] = list(self.labels)
        if self.outputs:
            entry["outputs"] = list(self.outputs)
        return entry | ({} if self.threshold is None else {"threshold": self.threshold})

    @classmethod
    def from_json(cls, data: Any) -> Head:
        try:
            threshold = data.get("threshold")
            return cls(
                str(data["name"]),
                str(data["task"]),
                tuple(map(str, data.get("labels") or ())),
                tuple(map(str, data.get("outputs") or ())),
                None if threshold is None else float(threshold),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ManifestError(f"malformed heads entry: {exc!r}") from exc


@dataclass(frozen=True)
class Artifact:
    """One file of the bundle, with the checksum the store verifies."""

    file: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class BundleManifest:
    """Everything the service needs to know about one published model version."""

    name: str
    version: str
    encoded_features: tuple[str, ...]
    labels: tuple[str, ...]
    artifacts: dict[str, Artifact]
    preprocessing: PreprocessingSpec | None = None
    frameworks: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Any] | None = None
    created_at: str = ""
    format_version: int = FORMAT_VERSION
    feature_stats: FeatureStats | None = None
    #: Empty in manifests written before several inputs: one float32 input of all features.
    inputs: tuple[ModelInput, ...] = ()

    #: The model kind (chalicelib.tasks); manifests without one are classifiers.
    task: str = "classification"
    #: Regression's output names (the probabilistic tasks name theirs in `labels`).
    outputs: tuple[str, ...] = ()
    #: binary/multilabel: a label is given at p >= threshold (absent: 0.5).
    threshold: float | None = None
    #: Task `heads`: the model's named outputs, each with its own task.
    heads: tuple[Head, ...] = ()

    def head_manifests(self) -> list[tuple[Head, BundleManifest]]:
        """Each head with the one-output manifest that describes it (its task, labels,
        outputs, threshold): what the head's task reads."""
        return [
            (head, replace(self, task=head.task, labels=head.labels, outputs=head.outputs,
                           threshold=head.threshold, heads=()))
            for head in self.heads
        ]  # fmt: skip

    def model_inputs(self) -> tuple[ModelInput, ...]:
        """The model's inputs in its own order (the default single input if none recorded)."""
        return self.inputs or (ModelInput(DEFAULT_INPUT, "float32", self.encoded_features),)

    def column_names(self) -> list[str]:
        """The encoded matrix's column names: each encoded feature once, a tensor input's
        field once per value (row-major), so problems name the record's field."""
        widths = {f: w for i in self.model_inputs() for f, w in i.widths().items()}
        return [name for name in self.encoded_features for _ in range(widths[name])]

    def to_json(self) -> dict[str, Any]:
        optional: dict[str, Any] = {}
        if self.feature_stats:
            optional["feature_stats"] = self.feature_stats.to_json()
        if self.inputs:
            optional["inputs"] = [model_input.to_json() for model_input in self.inputs]
        if self.outputs:
            optional["outputs"] = list(self.outputs)
        if self.threshold is not None:
            optional["threshold"] = self.threshold
        if self.heads:
            optional["heads"] = [head.to_json() for head in self.heads]
        return optional | {
            "task": self.task,
            "format_version": self.format_version,
            "name": self.name,
            "version": self.version,
            "created_at": self.created_at,
            "encoded_features": list(self.encoded_features),
            "preprocessing": self.preprocessing.to_json() if self.preprocessing else None,
            "labels": list(self.labels),
            "artifacts": {kind: asdict(a) for kind, a in sorted(self.artifacts.items())},
            "frameworks": dict(self.frameworks),
            "metrics": self.metrics,
        }

    def dumps(self) -> bytes:
        return json.dumps(self.to_json(), indent=2, sort_keys=True).encode()

    def public_json(self) -> dict[str, Any]:
        """What GET /model shows: no checksums, no training internals."""
        features: list[dict[str, Any]] = []
        if self.preprocessing:
            features += [{"name": f.name, "kind": "numeric"} for f in self.preprocessing.numeric]
            features += [
                {"name": f.name, "kind": "categorical", "categories": list(f.categories)}
                for f in self.preprocessing.categorical
            ]
        takes = {
            "features": features,
            "encoded_features": list(self.encoded_features),
            "inputs": [model_input.to_json() for model_input in self.model_inputs()],
            "engines": engines_for(self.artifacts),
            "accepts": ["raw", "encoded"] if self.preprocessing else ["encoded"],
            "range_checks": self.range_checks(),
        }
        answers = _task(self.task).public_json(self)  # task, labels/outputs, threshold
        return (
            {"name": self.name, "version": self.version}
            | answers
            | takes
            | {"metrics": self.metrics}
        )

    def range_checks(self) -> dict[str, Any]:
        """Which inputs are checked against the training range: raw records when the
        bundle has a preprocessing spec, encoded ones when it has `feature_stats` (from
        `--sample` or `--feature-stats` at publish), and integer inputs' index ranges."""
        checks: dict[str, Any] = {"encoded": self.feature_stats is not None}
        if self.preprocessing:
            checks["raw"] = True
        ranges = {i.name: list(i.index_range) for i in self.inputs if i.index_range}
        if ranges:
            checks["index_ranges"] = ranges
        return checks

    @classmethod
    def loads(cls, raw: bytes) -> BundleManifest:
        """Parse and check manifest.json bytes; raises ManifestError."""
        try:
            data = json.loads(raw)
            if data["format_version"] != FORMAT_VERSION:
                raise ManifestError(f"unsupported manifest format {data['format_version']!r}")
            manifest = cls(
                name=str(data["name"]),
                version=str(data["version"]),
                encoded_features=tuple(str(n) for n in data["encoded_features"]),
                labels=tuple(str(label) for label in data["labels"]),
                artifacts={
                    str(kind): Artifact(str(a["file"]), str(a["sha256"]), int(a["bytes"]))
                    for kind, a in data["artifacts"].items()
                },
                preprocessing=(
                    PreprocessingSpec.from_json(data["preprocessing"])
                    if data.get("preprocessing")
                    else None
                ),
                frameworks={str(k): str(v) for k, v in (data.get("frameworks") or {}).items()},
                metrics=data.get("metrics"),
                created_at=str(data.get("created_at", "")),
                feature_stats=(
                    FeatureStats.from_json(data["feature_stats"])
                    if data.get("feature_stats")
                    else None
                ),
                inputs=tuple(ModelInput.from_json(i) for i in data.get("inputs") or ()),
                task=str(data.get("task", "classification")),
                outputs=tuple(str(name) for name in data.get("outputs") or ()),
                threshold=None if data.get("threshold") is None else float(data["threshold"]),
                heads=tuple(Head.from_json(h) for h in data.get("heads") or ()),
            )
        except ManifestError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ManifestError(f"malformed manifest: {exc!r}") from exc
        manifest.check()
        return manifest

    def check(self) -> None:
        """Raise ManifestError unless the manifest is internally consistent."""
        if not self.encoded_features or _duplicates(list(self.encoded_features)):
            raise ManifestError("encoded_features must be non-empty and unique")
        problem = _task(self.task).manifest_problem(self)
        if problem:
            raise ManifestError(problem)
        if self.preprocessing and self.preprocessing.encoded_features() != list(
            self.encoded_features
        ):
            raise ManifestError("encoded_features do not match the preprocessing spec's order")
        if self.feature_stats and len(self.feature_stats.mean) != len(self.encoded_features):
            raise ManifestError("feature_stats must have one entry per encoded feature")
        self._check_inputs()
        for artifact in self.artifacts.values():
            if "/" in artifact.file or artifact.file.startswith("."):
                raise ManifestError(f"artifact file name {artifact.file!r} is not a plain name")

    def _check_inputs(self) -> None:
        """Every encoded feature goes to exactly one input; integer inputs take encoded
        records only (standardising and one-hot encoding give floats)."""
        if not self.inputs:
            return
        names = [model_input.name for model_input in self.inputs]
        if _duplicates(names):
            raise ManifestError(f"duplicate input names: {_duplicates(names)}")
        for model_input in self.inputs:
            if model_input.dtype not in INPUT_DTYPES:
                raise ManifestError(
                    f"input {model_input.name!r} has dtype {model_input.dtype!r}; "
                    f"supported: {', '.join(INPUT_DTYPES)}"
                )
            if not model_input.features:
                raise ManifestError(f"input {model_input.name!r} takes no features")
            bounds = model_input.index_range
            if bounds is not None and (model_input.dtype == "float32" or bounds[0] > bounds[1]):
                raise ManifestError(
                    f"input {model_input.name!r}: a range is [low, high] of an integer input"
                )
            if self.preprocessing and model_input.dtype != "float32":
                raise ManifestError(
                    f"input {model_input.name!r} is {model_input.dtype}: integer inputs take "
                    "encoded records, not a preprocessing spec"
                )
            self._check_shape(model_input)
        assigned = [name for model_input in self.inputs for name in model_input.features]
        if sorted(assigned) != sorted(self.encoded_features):
            raise ManifestError("the inputs must take every encoded feature exactly once")

    def _check_shape(self, model_input: ModelInput) -> None:
        """A tensor input: one field named like it, every dimension positive, encoded
        records only, and no feature_stats (they are per flat feature)."""
        if not model_input.shape:
            return
        name = model_input.name
        if len(model_input.shape) < 2 or not all(dim > 0 for dim in model_input.shape):
            raise ManifestError(
                f"input {name!r}: shape is one record's dimensions, two or more, each > 0"
            )
        if model_input.features != (name,):
            raise ManifestError(f"input {name!r} has a shape: it takes one field, {name!r}")
        if self.preprocessing or self.feature_stats:
            raise ManifestError(
                f"input {name!r} has a shape: a bundle with nested-list inputs has no "
                "preprocessing spec and no feature_stats"
            )


def _task(name: str) -> Task:
    try:
        return task_named(name)
    except ValueError as exc:
        raise ManifestError(str(exc)) from exc


def _duplicates(names: list[str]) -> list[str]:
    seen: set[str] = set()
    return sorted({n for n in names if n in seen or seen.add(n)})  # type: ignore[func-returns-value]
