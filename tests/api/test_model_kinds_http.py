"""A binary (one-sigmoid) model over HTTP: published under its own name in the dev
stage's bucket of the session's moto S3 (`models/default-risk`, so no stage's model is
replaced), served by a second real `chalice local` from a project copy pointed at it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import numpy as np
import pytest

from chalicelib.bundle_layout import model_prefix
from deployment.stages import stage_location
from localdev.own_model import local_project
from localdev.servers import ChaliceLocal, MotoServer, s3_env
from modelops.publish import main as publish
from tests.model_kinds import FEATURES, as_records, keras_outputs, sample_rows, tiny_model

STAGE = "dev"
NAME = "default-risk"


@pytest.fixture(scope="module")
def binary_model(tmp_path_factory: pytest.TempPathFactory, s3_server: MotoServer) -> Path:
    path = tiny_model("binary", tmp_path_factory.mktemp("binary") / "model.keras")
    bucket, _ = stage_location(STAGE)
    boto3.client("s3").create_bucket(Bucket=bucket)
    code = publish([
        "--model", str(path), "--name", NAME, "--version", "1",
        "--labels", "good,bad", "--features", str(write_features(path.parent)),
        "--bucket", bucket, "--overwrite",
    ])  # fmt: skip
    assert code == 0
    return path


def write_features(directory: Path) -> Path:
    path = directory / "features.json"
    path.write_text(json.dumps(FEATURES))
    return path


@pytest.fixture(scope="module")
def binary_url(
    binary_model: Path, s3_server: MotoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    env = s3_env(s3_server.url) | {"MODEL_CACHE_DIR": str(tmp_path_factory.mktemp("cache"))}
    project = local_project(
        tmp_path_factory.mktemp("project") / "p", STAGE, model_prefix(NAME), None
    )
    with ChaliceLocal(STAGE, env, project_dir=project) as server:
        yield server.url


def test_a_binary_model_answers_both_labels_over_http(binary_url: str, binary_model: Path) -> None:
    rows = sample_rows(20)
    response = httpx.post(f"{binary_url}/predict", json={"instances": as_records(rows)}, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == {"name": NAME, "version": "1"}
    p = keras_outputs(binary_model, rows)[:, 0]
    served = np.array([[a["probabilities"]["good"], a["probabilities"]["bad"]]
                       for a in body["predictions"]])  # fmt: skip
    assert np.abs(served - np.stack([1 - p, p], axis=1)).max() <= 1e-5
    assert [a["label"] for a in body["predictions"]] == np.where(p >= 0.5, "bad", "good").tolist()
    assert all(set(a) == {"label", "probabilities"} for a in body["predictions"])


def test_get_model_states_the_binary_task(binary_url: str) -> None:
    info = httpx.get(f"{binary_url}/model", timeout=30).json()
    assert (info["task"], info["labels"], info["threshold"]) == ("binary", ["good", "bad"], 0.5)
