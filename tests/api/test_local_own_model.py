"""`make serve MODEL=...` end to end: a user's model is published to the local S3 and
served by a real `chalice local`, its printed curl commands work, the user's folder is
left exactly as it was, and every mistake is one `error:` line before any work."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.bundle_layout import BundleLayout
from localdev.own_model import SCRATCH_ROOT, local_project, needs_keras, read_manifest
from localdev.servers import HOST, ChaliceLocal, MotoServer, port_in_use, s3_env
from project_paths import CHALICE_DIR, PROJECT_DIR
from tests.api.stack_process import STACK, curl, running_stack
from tests.conftest import PublishedModel

pytestmark = pytest.mark.slow  # in make test, not make test-fast

STARTUP_TIMEOUT = 180.0


def _build_model(kind: str, path: Path) -> None:
    """A tiny 3-feature model: one sigmoid unit (binary) or a 2-class softmax."""
    script = f"""
import keras
keras.utils.set_random_seed(0)
units, activation = {(1, "sigmoid") if kind == "binary" else (2, "softmax")!r}
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"),
                          keras.layers.Dense(units, activation=activation)])
model.save({str(path)!r})
"""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=120)


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    } | {"<entries>": ",".join(sorted(str(p) for p in folder.rglob("*")))}


@pytest.mark.parametrize("kind", ["classification", "binary"])
def test_own_model_is_served_with_working_curls_and_its_folder_untouched(
    kind: str, tmp_path: Path
) -> None:
    folder = tmp_path / "my models"
    folder.mkdir()
    name = f"risk-{kind}-{os.getpid()}"
    model = folder / f"{name}.keras"
    _build_model(kind, model)
    (folder / "labels.json").write_text('["mine"]')  # a file the demo once overwrote
    before = _hashes(folder)
    task = ["--task", "binary"] if kind == "binary" else []
    try:
        with running_stack(
            ["--model", str(model), "--labels", "good,bad", *task], 3, STARTUP_TIMEOUT, tmp_path
        ) as stack:
            health, info, prediction = (curl(c) for c in stack.curls)
            assert health["status"] == "ok"
            assert info["name"] == name
            assert f"-d @artifacts/local/{name}/example-encoded.json" in stack.curls[2]
            [answer] = prediction["predictions"]
            probabilities = answer["probabilities"]
            assert set(probabilities) == {"good", "bad"}
            assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-5)
            assert answer["label"] in ("good", "bad")
    finally:
        shutil.rmtree(SCRATCH_ROOT / name, ignore_errors=True)
    banner = "\n".join(stack.lines)
    assert f"Your model {name} " in banner
    assert '"probabilities": {"good": p, "bad": p}' in banner
    assert "Keras engine" not in banner  # LiteRT converts it
    assert _hashes(folder) == before
    assert len(stack.ports) == 2 and not any(port_in_use(p) for p in stack.ports)


def test_with_preprocessing_it_prints_a_raw_and_an_encoded_curl_that_agree(
    model_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "trained"
    shutil.copytree(model_dir, folder)
    before = _hashes(folder)
    name = f"loans-{os.getpid()}"
    args = ["--model", str(folder / "model.keras"), "--name", name,
            "--preprocessing", str(folder / "preprocessing.json"),
            "--labels", str(folder / "labels.json")]  # fmt: skip
    try:
        with running_stack(args, 4, STARTUP_TIMEOUT, tmp_path) as stack:
            raw, encoded = (curl(c)["predictions"] for c in stack.curls[2:])
            assert "example-raw.json" in stack.curls[2]
            assert "example-encoded.json" in stack.curls[3]
            assert [p["label"] for p in raw] == [p["label"] for p in encoded]
            assert set(raw[0]["probabilities"]) == set("ABCDEFG")
    finally:
        shutil.rmtree(SCRATCH_ROOT / name, ignore_errors=True)
    assert _hashes(folder) == before


@pytest.mark.parametrize(("option", "variable"), [("--s3-port", "S3_PORT"),
                                                  ("--api-port", "API_PORT")])  # fmt: skip
def test_a_port_in_use_is_reported_before_any_work(
    option: str, variable: str, tmp_path: Path
) -> None:
    model = tmp_path / "model.keras"
    model.write_bytes(b"PK\x03\x04 a zip header, not opened before the ports are checked")
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        other = "--api-port" if option == "--s3-port" else "--s3-port"
        result = subprocess.run([*STACK, "--model", str(model), option, str(port), other, "0"],
                                cwd=PROJECT_DIR, capture_output=True, text=True,
                                timeout=60)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: port {port} on 127.0.0.1 is already in use: free it or pass "
        f"{option}=<another port> (0 picks a free one)"
    )
    assert result.stdout == ""  # no server started, nothing converted or trained


def test_make_serve_passes_the_variables_given_on_its_command_line(tmp_path: Path) -> None:
    """MODEL (a path with a space) and S3_PORT reach the stack; NAME from the environment
    (WSL sets one) does not: an invalid name would be refused before the ports."""
    model = tmp_path / "my models" / "model.keras"
    model.parent.mkdir()
    model.write_bytes(b"PK\x03\x04 a zip header, not opened before the ports are checked")
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            # -o venv: never (re)install the environment from a test
            ["make", "-s", "-o", "venv", "serve", f"MODEL={model}", "LABELS=good,bad",
             f"S3_PORT={port}", "API_PORT=0"],
            cwd=PROJECT_DIR, capture_output=True, text=True, timeout=60,
            env={**os.environ, "NAME": "not a model name!"},
        )  # fmt: skip
    assert result.returncode != 0
    assert result.stderr.splitlines()[0] == (
        f"error: port {port} on 127.0.0.1 is already in use: free it or pass "
        "S3_PORT=<another port> (0 picks a free one)"
    )


def test_a_missing_model_file_is_one_error_line(tmp_path: Path) -> None:
    result = subprocess.run([*STACK, "--model", str(tmp_path / "nope.keras")], cwd=PROJECT_DIR,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: --model={tmp_path / 'nope.keras'}: no such file; give the path of your model file"
    )


def test_a_bad_labels_value_is_refused_before_any_server_starts(tmp_path: Path) -> None:
    model = tmp_path / "model.keras"
    model.write_bytes(b"PK\x03\x04 labels are read before any server starts")
    result = subprocess.run([*STACK, "--model", str(model), "--labels", ",", "--s3-port", "0",
                             "--api-port", "0"], cwd=PROJECT_DIR, capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: --labels: give comma-separated names (A,B,C) or a JSON file"
    ]
    assert result.stdout == ""  # no moto server, nothing converted


def test_a_publish_refusal_is_one_line_and_stops_the_s3_server(tmp_path: Path) -> None:
    model = tmp_path / "model.keras"
    model.write_bytes(b"PK\x03\x04 a zip header, then nothing Keras can load")
    result = subprocess.run([*STACK, "--model", str(model), "--labels", "a,b", "--s3-port", "0",
                             "--api-port", "0"], cwd=PROJECT_DIR, capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: cannot publish {model}: ")
    [port] = re.findall(r"moto S3 server on http://127\.0\.0\.1:(\d+)", result.stdout)
    assert not port_in_use(int(port))


def test_a_folder_that_is_not_the_demos_is_never_trained_into(tmp_path: Path) -> None:
    (tmp_path / "model.keras").write_bytes(b"the user's own model")
    (tmp_path / "labels.json").write_text('["yes", "no"]')
    before = _hashes(tmp_path)
    result = subprocess.run([*STACK, "--demo-dir", str(tmp_path), "--s3-port", "0"],
                            cwd=PROJECT_DIR, capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: --demo-dir={tmp_path} holds files but not a "
                                    "trained demo")  # fmt: skip
    assert "--model=" in result.stderr and result.stdout == ""
    assert _hashes(tmp_path) == before


def test_a_keras_only_bundle_is_served_by_the_keras_engine_from_a_project_copy(
    published: PublishedModel, s3_server: MotoServer, tmp_path: Path
) -> None:
    """What the stack does for a bundle without model.tflite (published Keras-only),
    with the tracked Chalice config left as it was."""
    import boto3

    s3 = boto3.client("s3")
    source, target = BundleLayout(published.prefix), BundleLayout("models/keras-only")
    manifest = read_manifest(s3, published.bucket, published.prefix)
    manifest["name"] = "keras-only"
    del manifest["artifacts"]["tflite"]
    keras_file = manifest["artifacts"]["keras"]["file"]
    body = s3.get_object(Bucket=published.bucket, Key=source.file_key("1", keras_file))["Body"]
    s3.put_object(Bucket=published.bucket, Key=target.file_key("1", keras_file), Body=body.read())
    s3.put_object(Bucket=published.bucket, Key=target.manifest_key("1"),
                  Body=json.dumps(manifest).encode())  # fmt: skip
    s3.put_object(Bucket=published.bucket, Key=target.pointer_key(), Body=b"1")
    config_before = _hashes(CHALICE_DIR)

    served = read_manifest(s3, published.bucket, target.prefix)
    assert needs_keras(served)
    project = local_project(tmp_path / "project", "dev", target.prefix, "keras")
    env = s3_env(s3_server.url) | {"MODEL_CACHE_DIR": str(tmp_path / "cache")}
    with ChaliceLocal("dev", env, project_dir=project) as api:
        info = curl(f"curl -s {api.url}/model")
        records = json.dumps({"instances": [{name: 0.0 for name in served["encoded_features"]}]})
        answer = curl(f"curl -s -X POST {api.url}/predict -H 'Content-Type: application/json' "
                       f"-d {shlex.quote(records)}")  # fmt: skip
    assert info["name"] == "keras-only" and info["engine"] == "keras"
    [prediction] = answer["predictions"]
    assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert _hashes(CHALICE_DIR) == config_before
    assert not (project / "vendor").exists()

    # Why a copy: Chalice sets the stage's environment_variables over the process's.
    exported = env | {"MODEL_PREFIX": target.prefix, "MODEL_ENGINE": "keras"}
    with ChaliceLocal("dev", exported) as api:
        info = curl(f"curl -s {api.url}/model")
    assert info["name"] == "loan-grade" and info["engine"] == "litert"
