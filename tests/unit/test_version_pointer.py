"""LATEST has one reader and one writer (chalicelib.version_pointer), and "missing or
forbidden" one answer (chalicelib.s3_errors): the writer refuses a version whose request
contract differs from the serving one's unless told to; publish and promote say what to
pass in one line and change nothing."""

from __future__ import annotations

import pytest

from chalicelib.bundle_layout import BundleLayout
from chalicelib.manifest import ModelInput
from chalicelib.s3_errors import absence, is_missing, is_not_modified
from chalicelib.version_pointer import (
    ContractChange,
    PointerMalformed,
    PointerMissing,
    contract_changes,
    latest_version,
    point_latest,
    read_latest,
)
from modelops.bundle_admin import BundleAdminError, promote
from modelops.publish import upload_bundle
from tests.fakes import FakeS3, client_error, internal_error, make_bundle

BUCKET = "models"
PREFIX = "models/a"
LAYOUT = BundleLayout(PREFIX)


def s3_with(*bundles: object) -> FakeS3:
    s3 = FakeS3(buckets={BUCKET})
    for bundle in bundles:
        upload_bundle(bundle, s3, BUCKET, PREFIX, allow_contract_change=True)  # type: ignore[arg-type]
    return s3


def latest(s3: FakeS3) -> bytes:
    return bytes(s3.get_object(Bucket=BUCKET, Key=LAYOUT.pointer_key())["Body"].read())


# --- missing or forbidden -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (client_error("NoSuchKey", 404, "GetObject"), "missing"),
        (client_error("404", 404, "HeadObject"), "missing"),
        (client_error("AccessDenied", 403, "GetObject"), "forbidden"),
        (client_error("403", 403, "HeadObject"), "forbidden"),
        (client_error("NoSuchBucket", 404, "GetObject"), None),
        (internal_error(), None),
        (ValueError("not S3"), None),
    ],
)
def test_one_function_says_missing_or_forbidden(error: Exception, kind: str | None) -> None:
    assert absence(error) == kind
    assert is_missing(error) == (kind is not None)
    assert not is_not_modified(error)


# --- the reader ---------------------------------------------------------------------------


def test_the_reader_gives_the_version_and_a_conditional_read_none_when_unchanged() -> None:
    s3 = s3_with(make_bundle(name="a", version="1"))
    pointer = read_latest(s3, BUCKET, LAYOUT)
    assert pointer is not None and pointer.version == "1" and pointer.etag
    assert read_latest(s3, BUCKET, LAYOUT, pointer.etag) is None
    assert latest_version(s3, BUCKET, LAYOUT) == "1"


@pytest.mark.parametrize("status", ["missing", "forbidden"])
def test_no_latest_is_missing_whether_s3_says_404_or_403(status: str) -> None:
    s3 = FakeS3(buckets={BUCKET})
    if status == "forbidden":
        s3.fail(client_error("AccessDenied", 403, "GetObject"))
    with pytest.raises(PointerMissing):
        read_latest(s3, BUCKET, LAYOUT)
    assert latest_version(FakeS3(buckets={BUCKET}), BUCKET, LAYOUT) is None


def test_a_malformed_pointer_is_refused_by_the_reader_and_shown_by_the_tools() -> None:
    s3 = FakeS3(buckets={BUCKET})
    s3.put_object(Bucket=BUCKET, Key=LAYOUT.pointer_key(), Body=b"../1")
    with pytest.raises(PointerMalformed):
        read_latest(s3, BUCKET, LAYOUT)
    assert latest_version(s3, BUCKET, LAYOUT) == "../1"


def test_other_s3_errors_pass_through_the_reader() -> None:
    s3 = FakeS3(buckets={BUCKET})
    s3.fail(internal_error())
    with pytest.raises(Exception) as raised:
        read_latest(s3, BUCKET, LAYOUT)
    assert not isinstance(raised.value, PointerMissing)


# --- the request contract -------------------------------------------------------------------

TWO_INPUTS = (ModelInput("a", "float32", ("x0", "x1")), ModelInput("b", "int32", ("x2", "x3")))


@pytest.mark.parametrize(
    ("candidate", "says"),
    [
        (make_bundle(name="a", version="2", task="regression", labels=(), outputs=("y",)),
         "task classification -> regression"),
        (make_bundle(name="a", version="2", features=("x0", "x1", "x2")),
         "inputs [input float32x4] -> [input float32x3]"),
        (make_bundle(name="a", version="2", inputs=TWO_INPUTS),
         "inputs [input float32x4] -> [a float32x2, b int32x2]"),
        (make_bundle(name="a", version="2", features=("x0", "x1", "x2", "y3")),
         "encoded features (4 -> 4, names or order differ)"),
    ],
)  # fmt: skip
def test_a_contract_change_is_named(candidate: object, says: str) -> None:
    serving = make_bundle(name="a", version="1").manifest
    assert says in contract_changes(serving, candidate.manifest)  # type: ignore[attr-defined]


def test_same_contract_other_labels_or_weights_is_no_change() -> None:
    serving = make_bundle(name="a", version="1").manifest
    retrained = make_bundle(name="a", version="2", labels=("A", "B", "Z"),
                            artifacts={"litert": b"other weights"})  # fmt: skip
    assert contract_changes(serving, retrained.manifest) == []


# --- the writer -----------------------------------------------------------------------------


def test_the_writer_refuses_a_contract_change_unless_allowed() -> None:
    s3 = s3_with(make_bundle(name="a", version="1"))
    other = make_bundle(name="a", version="2", task="regression", labels=(), outputs=("y",))
    upload_bundle(other, s3, BUCKET, PREFIX, promote=False)
    with pytest.raises(ContractChange) as refused:
        point_latest(s3, BUCKET, LAYOUT, other.manifest)
    assert (refused.value.serving, refused.value.version) == ("1", "2")
    assert latest(s3) == b"1"
    assert point_latest(s3, BUCKET, LAYOUT, other.manifest, allow_contract_change=True) == "1"
    assert latest(s3) == b"2"


def test_the_writer_moves_latest_when_the_contract_is_kept_or_nothing_serves() -> None:
    s3 = FakeS3(buckets={BUCKET})
    first = make_bundle(name="a", version="1")
    upload_bundle(first, s3, BUCKET, PREFIX, promote=False)
    assert point_latest(s3, BUCKET, LAYOUT, first.manifest) is None
    second = make_bundle(name="a", version="2", labels=("A", "B", "Z"))
    upload_bundle(second, s3, BUCKET, PREFIX)
    assert latest(s3) == b"2"


def test_publish_refuses_a_contract_change_before_uploading_anything() -> None:
    s3 = s3_with(make_bundle(name="a", version="1"))
    other = make_bundle(name="a", version="2", features=("x0", "x1", "x2"))
    with pytest.raises(BundleAdminError) as refused:
        upload_bundle(other, s3, BUCKET, PREFIX)
    message = str(refused.value)
    assert message.startswith("version 2 changes the request contract of the serving version 1")
    assert "pass --allow-contract-change" in message and "--no-promote" in message
    assert not any(key.startswith(f"{PREFIX}/2/") for _, key in s3.objects)
    assert latest(s3) == b"1"
    upload_bundle(other, s3, BUCKET, PREFIX, allow_contract_change=True)
    assert latest(s3) == b"2"


def test_promote_refuses_a_contract_change_unless_allowed() -> None:
    s3 = s3_with(make_bundle(name="a", version="1"))
    upload_bundle(make_bundle(name="a", version="2", inputs=TWO_INPUTS), s3, BUCKET, PREFIX,
                  promote=False)  # fmt: skip
    with pytest.raises(BundleAdminError, match="pass --allow-contract-change"):
        promote(s3, BUCKET, PREFIX, "2")
    assert latest(s3) == b"1"
    assert promote(s3, BUCKET, PREFIX, "2", allow_contract_change=True) == "1"
    assert latest(s3) == b"2"


def test_dropping_raw_records_is_a_contract_change_and_adding_them_is_not() -> None:
    from dataclasses import replace

    from tests.unit.schema_fixtures import loan_manifest

    raw, encoded_only = loan_manifest(), loan_manifest(with_preprocessing=False)
    assert contract_changes(raw, replace(encoded_only, version="2")) == [
        "raw records: no raw records"
    ]
    assert contract_changes(encoded_only, replace(raw, version="2")) == []
