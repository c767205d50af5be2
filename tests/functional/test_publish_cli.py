"""The publishing and training commands as a user runs them (subprocesses): each user
mistake ends in exactly one `error: ` line on stderr, exit code 2 and no traceback;
most are caught before any S3 call or conversion. S3 is moto over HTTP, or nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from chalicelib.bundle_layout import model_prefix
from localdev.servers import MotoServer
from modelops.publish import upload_bundle
from project_paths import PROJECT_DIR
from tests.cli_mistakes import the_one_error
from tests.conftest import PublishedModel
from tests.fakes import make_bundle

pytestmark = pytest.mark.slow  # each test is a subprocess with TensorFlow

NOTHING_LISTENING = "http://127.0.0.1:9"


def no_aws_env() -> dict[str, str]:
    """The environment without any AWS setting: no credentials anywhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return env | {
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def offline_env() -> dict[str, str]:
    """Credentials, but S3 is an endpoint with nothing listening."""
    return no_aws_env() | {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL_S3": NOTHING_LISTENING,
    }


def run(module: str, *args: str | Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """A model file (not a real model: every check before converting passes on it)
    and well-formed and malformed JSON inputs."""
    (tmp_path / "model.keras").write_bytes(b"PK\x03\x04 not a real model")
    (tmp_path / "model.onnx").write_bytes(b"onnx")
    (tmp_path / "labels.json").write_text('["A", "B"]')
    (tmp_path / "broken.json").write_text('{"accuracy": 0.9,')
    (tmp_path / "object.json").write_text('{"a": 1}')
    (tmp_path / "bad-spec.json").write_text('{"numeric": [{"name": "a"}], "categorical": []}')
    return tmp_path


def publish_args(files: Path, *extra: str, name: str = "loan-grade") -> list[str]:
    return ["--model", str(files / "model.keras"), "--name", name, "--version", "3", *extra]


# Mistakes caught before S3: the endpoint has nothing listening, so reaching it would
# say "cannot reach S3" instead of the expected line.
OFFLINE_MISTAKES = [
    (["--model", "{f}/missing.keras", "--name", "loan-grade", "--version", "3", "--stage", "dev"],
     "--model={f}/missing.keras: no such file"),
    (["--model", "{f}/model.onnx", "--name", "loan-grade", "--version", "3", "--stage", "dev"],
     "not a Keras model file"),
    (["--model", "{f}/model.keras", "--name", "loan-grade", "--version", "v 2/beta", "--stage",
      "dev"], "version 'v 2/beta' is not a valid name"),
    (["--model", "{f}/model.keras", "--name", "loan-grade", "--version", "latest", "--stage",
      "dev"], "version 'latest' is not a valid name"),
    (["--model", "{f}/model.keras", "--name", "loan-grade", "--version", "3", "--stage",
      "staging"], "unknown stage 'staging'"),
    (["--model", "{f}/model.keras", "--name", "my-model", "--version", "3", "--stage", "prod"],
     "stage prod serves model 'loan-grade' (s3://loan-models-prod/models/loan-grade/), "
     "not 'my-model'"),
    (["--model", "{f}/model.keras", "--name", "a/b", "--version", "3", "--bucket", "b"],
     "--name 'a/b' is not a valid model name"),
    (["--model", "{f}/model.keras", "--name", "loan-grade", "--version", "3", "--stage", "dev",
      "--labels", "{f}/missing-labels.json"], "--labels={f}/missing-labels.json: no such file"),
    (["--model", "{f}/model.keras", "--name", "loan-grade", "--version", "3", "--stage", "dev",
      "--labels", "{f}/object.json"], "must hold a JSON list of names"),
    (["--model", "{f}/model.keras", "--name", "loan-grade", "--version", "3", "--stage", "dev",
      "--metrics", "{f}/broken.json"], "--metrics={f}/broken.json: not valid JSON (line 1"),
    (["--model", "{f}/model.keras", "--name", "loan-grade", "--version", "3", "--stage", "dev",
      "--preprocessing", "{f}/bad-spec.json"], "--preprocessing={f}/bad-spec.json: malformed"),
    (["--model", "{f}/model.keras", "--name", "loan-grade", "--version", "3", "--stage", "dev",
      "--features", "{f}/object.json"], "--features={f}/object.json: must hold a JSON list"),
    (["--model", "{f}/model.keras", "--name", "loan-grade", "--version", "3", "--stage", "dev",
      "--prefix", "x"], "--prefix goes with --bucket"),
    (["--name", "loan-grade", "--stage", "dev"], "publishing needs --model, --version"),
    (["--list", "--bucket", "b"], "--bucket b needs --name"),
    (["--list", "--stage", "dev", "--version", "3"], "take no publishing option: drop --version"),
    (["--promote", "../1", "--stage", "dev"], "version '../1' is not a valid name"),
    (["--model", "{f}/model.keras", "--name", "loan-grade", "--version", "3"],
     "one of the arguments --stage --bucket is required"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "says"), OFFLINE_MISTAKES)
def test_publish_mistakes_caught_before_s3(files: Path, argv: list[str], says: str) -> None:
    started = time.perf_counter()
    result = run("modelops.publish", *[a.format(f=files) for a in argv], env=offline_env())
    assert says.format(f=files) in the_one_error(result)
    assert "converting" not in result.stdout
    assert time.perf_counter() - started < 20  # no TensorFlow, no S3 retries


def test_no_credentials(files: Path) -> None:
    result = run("modelops.publish", *publish_args(files, "--stage", "dev"), env=no_aws_env())
    assert the_one_error(result).startswith("no AWS credentials found: set AWS_PROFILE")


def test_s3_unreachable(files: Path) -> None:
    result = run("modelops.publish", *publish_args(files, "--stage", "dev"), env=offline_env())
    assert the_one_error(result).startswith("cannot reach S3")


def test_unreachable_s3_when_listing() -> None:
    result = run("modelops.publish", "--list", "--stage", "dev", env=offline_env())
    assert the_one_error(result).startswith("cannot reach S3")


def test_a_missing_bucket(files: Path, s3_server: MotoServer) -> None:
    args = publish_args(files, "--bucket", "no-such-bucket-here")
    error = the_one_error(run("modelops.publish", *args, env=dict(os.environ)))
    assert error.startswith("bucket no-such-bucket-here does not exist: create it")


def test_an_existing_version_is_refused_before_converting(files: Path, fresh_bucket: str) -> None:
    s3 = boto3.client("s3")
    upload_bundle(make_bundle(name="loan-grade", version="3"), s3, fresh_bucket,
                  model_prefix("loan-grade"))  # fmt: skip
    result = run("modelops.publish", *publish_args(files, "--bucket", fresh_bucket),
                 env=dict(os.environ))  # fmt: skip
    assert the_one_error(result) == (
        f"version 3 already exists at s3://{fresh_bucket}/models/loan-grade/3/: "
        "choose another --version, or pass --overwrite to replace it"
    )
    assert "converting" not in result.stdout  # the model file is no model: never converted


def test_an_explicit_prefix_of_another_model_is_refused(files: Path, fresh_bucket: str) -> None:
    upload_bundle(make_bundle(name="loan-grade", version="1"), boto3.client("s3"),
                  fresh_bucket, "shared")  # fmt: skip
    args = publish_args(files, "--bucket", fresh_bucket, "--prefix", "shared", name="my-model")
    error = the_one_error(run("modelops.publish", *args, env=dict(os.environ)))
    assert "holds model 'loan-grade', not 'my-model'" in error


def test_a_file_keras_cannot_load_is_one_line(files: Path, fresh_bucket: str) -> None:
    args = publish_args(files, "--bucket", fresh_bucket)
    error = the_one_error(run("modelops.publish", *args, env=dict(os.environ)))
    assert error.startswith(f"cannot publish {files / 'model.keras'}:")


def test_list_and_promote_roll_back(fresh_bucket: str) -> None:
    s3, prefix = boto3.client("s3"), model_prefix("loan-grade")
    for version in ("1", "2"):
        upload_bundle(make_bundle(name="loan-grade", version=version), s3, fresh_bucket, prefix)
    where = ["--bucket", fresh_bucket, "--name", "loan-grade"]
    listed = run("modelops.publish", "--list", *where, env=dict(os.environ))
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0] == f"s3://{fresh_bucket}/models/loan-grade/  (LATEST -> 2)"
    assert [line.split()[:3] for line in lines[2:]] == [
        ["1", "2026-11-25T00:00:00Z", "litert"],
        ["*", "2", "2026-11-25T00:00:00Z"],
    ]

    promoted = run("modelops.publish", "--promote", "1", *where, env=dict(os.environ))
    assert promoted.returncode == 0, promoted.stderr
    assert "now points at 1 (was 2)" in promoted.stdout
    pointer = s3.get_object(Bucket=fresh_bucket, Key=f"{prefix}/LATEST")["Body"].read()
    assert pointer == b"1"

    missing = run("modelops.publish", "--promote", "9", *where, env=dict(os.environ))
    assert the_one_error(missing).startswith("no version 9:")
    assert s3.get_object(Bucket=fresh_bucket, Key=f"{prefix}/LATEST")["Body"].read() == b"1"


def test_a_real_model_goes_to_its_own_prefix(published: PublishedModel) -> None:
    """Publishing another model into the dev bucket leaves the dev stage's model alone."""
    s3 = boto3.client("s3")
    before = s3.get_object(Bucket=published.bucket, Key=f"{published.prefix}/LATEST")
    model_dir = published.model_dir
    result = run("modelops.publish", "--model", model_dir / "model.keras",
                 "--labels", model_dir / "labels.json", "--name", "other-model", "--version", "1",
                 "--preprocessing", model_dir / "preprocessing.json",
                 "--bucket", published.bucket, env=dict(os.environ))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"to s3://{published.bucket}/models/other-model/1/" in result.stdout
    # The parity check's engine load is silent: LiteRT's C++ INFO line never reaches the user.
    assert "XNNPACK" not in result.stdout + result.stderr
    after = s3.get_object(Bucket=published.bucket, Key=f"{published.prefix}/LATEST")
    assert after["Body"].read() == before["Body"].read() == published.version.encode()


@pytest.mark.parametrize(
    ("content", "says"),
    [(None, "--data={p}: no such file"), ("a,b\n1,2\n", "{p}: missing columns")],
)
def test_training_data_mistakes(tmp_path: Path, content: str | None, says: str) -> None:
    data = tmp_path / "loans.csv"
    if content is not None:
        data.write_text(content)
    result = run("modelops.train", "--data", data, "--out", tmp_path / "out", env=no_aws_env())
    assert the_one_error(result).startswith(says.format(p=data))
    assert not (tmp_path / "out").exists()


def test_promote_to_another_request_contract_needs_allow_contract_change(
    fresh_bucket: str,
) -> None:
    s3, prefix = boto3.client("s3"), model_prefix("loan-grade")
    upload_bundle(make_bundle(name="loan-grade", version="1"), s3, fresh_bucket, prefix)
    upload_bundle(make_bundle(name="loan-grade", version="2", features=("x0", "x1")), s3,
                  fresh_bucket, prefix, promote=False)  # fmt: skip
    where = ["--bucket", fresh_bucket, "--name", "loan-grade"]
    refused = run("modelops.publish", "--promote", "2", *where, env=dict(os.environ))
    error = the_one_error(refused)
    assert error.startswith("version 2 changes the request contract of the serving version 1")
    assert "pass --allow-contract-change to move LATEST anyway" in error
    assert s3.get_object(Bucket=fresh_bucket, Key=f"{prefix}/LATEST")["Body"].read() == b"1"

    allowed = run("modelops.publish", "--promote", "2", "--allow-contract-change", *where,
                  env=dict(os.environ))  # fmt: skip
    assert allowed.returncode == 0, allowed.stderr
    assert s3.get_object(Bucket=fresh_bucket, Key=f"{prefix}/LATEST")["Body"].read() == b"2"
