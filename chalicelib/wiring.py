"""The one factory that reads settings and builds the service with its collaborators."""

from __future__ import annotations

import functools
from collections.abc import Callable

import boto3
from botocore.config import Config

from chalicelib.config import Settings
from chalicelib.service import PredictionService
from chalicelib.store import BundleLocation, ModelStore


def build_service(settings: Settings) -> PredictionService:
    """Wire an S3 client with short timeouts, the model store and the service."""
    s3_client = boto3.client(
        "s3",
        config=Config(
            connect_timeout=settings.s3_connect_timeout,
            read_timeout=settings.s3_read_timeout,
            retries={"mode": "standard", "total_max_attempts": settings.s3_max_attempts},
        ),
    )
    location = BundleLocation(settings.model_bucket, settings.model_prefix, settings.model_version)
    store = ModelStore(s3_client, location, settings.engine, settings.cache_dir)
    return PredictionService(store, settings.max_records)


def _service_from_env() -> PredictionService:
    return build_service(Settings.from_env())


_make_service: Callable[[], PredictionService] = _service_from_env


@functools.cache
def get_service() -> PredictionService:
    """The container's service, built from the environment on first use."""
    return _make_service()


def install_service(service: PredictionService | None) -> None:
    """Make get_service() answer `service` (tests, embedding); None restores the
    environment-built one. No patching of modules needed."""
    global _make_service
    _make_service = _service_from_env if service is None else (lambda: service)
    get_service.cache_clear()
