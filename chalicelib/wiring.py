"""The one factory that reads settings and builds the service with its collaborators."""

from __future__ import annotations

import threading
from collections.abc import Callable

import boto3
from botocore.config import Config

from chalicelib.challenger import Challenger
from chalicelib.config import Settings
from chalicelib.observer import Observer, log_event
from chalicelib.refresh import RefreshSchedule
from chalicelib.service import PredictionService
from chalicelib.store import BundleLocation, ModelStore


def build_service(settings: Settings, observer: Observer = log_event) -> PredictionService:
    """Wire an S3 client with short timeouts, the model store (refreshing LATEST every
    `model_refresh_seconds`), the challenger if one is set, and the service; `observer`
    receives refresh and challenger events."""
    s3_client = boto3.client(
        "s3",
        config=Config(
            connect_timeout=settings.s3_connect_timeout,
            read_timeout=settings.s3_read_timeout,
            retries={"mode": "standard", "total_max_attempts": settings.s3_max_attempts},
        ),
    )
    location = BundleLocation(settings.model_bucket, settings.model_prefix, settings.model_version)
    seconds = settings.model_refresh_seconds
    store = ModelStore(
        s3_client,
        location,
        settings.engine,
        settings.cache_dir,
        max_deviations=settings.max_deviations,
        refresh=RefreshSchedule(seconds) if seconds > 0 else None,
        observer=observer,
    )
    challenger = None
    if settings.challenger_version is not None:
        pinned = BundleLocation(location.bucket, location.prefix, settings.challenger_version)
        challenger_store = ModelStore(
            s3_client, pinned, settings.engine, settings.cache_dir,
            max_deviations=settings.max_deviations, observer=observer,
        )  # fmt: skip
        challenger = Challenger(challenger_store, settings.challenger_sample, observer=observer)
    return PredictionService(store, settings.max_records, challenger)


class BuiltOnce:
    """Calls `build` on first use, once even when first uses are concurrent
    (`chalice local` serves requests on threads; each service loads its own model)."""

    def __init__(self, build: Callable[[], PredictionService]) -> None:
        self._build = build
        self._service: PredictionService | None = None
        self._lock = threading.Lock()

    def __call__(self) -> PredictionService:
        service = self._service
        if service is None:
            with self._lock:
                if self._service is None:
                    self._service = self._build()
                service = self._service
        return service

    def use(self, build: Callable[[], PredictionService]) -> None:
        """Build with `build` from now on; the next call builds anew."""
        with self._lock:
            self._build = build
            self._service = None

    def cache_clear(self) -> None:
        """Forget the service: the next call builds a new one (tests; a new environment)."""
        with self._lock:
            self._service = None


def _service_from_env() -> PredictionService:
    return build_service(Settings.from_env())


#: The container's service, built from the environment on first use.
get_service = BuiltOnce(_service_from_env)


def install_service(service: PredictionService | None) -> None:
    """Make get_service() answer `service` (tests, embedding); None restores the
    environment-built one. No patching of modules needed."""
    get_service.use(_service_from_env if service is None else (lambda: service))
