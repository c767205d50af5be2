"""Several model inputs: the manifest's mapping, integer validation and the one split."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from chalicelib.errors import InvalidRecords
from chalicelib.manifest import BundleManifest, ManifestError, ModelInput
from chalicelib.model_inputs import ModelInputs
from chalicelib.records import RecordReader
from tests.fakes import (
    FakeEngine,
    FakeEngineLoader,
    make_bundle,
    make_service,
    make_store,
    s3_holding,
)
from tests.unit.schema_fixtures import loan_manifest

# Encoded order interleaves the inputs: the split must gather by name, not by position.
FEATURES = ("amount", "region", "rate", "product")
INPUTS = (
    ModelInput("numbers", "float32", ("rate", "amount")),
    ModelInput("codes", "int32", ("region", "product")),
)


def two_input_manifest(**change: object) -> BundleManifest:
    manifest = make_bundle(features=FEATURES, inputs=INPUTS).manifest
    return dataclasses.replace(manifest, **change)  # type: ignore[arg-type]


def record(**values: object) -> dict[str, object]:
    return {"amount": 1500.5, "region": 3, "rate": 0.07, "product": 1} | values


def problems(
    records: list[object], manifest: BundleManifest | None = None
) -> list[tuple[int | None, str | None, str]]:
    with pytest.raises(InvalidRecords) as caught:
        RecordReader(manifest or two_input_manifest()).to_matrix(records)
    body = json.dumps(caught.value.to_json())
    assert "1500.5" not in body and "2.5" not in body  # never echoes a value
    return [(p.record, p.field, p.problem) for p in caught.value.details]


def test_records_stay_flat_and_each_input_gets_its_features_in_its_order() -> None:
    reader = RecordReader(two_input_manifest())
    matrix = reader.to_matrix([record(), record(region=7, rate=0.5)])
    split = reader.inputs.split(matrix)
    assert list(split) == ["numbers", "codes"]
    assert split["numbers"].dtype == np.float32 and split["codes"].dtype == np.int32
    assert split["numbers"].tolist() == [[np.float32(0.07), 1500.5], [0.5, 1500.5]]
    assert split["codes"].tolist() == [[3, 1], [7, 1]]
    assert all(array.flags.c_contiguous for array in split.values())


def test_an_integer_valued_float_is_accepted_for_an_integer_input() -> None:
    reader = RecordReader(two_input_manifest())
    split = reader.inputs.split(reader.to_matrix([record(region=3.0)]))
    assert split["codes"].tolist() == [[3, 1]]


def test_integers_stay_exact_beyond_float32() -> None:
    inputs = (ModelInput("numbers", "float32", ("rate", "amount")),
              ModelInput("codes", "int64", ("region", "product")))  # fmt: skip
    reader = RecordReader(two_input_manifest(inputs=inputs))
    big = 2**53 - 1  # float32 would round it
    split = reader.inputs.split(reader.to_matrix([record(region=big)]))
    assert split["codes"].dtype == np.int64 and split["codes"][0, 0] == big


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (2.5, "must be a whole number from -2147483648 to 2147483647 (int32 input)"),
        (2**31, "must be a whole number from -2147483648 to 2147483647 (int32 input)"),
        (-(2**31) - 1, "must be a whole number from -2147483648 to 2147483647 (int32 input)"),
        (True, "must be a number, not a boolean"),
        ("3", "must be a number, not text"),
        (None, "must be a number, not null"),
    ],
)
def test_a_bad_integer_is_named_by_record_and_field(value: object, problem: str) -> None:
    assert problems([record(), record(region=value)]) == [(1, "region", problem)]


def test_int64_refuses_integers_json_cannot_carry_exactly() -> None:
    inputs = (ModelInput("numbers", "float32", ("rate", "amount")),
              ModelInput("codes", "int64", ("region", "product")))  # fmt: skip
    manifest = two_input_manifest(inputs=inputs)
    assert problems([record(product=2**53)], manifest) == [
        (0, "product", "must be a whole number from -9007199254740991 to 9007199254740991 "
                       "(int64 input)"),
    ]  # fmt: skip


def test_number_problems_are_reported_before_integer_problems() -> None:
    found = problems([record(amount="x"), record(region=0.5, product=-0.5)])
    assert [(r, f) for r, f, _ in found] == [(0, "amount")]  # number problems first
    found = problems([record(region=0.5, product=-0.5), record(product=1.25)])
    assert [(r, f) for r, f, _ in found] == [(0, "region"), (0, "product"), (1, "product")]


def test_a_manifest_without_inputs_is_one_float32_input_of_every_feature() -> None:
    manifest = make_bundle().manifest
    assert "inputs" not in manifest.to_json()
    (only,) = manifest.model_inputs()
    assert (only.dtype, only.features) == ("float32", manifest.encoded_features)
    inputs = ModelInputs(manifest)
    matrix = np.arange(8, dtype=np.float32).reshape(2, 4)
    assert inputs.matrix_dtype is np.float32
    assert np.shares_memory(inputs.split(matrix)["input"], matrix)  # no copy


def test_inputs_round_trip_and_are_public() -> None:
    manifest = two_input_manifest()
    assert BundleManifest.loads(manifest.dumps()) == manifest
    public = manifest.public_json()
    assert public["inputs"] == [i.to_json() for i in INPUTS]
    assert public["engines"] == ["litert"]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ((ModelInput("a", "float32", ("amount", "region", "rate")),), "exactly once"),
        ((*INPUTS, ModelInput("more", "float32", ("rate",))), "exactly once"),
        ((INPUTS[0], ModelInput("numbers", "int32", ("region", "product"))), "duplicate input"),
        ((INPUTS[0], ModelInput("codes", "uint8", ("region", "product"))), "supported: float32"),
        ((*INPUTS, ModelInput("empty", "float32", ())), "takes no features"),
    ],
)
def test_inconsistent_inputs_are_refused(inputs: tuple[ModelInput, ...], message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        two_input_manifest(inputs=inputs).check()


def test_integer_inputs_do_not_take_a_preprocessing_spec() -> None:
    loan = loan_manifest()
    half = len(loan.encoded_features) // 2
    inputs = (ModelInput("a", "float32", loan.encoded_features[:half]),
              ModelInput("b", "int32", loan.encoded_features[half:]))  # fmt: skip
    with pytest.raises(ManifestError, match="integer inputs take encoded records"):
        dataclasses.replace(loan, inputs=inputs).check()


def test_the_service_feeds_the_engine_one_array_per_input(tmp_path: Path) -> None:
    s3 = s3_holding(make_bundle(features=FEATURES, inputs=INPUTS))
    engine = FakeEngine()
    answer = make_service(s3, tmp_path, FakeEngineLoader(engine)).predict([record()])
    assert answer["predictions"][0]["label"] == "A"
    probe, fed = engine.calls
    assert {n: (a.shape, a.dtype.name) for n, a in probe.items()} == {
        "numbers": ((1, 2), "float32"), "codes": ((1, 2), "int32"),
    }  # fmt: skip
    assert fed["codes"].tolist() == [[3, 1]]


def test_a_bad_integer_is_refused_before_the_engine_runs(tmp_path: Path) -> None:
    s3 = s3_holding(make_bundle(features=FEATURES, inputs=INPUTS))
    engine = FakeEngine()
    service = make_service(s3, tmp_path, FakeEngineLoader(engine))
    with pytest.raises(InvalidRecords):
        service.predict([record(product=1.5)])
    assert len(engine.calls) == 1  # the load probe only
    assert make_store(s3, tmp_path).get().inputs.names == ["numbers", "codes"]
