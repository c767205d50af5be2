"""Model kinds over fakes: manifest rules, output checks, response shapes, GET /model,
the store's width probe, and the publisher's detection and sample verification."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import orjson
import pytest

from chalicelib.errors import ModelCorrupt, UnscorableRecords
from chalicelib.manifest import BundleManifest, ManifestError
from chalicelib.tasks import TASKS, detected_task, task_named
from chalicelib.tasks.checks import NO_VALID_SCORE
from modelops.publish import PublishError, detect_task, main, output_section, verify_outputs
from tests.fakes import (
    BUCKET,
    PREFIX,
    FakeEngine,
    FakeEngineLoader,
    FakeS3,
    make_bundle,
    make_service,
    make_store,
    put_bundle,
)
from tests.unit.schema_fixtures import loan_manifest

RECORD = {"x0": 1.0, "x1": 0.5, "x2": -1.0, "x3": 2.0}
KINDS: dict[str, dict[str, Any]] = {
    "classification": {"labels": ("A", "B", "C")},
    "binary": {"labels": ("good", "bad"), "threshold": 0.3},
    "multilabel": {"labels": ("fraud", "late", "default"), "threshold": 0.5},
    "regression": {"labels": (), "outputs": ("loss", "recovery")},
}


def serve(tmp_path: Path, rows: list[list[float]], **bundle: Any) -> Any:
    """A service over a bundle of the given kind whose engine answers `rows` in turn."""
    s3 = FakeS3(buckets={BUCKET})
    put_bundle(s3, BUCKET, PREFIX, make_bundle(**bundle))
    return make_service(s3, tmp_path, FakeEngineLoader(FakeEngine(rows=rows)))


def predict(tmp_path: Path, rows: list[list[float]], count: int, **bundle: Any) -> Any:
    return serve(tmp_path, rows, **bundle).predict([RECORD] * count)["predictions"]


def test_every_task_is_registered_under_its_name() -> None:
    assert set(TASKS) == {"classification", "binary", "multilabel", "regression", "heads"}
    assert all(task.name == name for name, task in TASKS.items())
    with pytest.raises(ValueError, match="unknown task 'ranking'; known: classification"):
        task_named("ranking")


# --- manifest -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_round_trips_through_the_manifest(kind: str) -> None:
    manifest = make_bundle(task=kind, **KINDS[kind]).manifest
    assert BundleManifest.loads(manifest.dumps()) == manifest
    assert json.loads(manifest.dumps())["task"] == kind


def test_a_manifest_without_a_task_is_a_classifier() -> None:
    old = json.loads(loan_manifest().dumps())
    del old["task"]
    loaded = BundleManifest.loads(json.dumps(old).encode())
    assert loaded.task == "classification" and loaded.labels == loan_manifest().labels


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"task": "ranking"}, "unknown task 'ranking'"),
        ({"labels": ("A",)}, "classification model needs at least 2 unique labels"),
        ({"labels": ("A", "A")}, "at least 2 unique labels"),
        ({"threshold": 0.5}, "classification model takes no threshold"),
        ({"task": "binary", "labels": ("A", "B", "C")}, "binary model needs exactly 2"),
        ({"task": "binary", "labels": ("A",)}, "binary model needs exactly 2"),
        ({"task": "binary", "threshold": 1.0}, "threshold must be between 0 and 1"),
        ({"task": "binary", "threshold": 0.0}, "threshold must be between 0 and 1"),
        ({"task": "binary", "threshold": float("nan")}, "threshold must be between 0 and 1"),
        ({"task": "multilabel", "labels": ()}, "multilabel model needs at least 1 unique"),
        ({"task": "binary", "outputs": ("y",)}, "has labels, not output names"),
        ({"task": "regression", "labels": (), "outputs": ()}, "at least one unique output"),
        ({"task": "regression", "labels": (), "outputs": ("y", "y")}, "one unique output"),
        ({"task": "regression", "outputs": ("y",)}, "has output names, not labels"),
        ({"task": "regression", "labels": (), "outputs": ("y",), "threshold": 0.5}, "no thresh"),
    ],
)
def test_the_manifest_is_checked_per_task(change: dict[str, Any], message: str) -> None:
    manifest = dataclasses.replace(make_bundle(labels=("A", "B")).manifest, **change)
    with pytest.raises(ManifestError, match=message):
        manifest.check()
    with pytest.raises(ManifestError, match=message):
        BundleManifest.loads(manifest.dumps())


@pytest.mark.parametrize(
    ("kind", "public"),
    [
        ("classification", {"task": "classification", "labels": ["A", "B", "C"]}),
        ("binary", {"task": "binary", "labels": ["good", "bad"], "threshold": 0.3}),
        ("multilabel", {"task": "multilabel", "labels": ["fraud", "late", "default"],
                        "threshold": 0.5}),
        ("regression", {"task": "regression", "outputs": ["loss", "recovery"]}),
    ],
)  # fmt: skip
def test_get_model_states_the_task_and_what_it_answers(kind: str, public: dict[str, Any]) -> None:
    shown = make_bundle(task=kind, **KINDS[kind]).manifest.public_json()
    assert {k: shown[k] for k in public} == public
    assert set(shown) - set(public) == {
        "name", "version", "features", "encoded_features", "inputs", "engines", "accepts",
        "range_checks", "metrics",
    }  # fmt: skip


def test_a_binary_manifest_without_a_threshold_uses_one_half() -> None:
    manifest = make_bundle(task="binary", labels=("no", "yes")).manifest
    assert "threshold" not in json.loads(manifest.dumps())
    assert manifest.public_json()["threshold"] == 0.5


# --- responses and output checks ------------------------------------------------------


def test_classification_answers_exactly_as_before(tmp_path: Path) -> None:
    rows = [[0.2, 0.5, 0.3], [0.7, 0.2, 0.1]]
    answer = predict(tmp_path, rows, 2, labels=("A", "B", "C"))
    as_float32 = np.asarray(rows, dtype=np.float32).tolist()
    before = [  # the service's postprocessing before tasks existed
        {"label": label, "probabilities": dict(zip("ABC", row, strict=True))}
        for label, row in zip("BA", as_float32, strict=True)
    ]
    assert orjson.dumps(answer) == orjson.dumps(before)


def test_binary_answers_both_labels_and_decides_at_the_threshold(tmp_path: Path) -> None:
    answer = predict(tmp_path, [[0.25], [0.3], [0.9]], 3, task="binary",
                     labels=("good", "bad"), threshold=0.3)  # fmt: skip
    assert [p["label"] for p in answer] == ["good", "bad", "bad"]
    p = float(np.float32(0.25))
    assert answer[0] == {"label": "good", "probabilities": {"good": 1.0 - p, "bad": p}}
    assert all(sum(a["probabilities"].values()) == pytest.approx(1.0) for a in answer)


def test_multilabel_answers_every_label_at_or_above_the_threshold(tmp_path: Path) -> None:
    rows = [[0.9, 0.5, 0.1], [0.1, 0.2, 0.3], [1.0, 1.0, 1.0]]
    answer = predict(tmp_path, rows, 3, task="multilabel", **KINDS["multilabel"])
    assert [p["labels"] for p in answer] == [["fraud", "late"], [], ["fraud", "late", "default"]]
    assert answer[0]["probabilities"] == dict(
        zip(KINDS["multilabel"]["labels"], np.asarray(rows[0], np.float32).tolist(), strict=True)
    )


def test_regression_answers_named_values_of_any_sign_and_size(tmp_path: Path) -> None:
    answer = predict(tmp_path, [[-1.5, 2e6]], 2, task="regression", **KINDS["regression"])
    assert answer == [{"values": {"loss": -1.5, "recovery": 2e6}}] * 2


@pytest.mark.parametrize(
    ("kind", "bad_row"),
    [
        ("classification", [0.5, 0.6, -0.1]),
        ("classification", [0.5, 0.4, 0.0]),
        ("binary", [1.2]),
        ("binary", [-0.01]),
        ("binary", [float("nan")]),
        ("multilabel", [0.5, 1.5, 0.0]),
        ("multilabel", [0.5, float("inf"), 0.0]),
        ("regression", [1.0, float("nan")]),
        ("regression", [float("-inf"), 1.0]),
    ],
)
def test_an_output_that_is_not_the_kind_of_score_is_unscorable(
    kind: str, bad_row: list[float], tmp_path: Path
) -> None:
    width = len(bad_row)
    service = serve(tmp_path, [[0.0] * (width - 1) + [1.0], bad_row], task=kind, **KINDS[kind])
    with pytest.raises(UnscorableRecords) as refused:
        service.predict([RECORD] * 3)  # rows 0 and 2 get the first (valid) row
    assert [(p.record, p.field, p.problem) for p in refused.value.details] == [
        (1, None, NO_VALID_SCORE)
    ]


def test_multilabel_rows_need_not_sum_to_one(tmp_path: Path) -> None:
    answer = predict(tmp_path, [[1.0, 1.0, 1.0]], 1, task="multilabel", **KINDS["multilabel"])
    assert len(answer[0]["labels"]) == 3


@pytest.mark.parametrize(
    ("kind", "width"),
    [("classification", 2), ("binary", 2), ("multilabel", 2), ("regression", 3)],
)
def test_the_load_probe_expects_the_tasks_output_width(
    kind: str, width: int, tmp_path: Path
) -> None:
    s3 = FakeS3(buckets={BUCKET})
    put_bundle(s3, BUCKET, PREFIX, make_bundle(task=kind, **KINDS[kind]))
    loader = FakeEngineLoader(FakeEngine(rows=[[0.5] * width]))
    with pytest.raises(ModelCorrupt, match=f"{width} outputs; the manifest's {kind} task expects"):
        make_store(s3, tmp_path, loader).get()


# --- publishing: detection, output section, sample verification ------------------------


class Layer:
    """Stands in for a Keras layer: only its class name and activation are read."""

    def __init__(self, activation: str | None) -> None:
        if activation is not None:
            self.activation = SimpleNamespace(__name__=activation)


class Softmax:
    """Named like keras.layers.Softmax, which has no `activation` attribute."""


def model_ending_in(layer: object) -> Any:
    return SimpleNamespace(
        outputs=[SimpleNamespace(_keras_history=SimpleNamespace(operation=layer))]
    )


@pytest.mark.parametrize(
    ("layer", "units", "detected"),
    [
        (Layer("softmax"), 7, "classification"),
        (Softmax(), 2, "classification"),
        (Layer("sigmoid"), 1, "binary"),
        (Layer("sigmoid"), 4, "multilabel"),
    ],
)
def test_unambiguous_final_activations_are_detected(
    layer: object, units: int, detected: str
) -> None:
    assert detect_task(model_ending_in(layer), units).name == detected


@pytest.mark.parametrize(
    ("layer", "units"),
    [(Layer("linear"), 3), (Layer("linear"), 1), (Layer("relu"), 2), (Layer("softmax"), 1),
     (Layer(None), 2)],
)  # fmt: skip
def test_an_ambiguous_output_asks_for_a_task(layer: object, units: int) -> None:
    with pytest.raises(
        PublishError, match="for numeric outputs pass --task=regression; for probabilities end"
    ):
        detect_task(model_ending_in(layer), units)


@pytest.mark.parametrize(
    ("kind", "units", "labels", "outputs", "threshold", "message"),
    [
        ("classification", 1, None, None, None, "a one-unit sigmoid is --task binary"),
        ("classification", 3, ["a", "b"], None, None, "has 3 outputs but 2 labels"),
        ("classification", 3, None, None, 0.5, "--threshold applies to binary and multilabel"),
        ("binary", 2, None, None, None, "use --task multilabel"),
        ("binary", 1, ["a", "b", "c"], None, None, "negative first: --labels neg,pos"),
        ("binary", 1, None, None, 1.5, "between 0 and 1"),
        ("multilabel", 3, None, ["y"], None, "--outputs names regression outputs"),
        ("regression", 2, ["a", "b"], None, None, "name its outputs with --outputs"),
        ("regression", 2, None, ["y"], None, "has 2 outputs but 1 names"),
    ],
)
def test_the_output_section_refusals_say_what_to_pass(
    kind: str, units: int, labels: list[str] | None, outputs: list[str] | None,
    threshold: float | None, message: str,
) -> None:  # fmt: skip
    with pytest.raises(PublishError, match=message):
        output_section(task_named(kind), units, labels, outputs, threshold)


def test_output_sections_default_names_and_threshold() -> None:
    def section(kind: str, *args: Any) -> tuple[Any, ...]:
        return dataclasses.astuple(output_section(task_named(kind), *args))

    assert section("binary", 1, None, None, None) == (("0", "1"), (), 0.5)
    assert section("multilabel", 2, ["x", "y"], None, 0.7) == (("x", "y"), (), 0.7)
    assert section("regression", 2, None, None, None) == ((), ("y0", "y1"), None)
    assert section("classification", 2, None, None, None) == (("0", "1"), (), None)


@pytest.mark.parametrize(
    ("kind", "rows", "message"),
    [
        ("classification", [[2.5, -1.0], [0.3, 0.7]], "1 of 2 rows have negative values; 1 of 2 "
         "rows have values above 1; 1 of 2 rows do not sum to 1\\): end the model with a softmax"),
        ("classification", [[0.3, 0.3], [0.5, 0.5]], "1 of 2 rows do not sum to 1"),
        ("binary", [[-3.0], [0.5]], "not binary probabilities .*: end the model with a sigmoid"),
        ("multilabel", [[0.5, 4.0]], "1 of 1 rows have values above 1\\): end the model with"),
        ("regression", [[np.nan, 1.0], [1.0, 1.0]], "not numbers on a sample \\(1 of 2 rows"),
    ],
)  # fmt: skip
def test_sample_outputs_that_are_not_the_tasks_kind_are_refused(
    kind: str, rows: list[list[float]], message: str
) -> None:
    with pytest.raises(PublishError, match=message) as refused:
        verify_outputs(task_named(kind), np.asarray(rows, dtype=np.float32))
    if kind != "regression":
        assert "--task regression" in str(refused.value)


@pytest.mark.parametrize(
    ("kind", "rows"),
    [("classification", [[0.25, 0.75]]), ("binary", [[0.0], [1.0]]),
     ("multilabel", [[1.0, 1.0]]), ("regression", [[-1e9, 3.0]])],
)  # fmt: skip
def test_sample_outputs_of_the_tasks_kind_pass(kind: str, rows: list[list[float]]) -> None:
    verify_outputs(task_named(kind), np.asarray(rows, dtype=np.float32))


def decided(kind: str, outputs: np.ndarray, threshold: float) -> list[Any]:
    decisions = task_named(kind).decisions(outputs, threshold)
    assert decisions is not None
    return list(decisions.tolist())


def test_parity_decisions_and_tolerances_per_task() -> None:
    outputs = np.asarray([[0.2, 0.8], [0.6, 0.4]], dtype=np.float32)
    assert decided("classification", outputs, 0.5) == [1, 0]
    assert decided("binary", outputs[:, :1], 0.2) == [True, True]
    assert decided("multilabel", outputs, 0.5) == [[False, True], [True, False]]
    assert task_named("regression").decisions(outputs, 0.5) is None
    big = np.asarray([[1e6, 0.1], [-3.0, -0.5]])
    assert task_named("regression").parity_tolerance(big, 1e-5).tolist() == [
        [10.0, 1e-5], [10.0, 1e-5]
    ]  # fmt: skip
    assert task_named("binary").parity_tolerance(big, 1e-5).tolist() == [[1e-5, 1e-5]] * 2


def test_list_and_promote_take_no_task_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--list", "--bucket", "b", "--name", "x", "--task", "binary", "--threshold", "0.3"])
    assert exited.value.code == 2
    assert "drop --task, --threshold" in capsys.readouterr().err


# --- the OpenAPI document describes every kind ----------------------------------------


def schema_validator(name: str) -> Any:
    """An OpenAPI 3.0 validator for components/schemas/`name` of the served document."""
    from openapi_schema_validator import OAS30Validator

    from chalicelib.surfaces.openapi_document import document as served

    document = served()
    schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    return OAS30Validator(schema)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kinds_answers_match_the_openapi_document(kind: str, tmp_path: Path) -> None:
    width = {"binary": 1, "regression": 2}.get(kind, 3)
    rows = [[1.0 / width] * width, [1.0] + [0.0] * (width - 1)]
    service = serve(tmp_path, rows, task=kind, **KINDS[kind])
    schema_validator("PredictResponse").validate(service.predict([RECORD] * 2))
    schema_validator("ModelInfo").validate(service.model_info())


def test_the_openapi_document_refuses_a_mix_of_shapes() -> None:
    from jsonschema.exceptions import ValidationError

    model = {"name": "m", "version": "1"}
    mixed = {"label": "A", "labels": ["A"], "probabilities": {"A": 1.0}}
    for prediction in (mixed, {"label": "A"}, {"values": {"y": "1.5"}}):
        with pytest.raises(ValidationError):
            schema_validator("PredictResponse").validate(
                {"model": model, "predictions": [prediction]}
            )


def test_at_most_one_task_detects_each_final_activation_and_width() -> None:
    """The publisher asks the registry; two tasks claiming one output would be a guess."""
    activations = {task.activation for task in TASKS.values()} | {None, "relu", "linear"}
    for activation in activations:
        for units in range(1, 5):
            claiming = [t.name for t in TASKS.values() if t.detects(activation, units)]
            assert len(claiming) <= 1, (activation, units, claiming)
            found = detected_task(activation, units)
            assert (found.name if found else None) == (claiming[0] if claiming else None)
