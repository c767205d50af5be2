"""Settings resolve from the environment once, with checked values."""

from __future__ import annotations

import pytest

from chalicelib.config import ConfigurationError, Settings


def test_defaults_need_only_a_bucket() -> None:
    settings = Settings.from_env({"MODEL_BUCKET": "b"})
    assert settings == Settings(model_bucket="b")
    assert settings.s3_max_attempts * (settings.s3_connect_timeout + settings.s3_read_timeout) < 10


def test_every_variable_is_read() -> None:
    settings = Settings.from_env({
        "MODEL_BUCKET": "b", "MODEL_PREFIX": "/p/q/", "MODEL_VERSION": "7",
        "MODEL_ENGINE": "KERAS", "MODEL_CACHE_DIR": "/tmp/x", "MAX_RECORDS": "5",
        "S3_CONNECT_TIMEOUT": "0.5", "S3_READ_TIMEOUT": "1.5", "S3_MAX_ATTEMPTS": "3",
        "MAX_DEVIATIONS": "50",
    })  # fmt: skip
    assert settings == Settings("b", "p/q", "7", "keras", "/tmp/x", 5, 0.5, 1.5, 3, 50.0)


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"MODEL_BUCKET": " "},
        {"MODEL_BUCKET": "b", "MODEL_ENGINE": "torch"},
        {"MODEL_BUCKET": "b", "MAX_RECORDS": "many"},
        {"MODEL_BUCKET": "b", "MAX_RECORDS": "0"},
        {"MODEL_BUCKET": "b", "MAX_DEVIATIONS": "-1"},
        {"MODEL_BUCKET": "b", "MAX_DEVIATIONS": "nan"},
    ],
)
def test_bad_settings_raise(env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        Settings.from_env(env)


def test_batch_settings_default_to_the_model_bucket_and_read_their_variables() -> None:
    assert Settings.from_env({"MODEL_BUCKET": "b"}).batch.bucket == "b"
    batch = Settings.from_env({
        "MODEL_BUCKET": "b", "BATCH_BUCKET": "jobs", "BATCH_INPUT_PREFIX": "/in",
        "BATCH_OUTPUT_PREFIX": "out/", "BATCH_CHUNK_QUEUE": "c", "BATCH_DEAD_LETTER_QUEUE": "d",
        "BATCH_EVENTS_QUEUE": "e", "BATCH_ROWS_PER_CHUNK": "10", "BATCH_PREDICT_ROWS": "5",
        "BATCH_WORKER_BATCH_SIZE": "2", "BATCH_WORKER_CONCURRENCY": "7",
    }).batch  # fmt: skip
    assert (batch.bucket, batch.input_prefix, batch.output_prefix) == ("jobs", "in/", "out/")
    assert (batch.queues.chunks, batch.queues.dead_letters, batch.queues.input_events) == (
        "c", "d", "e")  # fmt: skip
    assert (batch.rows_per_chunk, batch.predict_rows) == (10, 5)
    assert (batch.queues.worker_batch_size, batch.queues.worker_concurrency) == (2, 7)


def test_rollout_and_challenger_settings() -> None:
    defaults = Settings.from_env({"MODEL_BUCKET": "b"})
    assert (defaults.model_refresh_seconds, defaults.challenger_version) == (60.0, None)
    assert defaults.challenger_sample == 0.05
    settings = Settings.from_env({
        "MODEL_BUCKET": "b", "MODEL_REFRESH_SECONDS": "0", "CHALLENGER_VERSION": " 2 ",
        "CHALLENGER_SAMPLE": "1",
    })  # fmt: skip
    assert (settings.model_refresh_seconds, settings.challenger_version) == (0.0, "2")
    assert settings.challenger_sample == 1.0


@pytest.mark.parametrize(
    "env",
    [
        {"MODEL_REFRESH_SECONDS": "-1"},
        {"MODEL_REFRESH_SECONDS": "soon"},
        {"MODEL_REFRESH_SECONDS": "nan"},
        {"CHALLENGER_VERSION": "latest"},
        {"CHALLENGER_VERSION": "../2"},
        {"CHALLENGER_SAMPLE": "1.5"},
        {"CHALLENGER_SAMPLE": "-0.1"},
        {"CHALLENGER_SAMPLE": "nan"},
    ],
)
def test_bad_rollout_settings_raise(env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        Settings.from_env({"MODEL_BUCKET": "b", **env})
