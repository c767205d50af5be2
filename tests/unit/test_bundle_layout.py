"""One bundle layout: what the publisher writes is what the store reads, under any prefix."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from chalicelib.bundle_layout import DEFAULT_PREFIX, BundleLayout, is_version_name
from chalicelib.config import Settings
from chalicelib.engines import load_engine
from modelops.publish import PublishError, main, upload_bundle
from tests.fakes import FakeS3, make_bundle, make_store, tiny_expected, tiny_litert_bundle

BUCKET = "models"


@pytest.mark.parametrize("prefix", ["teams/risk/loan-grade", "/edge/", ""])
def test_a_bundle_the_publisher_writes_is_read_by_the_store(prefix: str, tmp_path: Path) -> None:
    s3 = FakeS3(buckets={BUCKET})
    bundle = tiny_litert_bundle(version="3")
    url = upload_bundle(bundle, s3, BUCKET, prefix)
    base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    assert url == f"s3://{BUCKET}/{base}3/"
    assert s3.keys(BUCKET) == {f"{base}3/model.tflite", f"{base}3/manifest.json", f"{base}LATEST"}
    assert s3.objects[(BUCKET, f"{base}LATEST")] == b"3"
    for version in ("latest", "3"):
        store = make_store(s3, tmp_path, load_engine, prefix=prefix, version=version)
        loaded = store.get()
        assert loaded.manifest == bundle.manifest
        expected = tiny_expected()
        got = loaded.engine.predict({"input": np.asarray(expected["inputs"], dtype=np.float32)})
        assert np.abs(got - np.asarray(expected["probabilities"])).max() <= 1e-5


def test_publishing_without_promotion_leaves_latest_alone(tmp_path: Path) -> None:
    s3 = FakeS3(buckets={BUCKET})
    upload_bundle(make_bundle(version="1"), s3, BUCKET, DEFAULT_PREFIX)
    upload_bundle(make_bundle(version="2"), s3, BUCKET, DEFAULT_PREFIX, promote=False)
    assert make_store(s3, tmp_path, prefix=DEFAULT_PREFIX).get().manifest.version == "1"
    pinned = make_store(s3, tmp_path, prefix=DEFAULT_PREFIX, version="2")
    assert pinned.get().manifest.version == "2"


def test_an_existing_version_is_replaced_only_when_asked() -> None:
    s3 = FakeS3(buckets={BUCKET})
    upload_bundle(make_bundle(version="1"), s3, BUCKET, "m")
    newer = make_bundle(version="1", labels=("X", "Y", "Z"))
    with pytest.raises(PublishError, match="already exists"):
        upload_bundle(newer, s3, BUCKET, "m")
    upload_bundle(newer, s3, BUCKET, "m", overwrite=True)
    assert b'"X"' in s3.objects[(BUCKET, "m/1/manifest.json")]


@pytest.mark.parametrize("version", ["", "latest", "../1", "a/b", "a b", ".hidden", "x" * 129])
def test_the_publisher_refuses_a_version_the_store_could_not_read(version: str) -> None:
    s3 = FakeS3(buckets={BUCKET})
    bundle = make_bundle()
    bundle = dataclasses.replace(
        bundle, manifest=dataclasses.replace(bundle.manifest, version=version)
    )
    with pytest.raises(PublishError, match="is not a valid name"):
        upload_bundle(bundle, s3, BUCKET, "m")
    assert s3.objects == {}


def test_the_cli_refuses_a_bad_version_before_converting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--model", "missing.keras", "--name", "n", "--version", "../1", "--bucket", "b"]
    assert main(argv) == 2
    assert "version '../1' is not a valid name" in capsys.readouterr().err


@pytest.mark.parametrize("version", ["1", "2026-11-25", "v1.2_rc-3", "x" * 128])
def test_version_names(version: str) -> None:
    assert is_version_name(version)


def test_keys_under_a_prefix_and_at_the_root() -> None:
    assert BundleLayout("/a/b/").manifest_key("7") == "a/b/7/manifest.json"
    assert BundleLayout("a/b").file_key("7", "model.tflite") == "a/b/7/model.tflite"
    assert BundleLayout("a/b").pointer_key() == "a/b/LATEST"
    assert BundleLayout("").manifest_key("7") == "7/manifest.json"
    assert BundleLayout("").pointer_key() == "LATEST"


def test_one_default_prefix() -> None:
    assert Settings(model_bucket="b").model_prefix == DEFAULT_PREFIX == BundleLayout().prefix
