"""Task `heads` over a manifest: each named output answered by its own task, the
manifest's checks, the request contract and V2's output tensors per head."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from chalicelib.manifest import BundleManifest, Head, ManifestError
from chalicelib.surfaces.v2_model import ServedModel
from chalicelib.tasks import task_named
from chalicelib.version_pointer import contract_changes
from tests.unit.schema_fixtures import loan_manifest

GRADE = Head("grade", "classification", ("A", "B", "C"))
DEFAULT = Head("default", "binary", ("no", "yes"), threshold=0.3)
OUTPUTS = np.array([[0.2, 0.5, 0.3, 0.4], [0.7, 0.2, 0.1, 0.1]], dtype=np.float32)


def heads_manifest(*heads: Head) -> BundleManifest:
    return dataclasses.replace(
        loan_manifest(), task="heads", labels=(), outputs=(), threshold=None,
        heads=heads or (GRADE, DEFAULT),
    )  # fmt: skip


def test_heads_round_trip_and_answer_each_under_its_name() -> None:
    manifest = BundleManifest.loads(heads_manifest().dumps())
    assert manifest.heads == (GRADE, DEFAULT)
    task = task_named(manifest.task)
    assert task.output_width(manifest) == 4
    assert task.output_names(manifest) == ("grade.A", "grade.B", "grade.C", "default.yes")
    first, second = task.respond(manifest, OUTPUTS)
    assert first["grade"]["label"] == "B" and first["default"]["label"] == "yes"  # 0.4 >= 0.3
    assert second["grade"]["label"] == "A" and second["default"]["label"] == "no"
    assert second["default"]["probabilities"]["no"] == pytest.approx(0.9)
    assert [h["name"] for h in manifest.public_json()["heads"]] == ["grade", "default"]


@pytest.mark.parametrize(
    ("heads", "problem"),
    [
        ((GRADE,), "two or more"),
        ((GRADE, dataclasses.replace(DEFAULT, name="grade")), "unique names"),
        ((GRADE, dataclasses.replace(DEFAULT, labels=("no",))), "head 'default'"),
        ((GRADE, dataclasses.replace(DEFAULT, task="nope")), "unknown task"),
    ],
)
def test_malformed_heads_are_refused(heads: tuple[Head, ...], problem: str) -> None:
    with pytest.raises(ManifestError, match=problem):
        heads_manifest(*heads).check()


def test_changing_a_heads_task_changes_the_request_contract() -> None:
    regression = Head("default", "regression", outputs=("score",))
    assert contract_changes(heads_manifest(), heads_manifest(GRADE, regression)) == [
        "outputs [grade classification, default binary] -> "
        "[grade classification, default regression]"
    ]
    relabelled = dataclasses.replace(GRADE, labels=("x", "y", "z"))
    assert contract_changes(heads_manifest(), heads_manifest(relabelled, DEFAULT)) == []


def test_v2_gives_each_heads_tensors_named_by_the_head() -> None:
    manifest = heads_manifest()
    model = ServedModel(manifest)
    assert list(model.outputs) == [
        "grade.probabilities", "grade.label", "default.probabilities", "default.label"
    ]  # fmt: skip
    parameters = model.metadata("litert")["parameters"]
    assert parameters["task"] == "heads" and parameters["heads"][1]["name"] == "default"
    assert parameters["columns"] == ["grade.A", "grade.B", "grade.C", "default.yes"]
    tensors = task_named("heads").v2_tensors(manifest, OUTPUTS)
    assert [tensor.name for tensor in tensors] == list(model.outputs)
    by_name = {tensor.name: tensor for tensor in tensors}
    assert by_name["grade.label"].data == ["B", "A"]
    assert by_name["default.label"].data == ["yes", "no"]
    assert by_name["default.probabilities"].shape == (2, 2)
