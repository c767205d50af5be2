"""Shared fixtures: a real moto S3 server over HTTP (in this process, on a port the
kernel picked), a small trained model published where the `dev` stage reads it, and a
real `chalice local` serving it.

`make test` runs the tests in pytest-xdist workers (`-n auto --dist loadgroup`). Each
worker is its own process with its own session: its own moto server and chalice local on
ports the kernel picked. The tests of a file with a module-scoped fixture (a server, a
package, a trained model) run in one worker, so it is made once; every other test goes to
whichever worker is free, longest first (`tests/scheduling.py`). What every worker needs
and is expensive (a packaged zip, the trained test model) is made once per run with
`once()`: in the run's shared temporary folder, under a file lock."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from deployment.stages import stage_location
from layer_build.cache import built_once
from localdev.servers import ChaliceLocal, MotoServer, s3_env
from tests.trained_demo import TEST_MODEL_ARGS, trained

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Routes are registered when app.py is imported; the dev stage (what the tests serve)
# has no API auth. tests/unit/test_auth_routes.py imports app.py under each mode.
os.environ.setdefault("API_AUTH", "none")

STAGE = "dev"
VERSION = "1"


@dataclass(frozen=True)
class PublishedModel:
    """A trained model published to the local S3 where the dev stage looks."""

    bucket: str
    prefix: str
    version: str
    model_dir: Path


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadgroup`: files sharing a module-scoped fixture, longest first."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from tests.scheduling import LongestFirst

    return LongestFirst(config, log)


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controller (or a run without xdist)
        from tests.scheduling import DurationRecorder

        config.pluginmanager.register(DurationRecorder(config), "duration-recorder")


def once(tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], None]) -> Path:
    """`make(folder)` run once per test run, whichever worker asks first; the others
    wait on its lock and reuse the folder (without xdist: once per session)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder, shared by its workers
    return built_once(root / "shared" / name, make)


@pytest.fixture(scope="session")
def packages(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """`tests.packages.Packages`: each `chalice package` output made once per run."""
    from tests.packages import Packages

    return Packages(tmp_path_factory)


@pytest.fixture(scope="session", autouse=True)
def private_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Temporary files of the tests, of the libraries they call (TensorFlow's autograph
    modules) and of every subprocess they start go under pytest's folder, never /tmp."""
    private = tmp_path_factory.mktemp("tmp")
    saved_env, saved_dir = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = tempfile.tempdir = str(private)
    try:
        yield private
    finally:
        tempfile.tempdir = saved_dir
        if saved_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_env


@pytest.fixture(scope="session")
def s3_server() -> Iterator[MotoServer]:
    """moto's S3 server on a free port; the session's boto3 clients point at it."""
    server = MotoServer().start()
    saved = dict(os.environ)
    os.environ.update(s3_env(server.url))
    try:
        yield server
    finally:
        server.stop()
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """A small loan-grade model trained on synthetic data (seconds), with its holdout;
    trained once per hash of the training code into the cache outside the checkout
    (`tests/trained_demo.py`), which every worker and run reads, never writes."""
    return trained("test", TEST_MODEL_ARGS)


@pytest.fixture(scope="session")
def published(s3_server: MotoServer, model_dir: Path) -> PublishedModel:
    """The model published as version 1 (and LATEST) for the dev stage."""
    from modelops.publish import main as publish

    bucket, prefix = stage_location(STAGE)
    boto3.client("s3").create_bucket(Bucket=bucket)
    code = publish([
        "--model", str(model_dir / "model.keras"),
        "--preprocessing", str(model_dir / "preprocessing.json"),
        "--labels", str(model_dir / "labels.json"),
        "--metrics", str(model_dir / "metrics.json"),
        "--feature-stats", str(model_dir / "feature_stats.json"),
        "--name", "loan-grade", "--version", VERSION, "--stage", STAGE,
    ])  # fmt: skip
    assert code == 0
    return PublishedModel(bucket, prefix, VERSION, model_dir)


@pytest.fixture(scope="session")
def api_url(
    published: PublishedModel, s3_server: MotoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A real `chalice local` (dev stage) serving the published model over HTTP."""
    env = s3_env(s3_server.url) | {"MODEL_CACHE_DIR": str(tmp_path_factory.mktemp("cache"))}
    with ChaliceLocal(STAGE, env) as server:
        yield server.url


@pytest.fixture(scope="session")
def keras_model(published: PublishedModel) -> Any:
    """The published Keras model, loaded in the test process for parity checks."""
    import keras

    return keras.saving.load_model(published.model_dir / "model.keras", compile=False)
