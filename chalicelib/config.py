"""Service configuration: read from the environment once, in this module only.

Chalice sets the variables per stage from `.chalice/config.json`. Resolution is
"environment variable > default"; everything else receives a `Settings`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from chalicelib.bundle_layout import DEFAULT_PREFIX, FOLLOW_LATEST, is_version_name
from chalicelib.engines.registry import ENGINES

MODEL_BUCKET = "MODEL_BUCKET"
MODEL_PREFIX = "MODEL_PREFIX"
MODEL_VERSION = "MODEL_VERSION"
MODEL_ENGINE = "MODEL_ENGINE"
MODEL_CACHE_DIR = "MODEL_CACHE_DIR"
MAX_RECORDS = "MAX_RECORDS"
MAX_DEVIATIONS = "MAX_DEVIATIONS"
S3_CONNECT_TIMEOUT = "S3_CONNECT_TIMEOUT"
S3_READ_TIMEOUT = "S3_READ_TIMEOUT"
S3_MAX_ATTEMPTS = "S3_MAX_ATTEMPTS"
MODEL_REFRESH_SECONDS = "MODEL_REFRESH_SECONDS"
CHALLENGER_VERSION = "CHALLENGER_VERSION"
CHALLENGER_SAMPLE = "CHALLENGER_SAMPLE"
STAGE = "STAGE"
METRICS_NAMESPACE = "METRICS_NAMESPACE"
PREDICTION_LOG_SAMPLE = "PREDICTION_LOG_SAMPLE"
PREDICTION_LOG_KEY = "PREDICTION_LOG_KEY"
BATCH_BUCKET = "BATCH_BUCKET"
BATCH_INPUT_PREFIX = "BATCH_INPUT_PREFIX"
BATCH_OUTPUT_PREFIX = "BATCH_OUTPUT_PREFIX"
BATCH_CHUNK_QUEUE = "BATCH_CHUNK_QUEUE"
BATCH_DEAD_LETTER_QUEUE = "BATCH_DEAD_LETTER_QUEUE"
BATCH_EVENTS_QUEUE = "BATCH_EVENTS_QUEUE"
BATCH_ROWS_PER_CHUNK = "BATCH_ROWS_PER_CHUNK"
BATCH_PREDICT_ROWS = "BATCH_PREDICT_ROWS"
BATCH_WORKER_BATCH_SIZE = "BATCH_WORKER_BATCH_SIZE"
BATCH_WORKER_CONCURRENCY = "BATCH_WORKER_CONCURRENCY"
API_AUTH = "API_AUTH"

# The Chalice app's name: app.py's, the metrics' Service dimension, the V2 server name.
# `.chalice/config.json`'s app_name (which names the AWS resources) must equal it
# (deployment.stages checks before any deploy or package).
APP_NAME = "keras-model-serving"

# The batch path's SQS handlers, as app.py registers them (`name=`) and deployment sizes
# them: Chalice names each function `<app>-<stage>-<handler>`.
CHUNK_HANDLER = "score_batch_chunks"
DEAD_LETTER_HANDLER = "fail_batch_chunks"
EVENTS_HANDLER = "start_batch_jobs"
# Messages per invocation of the dead-letter and input-events handlers (the chunk
# handler's is BATCH_WORKER_BATCH_SIZE): a dead letter is one marker write; an input
# event is a whole split.
DEAD_LETTER_BATCH_SIZE = 10
EVENTS_BATCH_SIZE = 1

# Who may call the REST API, per stage (API Gateway enforces it, not the function):
# `iam` (SigV4-signed requests), `api_key` (x-api-key, usage plan) or `none`. Which
# routes stay public is the HTTP surface's business (chalicelib.surfaces.routes).
AUTH_MODES = ("iam", "api_key", "none")
# Unset means `iam`: a stage or a bare `chalice deploy` that forgets the setting is closed.
DEFAULT_AUTH = "iam"


class ConfigurationError(ValueError):
    """A setting is missing or malformed (a deployment mistake, not a client's)."""


@dataclass(frozen=True)
class Settings:
    """Where the model bundle lives and how the service runs."""

    model_bucket: str
    model_prefix: str = DEFAULT_PREFIX
    model_version: str = FOLLOW_LATEST
    engine: str = "litert"
    cache_dir: str = "/tmp/model-cache"
    max_records: int = 1000
    # botocore's defaults are 60 s each; a stalled S3 must fail well inside
    # Lambda's 10 s init budget: 2 attempts x (1 s connect + 2 s read) + backoff.
    s3_connect_timeout: float = 1.0
    s3_read_timeout: float = 2.0
    s3_max_attempts: int = 2
    # Inputs further than this many training standard deviations from the training
    # mean are refused (422): far outside what the model saw, its score means nothing.
    max_deviations: float = 1000.0
    # How often a warm container re-reads LATEST (conditional GET); 0: never.
    model_refresh_seconds: float = 60.0
    # A pinned version that shadow-scores a fraction of requests (None: no challenger).
    # Sampled requests wait for it (Lambda returns after the handler): keep it small.
    challenger_version: str | None = None
    challenger_sample: float = 0.05
    # Metrics and logs: the Stage dimension, the CloudWatch namespace, and the optional
    # sampled prediction log (a fraction of requests; off unless a key is set too).
    stage: str = "local"
    metrics_namespace: str = "KerasModelServing"
    prediction_log_sample: float = 0.0
    prediction_log_key: str = field(default="", repr=False)
    # Batch jobs use the model's bucket unless told otherwise.
    batch: BatchSettings = field(default_factory=lambda: BatchSettings(""))

    def __post_init__(self) -> None:
        if not self.batch.bucket:
            object.__setattr__(self, "batch", replace(self.batch, bucket=self.model_bucket))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from environment variables (default: os.environ)."""
        env = os.environ if environ is None else environ
        bucket = env.get(MODEL_BUCKET, "").strip()
        if not bucket:
            raise ConfigurationError(f"{MODEL_BUCKET} is not set")
        engine = env.get(MODEL_ENGINE, cls.engine).strip().lower()
        if engine not in ENGINES:
            raise ConfigurationError(f"{MODEL_ENGINE} must be one of {', '.join(ENGINES)}")
        return cls(
            model_bucket=bucket,
            model_prefix=env.get(MODEL_PREFIX, cls.model_prefix).strip("/"),
            model_version=env.get(MODEL_VERSION, cls.model_version).strip() or FOLLOW_LATEST,
            engine=engine,
            cache_dir=env.get(MODEL_CACHE_DIR, cls.cache_dir),
            max_records=_positive(env, MAX_RECORDS, cls.max_records, int),
            s3_connect_timeout=_positive(env, S3_CONNECT_TIMEOUT, cls.s3_connect_timeout, float),
            s3_read_timeout=_positive(env, S3_READ_TIMEOUT, cls.s3_read_timeout, float),
            s3_max_attempts=_positive(env, S3_MAX_ATTEMPTS, cls.s3_max_attempts, int),
            max_deviations=_positive(env, MAX_DEVIATIONS, cls.max_deviations, float),
            model_refresh_seconds=_non_negative(
                env, MODEL_REFRESH_SECONDS, cls.model_refresh_seconds
            ),
            challenger_version=_challenger_version(env),
            challenger_sample=_fraction(env, CHALLENGER_SAMPLE, cls.challenger_sample),
            stage=env.get(STAGE, "").strip() or cls.stage,
            metrics_namespace=env.get(METRICS_NAMESPACE, "").strip() or cls.metrics_namespace,
            **_prediction_log(env),
            batch=BatchSettings.from_env(env),
        )


def _challenger_version(env: Mapping[str, str]) -> str | None:
    version = env.get(CHALLENGER_VERSION, "").strip()
    if not version:
        return None
    if not is_version_name(version):
        raise ConfigurationError(
            f"{CHALLENGER_VERSION} must name one published version (not latest)"
        )
    return version


def _non_negative(env: Mapping[str, str], name: str, default: float) -> float:
    value = _number(env, name, default)
    if not value >= 0:  # also refuses NaN
        raise ConfigurationError(f"{name} must be 0 or more")
    return value


def _fraction(env: Mapping[str, str], name: str, default: float) -> float:
    value = _number(env, name, default)
    if not 0 <= value <= 1:
        raise ConfigurationError(f"{name} must be a fraction from 0 to 1")
    return value


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be a number") from exc


def _prediction_log(env: Mapping[str, str]) -> dict[str, Any]:
    """PREDICTION_LOG_SAMPLE in [0, 1]; sampling is refused without PREDICTION_LOG_KEY."""
    raw = env.get(PREDICTION_LOG_SAMPLE, "").strip()
    try:
        rate = float(raw) if raw else 0.0
    except ValueError as exc:
        raise ConfigurationError(f"{PREDICTION_LOG_SAMPLE} must be a number") from exc
    if not 0.0 <= rate <= 1.0:  # also refuses NaN
        raise ConfigurationError(f"{PREDICTION_LOG_SAMPLE} must be between 0 and 1")
    key = env.get(PREDICTION_LOG_KEY, "")
    if rate > 0 and len(key) < 16:
        raise ConfigurationError(
            f"{PREDICTION_LOG_SAMPLE} needs {PREDICTION_LOG_KEY} (at least 16 characters): "
            "records are logged only as keyed hashes"
        )
    return {"prediction_log_sample": rate, "prediction_log_key": key}


def api_auth(environ: Mapping[str, str] | None = None) -> str:
    """The stage's API_AUTH (one of AUTH_MODES; DEFAULT_AUTH when unset)."""
    env = os.environ if environ is None else environ
    mode = env.get(API_AUTH, "").strip().lower() or DEFAULT_AUTH
    if mode not in AUTH_MODES:
        raise ConfigurationError(f"{API_AUTH} must be one of {', '.join(AUTH_MODES)}")
    return mode


@dataclass(frozen=True)
class BatchQueues:
    """The batch path's SQS queues, as the stage declares them in its own
    environment_variables (empty names: it declares none), and how workers take chunks."""

    chunks: str = ""
    dead_letters: str = ""
    input_events: str = ""
    # Chunk messages per worker invocation; each is scored in turn.
    worker_batch_size: int = 1
    # The event source mapping's maximum concurrency (2-1000): caps parallel workers.
    worker_concurrency: int = 100

    @property
    def declared(self) -> bool:
        """All three queues are named: the stage has a batch path."""
        return all((self.chunks, self.dead_letters, self.input_events))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BatchQueues:
        env = os.environ if environ is None else environ
        return cls(
            chunks=env.get(BATCH_CHUNK_QUEUE, "").strip(),
            dead_letters=env.get(BATCH_DEAD_LETTER_QUEUE, "").strip(),
            input_events=env.get(BATCH_EVENTS_QUEUE, "").strip(),
            worker_batch_size=_positive(env, BATCH_WORKER_BATCH_SIZE, cls.worker_batch_size, int),
            worker_concurrency=_positive(
                env, BATCH_WORKER_CONCURRENCY, cls.worker_concurrency, int
            ),
        )


QUEUE_VARIABLES = (BATCH_CHUNK_QUEUE, BATCH_DEAD_LETTER_QUEUE, BATCH_EVENTS_QUEUE)


@dataclass(frozen=True)
class Registration:
    """What app.py registers with Chalice, read once when app.py is imported.

    Chalice applies the stage's `environment_variables` before it imports app.py, in
    `chalice deploy`, `chalice package` and `chalice local` as in Lambda, so the stage's
    own configuration decides: which routes need IAM or an API key (API_AUTH), and
    whether the batch handlers subscribe to queues (only when the stage names all three;
    Chalice subscribes functions to queues but creates none).
    """

    auth: str
    batch: BatchQueues | None  # None: the stage declares no batch path

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Registration:
        env = os.environ if environ is None else environ
        queues = BatchQueues.from_env(env)
        missing = [name for name in QUEUE_VARIABLES if not env.get(name, "").strip()]
        if 0 < len(missing) < len(QUEUE_VARIABLES):
            raise ConfigurationError(
                f"{', '.join(missing)} not set: a stage names all three batch queues or none"
            )
        return cls(api_auth(env), queues if queues.declared else None)


@dataclass(frozen=True)
class BatchSettings:
    """Where batch jobs read and write, their queues and how they are cut."""

    bucket: str
    input_prefix: str = "batch/in/"
    output_prefix: str = "batch/out/"
    queues: BatchQueues = BatchQueues()
    # 50,000 rows take ~0.9 s of CPU here (18 µs/row, benchmarks.batch): ~7 s on a
    # 256 MB Lambda (0.145 vCPU), well under a 60 s worker timeout; parts stay ~12 MB.
    rows_per_chunk: int = 50_000
    # Rows parsed, validated and predicted at once: bounds a worker's memory.
    predict_rows: int = 5_000

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BatchSettings:
        return cls(
            bucket=env.get(BATCH_BUCKET, "").strip(),
            input_prefix=_prefix(env, BATCH_INPUT_PREFIX, cls.input_prefix),
            output_prefix=_prefix(env, BATCH_OUTPUT_PREFIX, cls.output_prefix),
            queues=BatchQueues.from_env(env),
            rows_per_chunk=_positive(env, BATCH_ROWS_PER_CHUNK, cls.rows_per_chunk, int),
            predict_rows=_positive(env, BATCH_PREDICT_ROWS, cls.predict_rows, int),
        )


def _prefix(env: Mapping[str, str], name: str, default: str) -> str:
    """A key prefix ending in one "/" (never the bucket's root)."""
    value = env.get(name, "").strip().strip("/")
    return f"{value}/" if value else default


def _positive[T: (int, float)](env: Mapping[str, str], name: str, default: T, kind: type[T]) -> T:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = kind(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be a number") from exc
    if not value > 0:  # also refuses NaN
        raise ConfigurationError(f"{name} must be positive")
    return value
