"""The one factory that reads settings and builds the service with its collaborators."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from botocore.config import Config
from botocore.session import Session, get_session

from chalicelib.botocore_data import use_named_services_loader
from chalicelib.bundle_layout import FOLLOW_LATEST
from chalicelib.config import APP_NAME, Settings
from chalicelib.errors import ModelCorrupt, ModelNotFound
from chalicelib.observability import MetricWriter, Telemetry
from chalicelib.observability.emf import Sink, stdout_sink
from chalicelib.observability.rollout import RolloutMetrics
from chalicelib.observer import Observer
from chalicelib.refresh import RefreshSchedule
from chalicelib.service import PredictionService
from chalicelib.store import BundleLocation, ModelStore
from chalicelib.version_pointer import PointerMalformed, PointerMissing, read_latest

#: The Service dimension of every metric (the Chalice app's name).
SERVICE_NAME = APP_NAME

#: Every AWS service this app makes clients for (the session's loader knows only these).
CLIENT_SERVICES = ("s3", "sqs")

if TYPE_CHECKING:
    from chalicelib.batch import BatchJobs


def build_service(settings: Settings, events: Observer | None = None) -> PredictionService:
    """Wire an S3 client with short timeouts, telemetry, the model store (refreshing LATEST
    every `model_refresh_seconds`), the challenger if one is set, and the service; refresh
    and challenger events go to `events` (default: EMF lines on stdout)."""
    s3_client = _client(
        "s3",
        config=Config(
            connect_timeout=settings.s3_connect_timeout,
            read_timeout=settings.s3_read_timeout,
            retries={"mode": "standard", "total_max_attempts": settings.s3_max_attempts},
        ),
    )
    location = BundleLocation(settings.model_bucket, settings.model_prefix, settings.model_version)
    telemetry = build_telemetry(settings)
    events = events or RolloutMetrics(
        MetricWriter(settings.metrics_namespace), SERVICE_NAME, settings.stage
    )
    seconds = settings.model_refresh_seconds
    store = ModelStore(
        s3_client,
        location,
        settings.engine,
        settings.cache_dir,
        max_deviations=settings.max_deviations,
        observer=telemetry,
        refresh=RefreshSchedule(seconds) if seconds > 0 else None,
        events=events,
    )
    challenger = None
    if settings.challenger_version is not None:
        from chalicelib.challenger import Challenger

        # Its own store, without the load observer: the champion's loads set the
        # request metrics' Version dimension; the challenger's events carry both.
        pinned = BundleLocation(location.bucket, location.prefix, settings.challenger_version)
        challenger_store = ModelStore(
            s3_client, pinned, settings.engine, settings.cache_dir,
            max_deviations=settings.max_deviations, events=events,
        )  # fmt: skip
        challenger = Challenger(challenger_store, settings.challenger_sample, observer=events)
    return PredictionService(store, settings.max_records, telemetry, challenger)


def _client(service: str, config: Config | None = None) -> Any:
    """A botocore client, as `boto3.client` makes it (same environment, credentials and
    endpoint settings) without importing boto3: its s3transfer and multiprocessing
    imports cost ~25 ms of CPU per cold start, and nothing here uses what it adds. Its
    models are read by chalicelib.botocore_data's loader (~55 ms less CPU per cold start)."""
    global _SESSION
    if _SESSION is None:
        _SESSION = use_named_services_loader(get_session(), CLIENT_SERVICES)
    return _SESSION.create_client(service, config=config)


_SESSION: Session | None = None


def build_telemetry(settings: Settings, sink: Sink = stdout_sink) -> Telemetry:
    """EMF metrics to `sink` (stdout: Lambda forwards it to CloudWatch Logs)."""
    sampler = None
    if settings.prediction_log_sample > 0:
        from chalicelib.observability.sampling import PredictionSampler

        sampler = PredictionSampler(
            settings.prediction_log_sample, settings.prediction_log_key.encode()
        )
    writer = MetricWriter(settings.metrics_namespace, sink)
    return Telemetry(writer, SERVICE_NAME, settings.stage, sampler)


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


def build_batch_jobs(settings: Settings) -> BatchJobs:
    """The batch path: S3 with read timeouts for multi-megabyte ranges, SQS, the
    container's service for "the current version", one service per pinned version, the
    stage's challenger version (every row of a job) and batch metrics on stdout."""
    from chalicelib.batch import BatchJobs, ServicesByVersion
    from chalicelib.observability.batch import BatchMetrics

    s3 = _client("s3", config=Config(retries={"mode": "standard", "total_max_attempts": 3}))
    return BatchJobs(
        s3,
        _client("sqs"),
        settings.batch,
        functools.partial(current_version, s3, settings),
        ServicesByVersion(lambda version: build_service(replace(settings, model_version=version))),
        challenger_version=settings.challenger_version,
        metrics=BatchMetrics(
            MetricWriter(settings.metrics_namespace), SERVICE_NAME, settings.stage
        ),
        telemetry=build_telemetry(settings),
    )


def current_version(s3: Any, settings: Settings) -> str:
    """The version a job starting now pins: the configured one, or LATEST read afresh
    (a warm container's loaded model may be older)."""
    if settings.model_version != FOLLOW_LATEST:
        return settings.model_version
    location = BundleLocation(settings.model_bucket, settings.model_prefix)
    try:
        pointer = read_latest(s3, location.bucket, location.layout)
    except PointerMissing as exc:
        raise ModelNotFound("The model's version pointer was not found.") from exc
    except PointerMalformed as exc:
        raise ModelCorrupt("The model's version pointer is malformed.") from exc
    assert pointer is not None  # an unconditional read has a body
    return pointer.version


@functools.cache
def get_batch_jobs() -> BatchJobs:
    """The container's batch jobs, built from the environment on first use."""
    return build_batch_jobs(Settings.from_env())
