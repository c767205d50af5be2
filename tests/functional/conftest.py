"""Fixtures for store-level tests: a built bundle that can be uploaded anywhere."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from chalicelib.config import Settings
from chalicelib.manifest import PreprocessingSpec
from chalicelib.service import PredictionService
from chalicelib.wiring import build_service, get_service
from deployment.stages import stage_environment
from localdev.servers import MotoServer
from modelops.publish import BuiltBundle, build_bundle, upload_bundle
from tests.conftest import PublishedModel


@pytest.fixture(scope="session")
def bundle(published: PublishedModel) -> BuiltBundle:
    model_dir = published.model_dir
    return build_bundle(
        model_dir / "model.keras",
        name="loan-grade",
        version="7",
        labels=json.loads((model_dir / "labels.json").read_text()),
        preprocessing=PreprocessingSpec.from_json(
            json.loads((model_dir / "preprocessing.json").read_text())
        ),
    )


@pytest.fixture
def fresh_bucket(s3_server: MotoServer) -> str:
    name = f"test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture
def upload(bundle: BuiltBundle) -> Callable[[str, str], None]:
    def _upload(bucket: str, prefix: str) -> None:
        upload_bundle(bundle, boto3.client("s3"), bucket, prefix, overwrite=True)

    return _upload


@pytest.fixture
def service_for(tmp_path: Path) -> Callable[..., PredictionService]:
    """A service wired exactly as in Lambda, for any bucket/prefix/version/engine."""

    def _service(
        bucket: str, prefix: str = "m", version: str = "latest", **kw: Any
    ) -> PredictionService:
        settings = Settings(
            model_bucket=bucket,
            model_prefix=prefix,
            model_version=version,
            cache_dir=str(tmp_path / "cache"),
            **kw,
        )
        return build_service(settings)

    return _service


Handler = Any  # the Chalice app, called as Lambda calls it: app(event, context)


@pytest.fixture
def handler(
    published: PublishedModel, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Handler]:
    """The Chalice app as Lambda calls it, configured like the dev stage."""
    from app import app

    for name, value in stage_environment("dev").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MODEL_CACHE_DIR", str(tmp_path))
    get_service.cache_clear()
    yield app
    get_service.cache_clear()
