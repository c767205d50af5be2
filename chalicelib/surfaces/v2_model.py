"""One model's manifest seen as Open Inference Protocol tensors: its inputs (the
model's own tensors, or one per raw field) and outputs by task, the checks of a
request's inputs against them, and the core's Scores as output tensors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from chalicelib.core.pipeline import Scored
from chalicelib.errors import InvalidRequest, PayloadTooLarge
from chalicelib.manifest import BundleManifest
from chalicelib.surfaces.v2_tensors import (
    BYTES,
    DATATYPE_OF,
    DTYPES,
    InferRequest,
    OutputTensor,
    Tensor,
    tensor_label,
)
from chalicelib.tasks import task_named

_NUMERIC = frozenset(DTYPES) - {"BOOL"}
#: Names listed in one message at most, as record problems are capped.
MAX_NAMES_SHOWN = 100


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    shape: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


class ServedModel:
    """One manifest seen as V2 tensors: its inputs (model tensors or raw fields) and
    outputs (`probabilities` and `label`, multilabel's `labels`, or `values`)."""

    def __init__(self, manifest: BundleManifest) -> None:
        self.manifest = manifest
        self.tensor_inputs = {
            i.name: TensorSpec(i.name, DATATYPE_OF[i.dtype], (-1, *i.record_shape))
            for i in manifest.model_inputs()
        }
        spec = manifest.preprocessing
        self.raw_inputs = (
            {f.name: TensorSpec(f.name, "FP64", (-1,)) for f in spec.numeric}
            | {f.name: TensorSpec(f.name, BYTES, (-1,)) for f in spec.categorical}
            if spec
            else {}
        )
        self.task = task_named(manifest.task)
        self.outputs = {
            o.name: TensorSpec(o.name, o.datatype, o.shape) for o in self.task.v2_outputs(manifest)
        }

    def metadata(self, platform: str) -> dict[str, Any]:
        inputs = list(self.tensor_inputs.values()) + [
            spec for name, spec in self.raw_inputs.items() if name not in self.tensor_inputs
        ]
        manifest, task = self.manifest, self.task
        parameters: dict[str, Any] = {
            "task": manifest.task,
            "columns": list(task.output_names(manifest)),
            "tensor_inputs": list(self.tensor_inputs),
            "raw_inputs": list(self.raw_inputs),
        }
        parameters |= task.v2_parameters(manifest)
        if task.thresholded:
            parameters["threshold"] = task.threshold(manifest)
        return {
            "name": manifest.name,
            "versions": [manifest.version],
            "platform": platform,
            "inputs": [spec.to_json() for spec in inputs],
            "outputs": [spec.to_json() for spec in self.outputs.values()],
            "parameters": parameters,
        }

    def requested_outputs(self, request: InferRequest) -> dict[str, bool | None]:
        if not request.outputs:
            return dict.fromkeys(self.outputs)
        unknown = [name for name in request.outputs if name not in self.outputs]
        if unknown:
            raise InvalidRequest(
                f"{_names(unknown)} is not an output of this model; "
                f"its outputs are {', '.join(self.outputs)}.",
                code="unknown_output",
            )
        return request.outputs

    def is_raw(self, inputs: list[Tensor]) -> bool:
        """Whether `inputs` are the raw fields (else they must be the model's tensors)."""
        names = [tensor.name for tensor in inputs]
        if len(set(names)) != len(names):
            raise InvalidRequest("An input is given more than once.", code="invalid_inputs")
        if set(names) == set(self.tensor_inputs):
            return False
        if self.raw_inputs and set(names) == set(self.raw_inputs):
            return True
        expected = self.raw_inputs or self.tensor_inputs
        kind = "the raw fields" if self.raw_inputs else "the model's tensors"
        missing = [name for name in expected if name not in names]
        unknown = [name for name in names if name not in expected]
        parts = [f"missing {_names(missing)}" if missing else "",
                 f"unknown {_names(unknown)}" if unknown else ""]  # fmt: skip
        raise InvalidRequest(
            f"Send either the model's tensors ({', '.join(self.tensor_inputs)}) or "
            f"{'every raw field' if self.raw_inputs else 'nothing else'}; against {kind}: "
            + ", ".join(part for part in parts if part)
            + ". GET /v2/models/{name} lists the inputs.",
            code="invalid_inputs",
        )

    def rows(self, inputs: list[Tensor], max_records: int) -> int:
        """The one row count of all inputs, checked against each input's shape and datatype."""
        counts = {tensor.shape[0] for tensor in inputs}
        if len(counts) != 1:
            raise InvalidRequest(
                "Every input must have the same number of rows (its first dimension).",
                code="invalid_tensor",
            )
        rows = counts.pop()
        if rows == 0:
            raise InvalidRequest("There are no rows to predict.", code="empty_instances")
        if rows > max_records:
            raise PayloadTooLarge(f"{rows} rows exceed the maximum of {max_records} per request.")
        for tensor in inputs:
            self._check(tensor)
        return rows

    def _check(self, tensor: Tensor) -> None:
        spec = self.tensor_inputs.get(tensor.name)
        if spec is not None and tensor.name not in self.raw_inputs:
            if tensor.datatype != spec.datatype or tensor.shape[1:] != spec.shape[1:]:
                raise InvalidRequest(
                    f"Input {tensor.name!r} must be {spec.datatype} of shape "
                    f"[n, {', '.join(map(str, spec.shape[1:]))}].",
                    code="invalid_tensor",
                )
            return
        raw = self.raw_inputs.get(tensor.name) or spec
        assert raw is not None
        allowed = {BYTES} if raw.datatype == BYTES else _NUMERIC
        if tensor.datatype not in allowed or tensor.shape[1:] not in ((), (1,)):
            kind = (
                "BYTES" if raw.datatype == BYTES else "a numeric datatype (FP64, FP32, INT64, ...)"
            )
            raise InvalidRequest(
                f"Raw field {tensor.name!r} must be {kind} of shape [n] or [n, 1].",
                code="invalid_tensor",
            )

    def tensors(self, inputs: list[Tensor]) -> dict[str, np.ndarray]:
        return {t.name: t.array(DTYPES[self.tensor_inputs[t.name].datatype]) for t in inputs}

    def columns(self, inputs: list[Tensor]) -> dict[str, Any]:
        return {tensor.name: tensor.flat() for tensor in inputs}

    def output_tensors(self, scored: Scored) -> list[OutputTensor]:
        """The task's output tensors for the snapshot's checked outputs."""
        return [OutputTensor(a.name, a.datatype, a.shape, a.data) for a in scored.tensors()]


def _names(names: list[str]) -> str:
    """Names as a message lists them: those that look like names, at most
    MAX_NAMES_SHOWN, then how many more."""
    shown = [
        label.removeprefix("Input ") if label.startswith("Input ") else "an unnamed input"
        for label in (tensor_label(name, 0) for name in names[:MAX_NAMES_SHOWN])
    ]
    more = len(names) - len(shown)
    return ", ".join(shown) + (f" and {more:,} more" if more else "")
