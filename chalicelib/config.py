"""Service configuration: read from the environment once, in this module only.

Chalice sets the variables per stage from `.chalice/config.json`. Resolution is
"environment variable > default"; everything else receives a `Settings`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from chalicelib.bundle_layout import DEFAULT_PREFIX, FOLLOW_LATEST
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
BATCH_BUCKET = "BATCH_BUCKET"
BATCH_INPUT_PREFIX = "BATCH_INPUT_PREFIX"
BATCH_OUTPUT_PREFIX = "BATCH_OUTPUT_PREFIX"
BATCH_CHUNK_QUEUE = "BATCH_CHUNK_QUEUE"
BATCH_DEAD_LETTER_QUEUE = "BATCH_DEAD_LETTER_QUEUE"
BATCH_EVENTS_QUEUE = "BATCH_EVENTS_QUEUE"
BATCH_ROWS_PER_CHUNK = "BATCH_ROWS_PER_CHUNK"
BATCH_PREDICT_ROWS = "BATCH_PREDICT_ROWS"


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
    batch: BatchSettings = field(default_factory=lambda: BatchSettings(""))

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
            batch=BatchSettings.from_env(env, default_bucket=bucket),
        )


@dataclass(frozen=True)
class BatchQueues:
    """The batch path's SQS queue names (app.py names them in its decorators)."""

    chunks: str = "model-batch-chunks"
    dead_letters: str = "model-batch-chunks-dlq"
    input_events: str = "model-batch-input-events"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BatchQueues:
        env = os.environ if environ is None else environ
        return cls(
            chunks=env.get(BATCH_CHUNK_QUEUE, "").strip() or cls.chunks,
            dead_letters=env.get(BATCH_DEAD_LETTER_QUEUE, "").strip() or cls.dead_letters,
            input_events=env.get(BATCH_EVENTS_QUEUE, "").strip() or cls.input_events,
        )


@dataclass(frozen=True)
class BatchSettings:
    """Where batch jobs read and write, their queues and how they are cut."""

    bucket: str
    input_prefix: str = "batch/in/"
    output_prefix: str = "batch/out/"
    queues: BatchQueues = BatchQueues()
    # 50,000 rows score in ~2 s on a laptop core; a 256 MB Lambda (~1/7 vCPU) takes
    # ~15-20 s, well under a 60 s worker timeout, and parts stay ~10 MB.
    rows_per_chunk: int = 50_000
    # Rows parsed, validated and predicted at once: bounds a worker's memory.
    predict_rows: int = 5_000

    @classmethod
    def from_env(cls, env: Mapping[str, str], default_bucket: str) -> BatchSettings:
        return cls(
            bucket=env.get(BATCH_BUCKET, "").strip() or default_bucket,
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
