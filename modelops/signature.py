"""What a Keras model takes, for publishing: its inputs, the features each one gets,
and a parity sample that respects integer inputs.

    --features names.json            a flat list: the model has one input
    --features '{"numbers": [...], "codes": [...]}'   one list per input name

Records stay flat; the manifest's `inputs` maps each feature to its input and position.
An input of rank 3 or more (a sequence [rows, steps, features], an image [rows, h, w, c])
takes one field named like the input, a nested list of one record's shape; it needs no
--features entry.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from chalicelib.manifest import INPUT_DTYPES, ModelInput, PreprocessingSpec

SAMPLE_ROWS = 512
#: Integer inputs feeding no Embedding/CategoryEncoding are sampled in [0, this).
DEFAULT_INTEGER_BOUND = 2

FeatureNames = Sequence[str] | Mapping[str, Sequence[str]]


class SignatureError(ValueError):
    """The model's inputs or the given feature names do not fit a bundle."""


@dataclass(frozen=True)
class KerasInput:
    """One input of the Keras model, as loaded from its file."""

    name: str
    dtype: str
    width: int
    #: One record's shape for inputs of rank 3 or more (empty for 2-D inputs).
    shape: tuple[int, ...] = ()


def keras_inputs(model: Any) -> list[KerasInput]:
    """The model's inputs in its order: numeric, (rows, features) or of a fixed record
    shape (rows, d1, d2, ...)."""
    found = []
    for tensor in model.inputs:
        dtype = str(getattr(tensor.dtype, "name", tensor.dtype))
        inner = tuple(tensor.shape[1:])
        if not inner or any(dim is None for dim in inner):
            raise SignatureError(
                f"input {tensor.name!r} must have a fixed shape per record (rows, features) "
                f"or (rows, d1, d2, ...); it has shape {tuple(tensor.shape)}: give every "
                "dimension but the first a size, e.g. keras.Input((10, 4))"
            )
        if dtype not in INPUT_DTYPES:
            raise SignatureError(
                f"input {tensor.name!r} has dtype {dtype}; supported: {', '.join(INPUT_DTYPES)}"
            )
        shape = tuple(int(dim) for dim in inner)
        found.append(
            KerasInput(str(tensor.name), dtype, math.prod(shape), shape if len(shape) > 1 else ())
        )
    return found


def map_features(
    inputs: list[KerasInput],
    preprocessing: PreprocessingSpec | None,
    names: FeatureNames | None,
) -> tuple[list[str], tuple[ModelInput, ...]]:
    """The encoded feature order and each input's features (the manifest's `inputs`)."""
    if any(i.shape for i in inputs):
        names = _with_tensor_fields(inputs, preprocessing, names)
    if names is None or not isinstance(names, Mapping):
        if len(inputs) > 1 and (names is not None or preprocessing is not None):
            raise SignatureError(
                f"the model has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}): "
                'give --features as {"input name": [feature names], ...}'
            )
        if len(inputs) == 1:
            flat = preprocessing.encoded_features() if preprocessing else names
            names = {inputs[0].name: list(flat or (f"x{i}" for i in range(inputs[0].width)))}
        else:
            names = {i.name: [f"{i.name}_{n}" for n in range(i.width)] for i in inputs}
    unknown = sorted(set(names) - {i.name for i in inputs})
    missing = [i.name for i in inputs if i.name not in names]
    if unknown or missing:
        raise SignatureError(
            f"--features names inputs {unknown or '[]'} the model does not have and lacks "
            f"{missing or '[]'}; the model's inputs are {', '.join(i.name for i in inputs)}"
        )
    mapped: list[ModelInput] = []
    for model_input in inputs:
        given = names[model_input.name]
        if isinstance(given, str) or not isinstance(given, Sequence):
            raise SignatureError(f"--features for input {model_input.name!r} must be a list")
        features = tuple(str(name) for name in given)
        if model_input.shape:
            mapped.append(
                ModelInput(model_input.name, model_input.dtype, features, shape=model_input.shape)
            )
            continue
        if len(features) != model_input.width:
            raise SignatureError(
                f"input {model_input.name!r} takes {model_input.width} features but "
                f"{len(features)} names were given"
            )
        mapped.append(ModelInput(model_input.name, model_input.dtype, features))
    concatenated = [name for model_input in mapped for name in model_input.features]
    return (preprocessing.encoded_features() if preprocessing else concatenated), tuple(mapped)


def _with_tensor_fields(
    inputs: list[KerasInput], preprocessing: PreprocessingSpec | None, names: FeatureNames | None
) -> dict[str, Sequence[str]]:
    """Feature names per input when some take nested lists: each such input one field
    named like it; the flat inputs' names as given (a flat list: the one flat input's)."""
    tensors = [i for i in inputs if i.shape]
    flat = [i for i in inputs if not i.shape]
    if preprocessing is not None:
        raise SignatureError(
            f"input {tensors[0].name!r} takes nested lists of shape {list(tensors[0].shape)}: "
            "such a model takes encoded records; publish it without --preprocessing"
        )
    given: dict[str, Sequence[str]] = {}
    if isinstance(names, Mapping):
        given = dict(names)
    elif names is not None and list(names) == [i.name for i in tensors] and not flat:
        pass  # the fields, named like the inputs, as they are anyway
    elif names is not None:
        if len(flat) != 1:
            raise SignatureError(
                "the model's inputs "
                + ", ".join(f"{i.name} {list(i.shape)}" for i in tensors)
                + " take nested lists, one field each named like the input: give --features "
                'only for the flat inputs, as {"input name": [feature names], ...}'
            )
        given = {flat[0].name: names}
    default = {i.name: [f"{i.name}_{n}" for n in range(i.width)] for i in flat}
    return {i.name: [i.name] if i.shape else given.get(i.name, default[i.name]) for i in inputs}


def parity_matrix(
    model: Any,
    encoded: list[str],
    inputs: Sequence[ModelInput],
    preprocessing: PreprocessingSpec | None,
    sample: np.ndarray | None,
) -> np.ndarray:
    """Encoded-space rows to compare engines on (float64): given rows plus seeded
    synthetic ones; integer features get whole numbers the model can index with."""
    rng = np.random.default_rng(0)
    widths = {name: width for i in inputs for name, width in i.widths().items()}
    columns = [name for name in encoded for _ in range(widths[name])]
    synthetic = rng.standard_normal((SAMPLE_ROWS, len(columns)))
    if preprocessing:
        offset = len(preprocessing.numeric)
        synthetic[:, offset:] = 0.0
        for feature in preprocessing.categorical:
            picks = rng.integers(0, len(feature.categories), SAMPLE_ROWS)
            synthetic[np.arange(SAMPLE_ROWS), offset + picks] = 1.0
            offset += len(feature.categories)
    synthetic = synthetic.astype(np.float32).astype(np.float64)  # what float32 inputs get
    for model_input in inputs:
        if model_input.dtype != "float32":
            bound = integer_bound(model, model_input.name)
            for name in model_input.features:
                for column in (i for i, found in enumerate(columns) if found == name):
                    synthetic[:, column] = rng.integers(0, bound, SAMPLE_ROWS)
    if sample is None:
        return synthetic
    return np.concatenate([np.asarray(sample, dtype=np.float64), synthetic])


def integer_bound(model: Any, input_name: str) -> int:
    """Exclusive upper bound for sampling an integer input: `index_bound`, else a small
    default."""
    return index_bound(model, input_name) or DEFAULT_INTEGER_BOUND


def with_index_ranges(model: Any, inputs: Sequence[ModelInput]) -> tuple[ModelInput, ...]:
    """`inputs` with each integer input's valid range `[0, bound - 1]` when the model
    shows one (`index_bound`); the manifest records it and the service refuses indexes
    outside it with a 400 naming record and field."""
    return tuple(
        replace(i, index_range=(0, bound - 1))
        if i.dtype != "float32" and (bound := index_bound(model, i.name))
        else i
        for i in inputs
    )


def index_bound(model: Any, input_name: str) -> int | None:
    """Exclusive upper bound of an integer input's values: the smallest `input_dim`
    (Embedding) or `num_tokens` (CategoryEncoding) of the layers it feeds, or None when
    none is found. Follows Keras's layer graph, so an unknown structure gives None."""
    try:
        start = next(layer for layer in model.layers if layer.name == input_name)
        seen: set[int] = set()
        frontier, bounds = [start], []
        while frontier:
            layer = frontier.pop()
            for node in getattr(layer, "_outbound_nodes", []):
                consumer = node.operation
                if id(consumer) in seen:
                    continue
                seen.add(id(consumer))
                bound = getattr(consumer, "input_dim", None) or getattr(
                    consumer, "num_tokens", None
                )
                if bound:
                    bounds.append(int(bound))
                else:
                    frontier.append(consumer)
    except (StopIteration, AttributeError, TypeError):
        return None
    return min(bounds, default=None)
