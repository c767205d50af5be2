"""Safe publishing on the in-memory S3: a model's prefix comes from its name, a stage
takes only its own model, versions are listed and LATEST is moved only to a version
that can be served; every refusal says what to do and changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.exceptions import NoCredentialsError

from chalicelib.bundle_layout import DEFAULT_PREFIX, BundleLayout, model_prefix
from modelops.bundle_admin import (
    BundleAdminError,
    check_publishable,
    format_listing,
    list_versions,
    promote,
)
from modelops.cli_errors import UserMistake, s3_mistake
from modelops.publish import upload_bundle
from modelops.publish_inputs import (
    check_model_file,
    read_features,
    read_labels,
    read_metrics,
    read_preprocessing,
)
from modelops.publish_target import resolve_target
from tests.fakes import FakeS3, client_error, connection_error, internal_error, make_bundle

BUCKET = "models"


def published(s3: FakeS3, name: str, *versions: str, prefix: str | None = None) -> str:
    """Upload `versions` of model `name` (the last one LATEST) where publish puts them."""
    prefix = model_prefix(name) if prefix is None else prefix
    s3.buckets.add(BUCKET)
    for version in versions:
        upload_bundle(make_bundle(name=name, version=version), s3, BUCKET, prefix)
    return prefix


# --- where a model goes ------------------------------------------------------------------


def test_a_models_prefix_is_derived_from_its_name() -> None:
    assert model_prefix("my-model") == "models/my-model"
    assert model_prefix("my-model", root="/teams/risk/") == "teams/risk/my-model"
    assert model_prefix("m", root="") == "m"
    assert model_prefix("loan-grade") == DEFAULT_PREFIX == BundleLayout().prefix


@pytest.mark.parametrize("name", ["", "a/b", "../a", "a b", ".hidden", "x" * 129])
def test_a_name_that_is_not_one_key_segment_has_no_prefix(name: str) -> None:
    with pytest.raises(ValueError, match="not one plain key segment"):
        model_prefix(name)
    with pytest.raises(UserMistake, match="not a valid model name"):
        resolve_target(stage=None, bucket=BUCKET, prefix=None, name=name)


def test_publishing_model_b_leaves_model_a_alone() -> None:
    s3 = FakeS3()
    a_prefix = published(s3, "a", "1")
    a_keys = {k: v for k, v in s3.objects.items() if k[1].startswith(a_prefix + "/")}
    target = resolve_target(stage=None, bucket=BUCKET, prefix=None, name="b")
    check_publishable(s3, target.bucket, target.prefix, name="b", version="1", overwrite=False)
    upload_bundle(make_bundle(name="b", version="1"), s3, target.bucket, target.prefix)
    assert target.prefix == "models/b"
    assert {k: v for k, v in s3.objects.items() if k[1].startswith(a_prefix + "/")} == a_keys
    assert s3.objects[(BUCKET, "models/b/LATEST")] == b"1"


def test_an_explicit_prefix_is_used_as_given() -> None:
    target = resolve_target(stage=None, bucket="b", prefix="/team/x/", name=None)
    assert (target.bucket, target.prefix, target.url) == ("b", "team/x", "s3://b/team/x/")


def test_a_bucket_alone_needs_a_name_or_a_prefix() -> None:
    with pytest.raises(UserMistake, match="needs --name"):
        resolve_target(stage=None, bucket="b", prefix=None, name=None)


def test_a_stage_takes_its_own_model() -> None:
    target = resolve_target(stage="prod", bucket=None, prefix=None, name="loan-grade")
    assert (target.bucket, target.prefix, target.name) == (
        "loan-models-prod",
        "models/loan-grade",
        "loan-grade",
    )


def test_a_stage_refuses_another_model_naming_both() -> None:
    with pytest.raises(UserMistake) as refused:
        resolve_target(stage="prod", bucket=None, prefix=None, name="my-model")
    message = str(refused.value)
    assert "stage prod serves model 'loan-grade'" in message and "not 'my-model'" in message
    assert "--bucket loan-models-prod --name my-model" in message


def test_an_unknown_stage_lists_the_known_ones() -> None:
    with pytest.raises(UserMistake, match=r"unknown stage 'staging'.*dev, prod"):
        resolve_target(stage="staging", bucket=None, prefix=None, name="loan-grade")


def test_a_stage_takes_no_prefix() -> None:
    with pytest.raises(UserMistake, match="--prefix goes with --bucket"):
        resolve_target(stage="dev", bucket=None, prefix="x", name="loan-grade")


# --- checks before converting -------------------------------------------------------------


def test_an_existing_version_is_refused_before_converting() -> None:
    s3 = FakeS3()
    prefix = published(s3, "a", "1")
    with pytest.raises(BundleAdminError, match=r"version 1 already exists .*--overwrite"):
        check_publishable(s3, BUCKET, prefix, name="a", version="1", overwrite=False)
    check_publishable(s3, BUCKET, prefix, name="a", version="1", overwrite=True)
    check_publishable(s3, BUCKET, prefix, name="a", version="2", overwrite=False)


def test_an_explicit_prefix_holding_another_model_is_refused() -> None:
    s3 = FakeS3()
    published(s3, "a", "1", prefix="shared")
    with pytest.raises(BundleAdminError, match=r"holds model 'a', not 'b'.*--name a"):
        check_publishable(s3, BUCKET, "shared", name="b", version="2", overwrite=True)


def test_a_bad_version_is_refused_without_asking_s3() -> None:
    s3 = FakeS3(buckets={BUCKET})
    with pytest.raises(BundleAdminError, match="not a valid name"):
        check_publishable(s3, BUCKET, "m", name="a", version="v 2/beta", overwrite=False)
    assert s3.calls == []


def test_a_missing_bucket_surfaces_before_converting() -> None:
    with pytest.raises(Exception) as raised:
        check_publishable(FakeS3(), "nope", "m", name="a", version="1", overwrite=False)
    assert s3_mistake(raised.value, "nope") == (
        "bucket nope does not exist: create it (aws s3 mb s3://nope) "
        "or choose another --bucket or --stage"
    )


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (NoCredentialsError(), "no AWS credentials found"),
        (connection_error(), "cannot reach S3"),
        (client_error("AccessDenied", 403, "GetObject"), "access to bucket b denied"),
        (client_error("InvalidAccessKeyId", 403, "GetObject"), "rejected your AWS credentials"),
    ],
)
def test_s3_mistakes_say_what_to_do(error: Exception, says: str) -> None:
    assert says in (s3_mistake(error, "b") or "")


def test_an_s3_fault_is_not_called_a_user_mistake() -> None:
    assert s3_mistake(internal_error(), "b") is None


# --- listing ----------------------------------------------------------------------------


def test_the_listing_shows_every_version_and_latest() -> None:
    s3 = FakeS3(page_size=2)  # several pages
    prefix = published(s3, "a", "1", "2", "10")
    upload_bundle(make_bundle(name="a", version="11"), s3, BUCKET, prefix, promote=False)
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/3/model.tflite", Body=b"partial")
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/4/manifest.json", Body=b"{not json")
    s3.put_object(Bucket=BUCKET, Key="models/a-other/1/manifest.json", Body=b"{}")
    listing = list_versions(s3, BUCKET, prefix)
    assert listing.latest == "10"
    assert [v.version for v in listing.versions] == ["3", "4", "1", "2", "10", "11"]
    by_version = {v.version: v for v in listing.versions}
    assert by_version["3"].problem == "no manifest (incomplete upload?)"
    assert by_version["4"].problem == "manifest malformed"
    assert by_version["1"].engines == ("litert",) and by_version["1"].problem is None
    files = [k for (_, k), _ in s3.objects.items() if k.startswith(f"{prefix}/1/")]
    assert by_version["1"].size == sum(len(s3.objects[(BUCKET, k)]) for k in files)
    table = format_listing(listing).splitlines()
    assert table[0] == "s3://models/models/a/  (LATEST -> 10)"
    assert table[1].split() == ["version", "created_at", "engines", "size"]
    assert [row.split()[:2] for row in table if row.startswith("*")] == [["*", "10"]]


def test_an_empty_prefix_lists_no_versions() -> None:
    listing = list_versions(FakeS3(buckets={BUCKET}), BUCKET, "models/none")
    assert listing.versions == () and listing.latest is None
    assert format_listing(listing) == "s3://models/models/none/: no versions"


# --- promoting (rollback) -----------------------------------------------------------------


def test_promote_moves_latest_back_to_an_existing_version() -> None:
    s3 = FakeS3()
    prefix = published(s3, "a", "1", "2")
    assert promote(s3, BUCKET, prefix, "1") == "2"
    assert s3.objects[(BUCKET, f"{prefix}/LATEST")] == b"1"


def latest_after_refusal(
    s3: FakeS3, prefix: str, version: str, match: str, name: str | None = None
) -> bytes:
    with pytest.raises(BundleAdminError, match=match):
        promote(s3, BUCKET, prefix, version, name)
    return s3.objects[(BUCKET, f"{prefix}/LATEST")]


def test_promote_refuses_a_missing_version() -> None:
    s3 = FakeS3()
    prefix = published(s3, "a", "1")
    assert latest_after_refusal(s3, prefix, "7", r"no version 7: .* does not exist") == b"1"


def test_promote_refuses_a_malformed_manifest() -> None:
    s3 = FakeS3()
    prefix = published(s3, "a", "1")
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/2/manifest.json", Body=b'{"format_version": 1}')
    assert latest_after_refusal(s3, prefix, "2", "is not a valid manifest") == b"1"


def test_promote_refuses_a_manifest_of_another_version() -> None:
    s3 = FakeS3()
    prefix = published(s3, "a", "1", "2")
    manifest = s3.objects[(BUCKET, f"{prefix}/1/manifest.json")]
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/3/manifest.json", Body=manifest)
    assert latest_after_refusal(s3, prefix, "3", "describes version '1', not '3'") == b"2"


def test_promote_refuses_another_models_version() -> None:
    s3 = FakeS3()
    prefix = published(s3, "a", "1")
    upload_bundle(make_bundle(name="b", version="2"), s3, BUCKET, prefix, promote=False)
    assert latest_after_refusal(s3, prefix, "2", "is model 'b', not 'a'") == b"1"
    assert latest_after_refusal(s3, prefix, "1", "is model 'a', not 'b'", name="b") == b"1"


def test_promote_refuses_a_version_with_a_missing_artifact() -> None:
    s3 = FakeS3()
    prefix = published(s3, "a", "1", "2")
    del s3.objects[(BUCKET, f"{prefix}/1/model.tflite")]
    assert latest_after_refusal(s3, prefix, "1", "model.tflite is missing") == b"2"


def test_promote_refuses_a_bad_version_name_without_asking_s3() -> None:
    s3 = FakeS3(buckets={BUCKET})
    with pytest.raises(BundleAdminError, match="not a valid name"):
        promote(s3, BUCKET, "m", "../1")
    assert s3.calls == []


# --- local inputs -------------------------------------------------------------------------


def test_labels_from_a_file_or_a_list(tmp_path: Path) -> None:
    (tmp_path / "labels.json").write_text('["good", "bad"]')
    assert read_labels(str(tmp_path / "labels.json")) == ["good", "bad"]
    assert read_labels(" good, bad ") == ["good", "bad"]
    assert read_labels(None) is None


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "no such file"),
        ("{oops", "not valid JSON (line 1 column 2"),
        (b"\xff\xfe", "not valid JSON (not UTF-8 text)"),
        ('{"a": 1}', "must hold a JSON list of names"),
    ],
)
def test_bad_labels_files(tmp_path: Path, content: str | bytes | None, says: str) -> None:
    path = tmp_path / "labels.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(UserMistake) as refused:
        read_labels(str(path))
    assert str(refused.value).startswith(f"--labels {path}: {says}")


def test_bad_preprocessing_features_and_metrics(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"numeric": [{"name": "a", "mean": 0, "std": 0}]}))
    with pytest.raises(UserMistake, match=r"--preprocessing .*malformed preprocessing spec"):
        read_preprocessing(str(path))
    path.write_text('{"numeric": [{"name": "a", "mean": 0, "std": 0}], "categorical": []}')
    with pytest.raises(UserMistake, match="needs a finite mean and a finite std > 0"):
        read_preprocessing(str(path))
    with pytest.raises(UserMistake, match=r"--features .*must hold a JSON list of names"):
        read_features(str(path))
    path.write_text("[1, 2]")
    with pytest.raises(UserMistake, match=r"--metrics .*must hold a JSON object"):
        read_metrics(str(path))


def test_the_model_file_must_exist_and_be_keras(tmp_path: Path) -> None:
    with pytest.raises(UserMistake, match="no such file"):
        check_model_file(tmp_path / "model.keras")
    (tmp_path / "model.onnx").write_bytes(b"x")
    with pytest.raises(UserMistake, match=r"not a Keras model file; save it as \.keras or \.h5"):
        check_model_file(tmp_path / "model.onnx")
    (tmp_path / "model.h5").write_bytes(b"x")
    check_model_file(tmp_path / "model.h5")
