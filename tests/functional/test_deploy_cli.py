"""`make package`, `make deploy`, the deploy helpers and `deployment.configure` as a user
runs them (subprocesses): each mistake is one `error: ` line, exit code 2, no traceback,
before anything is built, written or deployed; configure edits a copy of the project
(never the checkout) and is idempotent."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployment.configure import Request, as_text, configure
from deployment.package import PackageRequestError, check_request
from deployment.stages import stage_location
from layer_build.flavors import FLAVORS
from localdev.servers import LOCAL_AWS_ENV, MotoServer
from project_paths import BUILD_DIR, CHALICE_DIR, PROJECT_DIR, VENDOR_DIR
from tests.batch_stages import with_batch
from tests.cli_mistakes import the_one_error
from tests.deploy.conftest import load

pytestmark = pytest.mark.slow  # each test is a subprocess (make, chalice package)

BUCKET = "loan-models-123456789012-eu-west-1"
STAGES = "dev, prod, prod-arm64, dev-tensorflow, prod-tensorflow"


def run(
    *command: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*map(str, command)], cwd=PROJECT_DIR, capture_output=True,
                          text=True, timeout=120, check=False, env=env)  # fmt: skip


def python(
    module: str, *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", module, *args, env=env)


def no_aws(home: Path, **extra: str) -> dict[str, str]:
    """An environment with no AWS region and no credentials anywhere boto3 looks (no
    variables, no ~/.aws files, no instance metadata), plus `extra`."""
    return {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8",
            "AWS_CONFIG_FILE": str(home / "no-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true", **extra}  # fmt: skip


REGION_HINT = ("no AWS region: set AWS_DEFAULT_REGION, e.g. make deploy STAGE=prod "
               "AWS_DEFAULT_REGION=eu-west-1 (or a region in your AWS profile)")  # fmt: skip
CREDENTIALS_HINT = ("no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY (see `aws configure`)")  # fmt: skip


def fingerprint(*dirs: Path) -> dict[Path, str]:
    return {path: hashlib.sha256(path.read_bytes()).hexdigest()
            for folder in dirs if folder.exists() for path in sorted(folder.rglob("*"))
            if path.is_file()}  # fmt: skip


def build_entries() -> dict[Path, int]:
    """build/<flavor>/<what> and vendor/ of the checkout with mtimes (too big to hash)."""
    paths = [*sorted(BUILD_DIR.glob("*/*")), *([VENDOR_DIR] if VENDOR_DIR.exists() else [])]
    return {path: path.stat().st_mtime_ns for path in paths}


@pytest.fixture
def untouched_checkout() -> Iterator[None]:
    """Fail if the test wrote into .chalice/, build/ or vendor/ of the checkout."""
    before = fingerprint(CHALICE_DIR), build_entries()
    yield
    assert (fingerprint(CHALICE_DIR), build_entries()) == before


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The .chalice/ directory of a copy of the project (all configure reads or writes)."""
    shutil.copytree(CHALICE_DIR, tmp_path / ".chalice")
    return tmp_path


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--stage", "staging"], f"no stage 'staging' in .chalice/config.json; stages: {STAGES}"),
        (["--flavor", "lite", "--stage", "prod-tensorflow"],
         "stage prod-tensorflow uses MODEL_ENGINE=keras, which the lite flavor lacks; "
         "use FLAVOR=tensorflow"),
        (["--format", "yaml"], "no format 'yaml'; formats: cloudformation, terraform"),
        (["--flavor", "huge"], "--flavor=huge is not one of lite, tensorflow"),
    ],
)  # fmt: skip
def test_package_refuses_before_building(
    args: list[str], error: str, untouched_checkout: object
) -> None:
    assert the_one_error(python("deployment.package", *args)).startswith(error)


def test_make_package_with_an_unknown_stage_is_one_error_line(untouched_checkout: object) -> None:
    # -o venv: never (re)install the shared environment from a test.
    result = run("make", "-s", "-o", "venv", "package", "STAGE=staging")
    assert the_one_error(result) == f"no stage 'staging' in .chalice/config.json; stages: {STAGES}"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--bucket", "loan-models-prod", "--model", "m", "--stage", "staging"],
         f"no stage 'staging' in .chalice/config.json; stages: {STAGES}"),
        (["--bucket", "Loan_Models", "--model", "m"], "bucket name 'Loan_Models' may hold only"),
        (["--bucket", "lm", "--model", "m"], "bucket name 'lm' must be 3-63 characters"),
        (["--bucket", BUCKET, "--model", "../prod"], "model name '../prod' must be"),
        (["--bucket", BUCKET, "--model", "m", "--memory", "64"], "--memory must be 128-10240"),
        (["--bucket", BUCKET, "--model", "m", "--memory", "lots"], "--memory=lots is not a whole"),
        (["--model", "m"], "the following arguments are required: --bucket"),
    ],
)  # fmt: skip
def test_configure_refuses_and_writes_nothing(
    args: list[str], error: str, project: Path, untouched_checkout: object
) -> None:
    before = fingerprint(project)
    result = python("deployment.configure", "--project-dir", project, *args)
    assert the_one_error(result).startswith(error)
    assert fingerprint(project) == before


def test_configure_prints_what_it_changed_then_nothing_the_second_time(
    project: Path, untouched_checkout: object
) -> None:
    args = ("--project-dir", project, "--bucket", BUCKET, "--model", "credit-risk",
            "--stage", "prod")  # fmt: skip
    first = python("deployment.configure", *args)
    assert first.returncode == 0, first.stderr
    assert '-        "MODEL_BUCKET": "loan-models-prod",\n' in first.stdout
    assert f'+        "MODEL_BUCKET": "{BUCKET}",\n' in first.stdout
    assert f'+      "Resource": "arn:aws:s3:::{BUCKET}/models/credit-risk/*"\n' in first.stdout
    assert first.stdout.endswith(f"configured prod -> s3://{BUCKET}/models/credit-risk/\n")
    config_path = project / ".chalice" / "config.json"
    assert stage_location("prod", config_path) == (BUCKET, "models/credit-risk")
    assert stage_location("prod-tensorflow", config_path) == ("loan-models-prod",
                                                              "models/loan-grade")  # fmt: skip
    written = fingerprint(project)

    second = python("deployment.configure", *args)
    assert second.returncode == 0, second.stderr
    unchanged = f"already configured, nothing changed: prod -> s3://{BUCKET}/models/credit-risk/"
    assert second.stdout == unchanged + "\n"
    assert fingerprint(project) == written


def test_configure_without_a_stage_configures_every_stage(project: Path) -> None:
    result = python("deployment.configure", "--project-dir", project, "--bucket", BUCKET,
                    "--model", "credit-risk")  # fmt: skip
    assert result.stdout.endswith(f"configured {STAGES} -> s3://{BUCKET}/models/credit-risk/\n")
    config_path = project / ".chalice" / "config.json"
    for stage in STAGES.split(", "):
        assert stage_location(stage, config_path) == (BUCKET, "models/credit-risk")


def test_the_checkout_is_what_configure_writes(project: Path) -> None:
    """The tracked config and policies (here a copy) are in configure's own layout, so
    running it for a stage's current bucket and model shows no diff."""
    assert (CHALICE_DIR / "config.json").read_text() == as_text(load(CHALICE_DIR / "config.json"))
    for stage in load(CHALICE_DIR / "config.json")["stages"]:
        bucket, prefix = stage_location(stage)
        model = prefix.rsplit("/", 1)[-1]
        result = python("deployment.configure", "--project-dir", project, "--bucket", bucket,
                        "--model", model, "--stage", stage)  # fmt: skip
        assert result.stdout.startswith("already configured, nothing changed:"), result.stdout


def test_package_names_a_missing_policy_file(project: Path) -> None:
    (project / ".chalice" / "policy-prod.json").unlink()
    with pytest.raises(PackageRequestError, match=r"\.chalice/policy-prod\.json, which does not"):
        check_request(FLAVORS["lite"], "prod", "cloudformation", project / ".chalice/config.json")


@pytest.mark.parametrize(
    ("extra", "error"),
    [({}, REGION_HINT), ({"AWS_DEFAULT_REGION": "eu-west-1"}, CREDENTIALS_HINT)],
    ids=["no-region", "no-credentials"],
)
def test_deploy_without_region_or_credentials_is_one_line(
    extra: dict[str, str], error: str, tmp_path: Path, untouched_checkout: object
) -> None:
    env = no_aws(tmp_path, **extra)
    assert the_one_error(python("deployment.deploy", "--stage", "prod", env=env)) == error
    # Through make: the checks run before the runtime is built (nothing is built here).
    result = run("make", "-s", "-o", "venv", "deploy", "STAGE=prod", env=env)
    assert the_one_error(result) == error
    assert result.stdout == ""


def test_batch_setup_without_region_is_one_line(tmp_path: Path) -> None:
    with_batch(tmp_path / "project", ("prod-tensorflow",))
    result = python("deployment.batch_setup", "--stage", "prod-tensorflow",
                    "--notification-only", "--project-dir", tmp_path / "project",
                    env=no_aws(tmp_path))  # fmt: skip
    assert the_one_error(result) == REGION_HINT.replace("STAGE=prod", "STAGE=prod-tensorflow")


def test_batch_setup_of_a_stage_without_a_batch_path_says_how_to_switch_it_on() -> None:
    assert the_one_error(python("deployment.batch_setup", "--stage", "prod")) == (
        "stage prod has no batch path (its environment_variables name no BATCH_*_QUEUE): "
        "python -m deployment.configure --bucket B --model NAME --stage prod --batch "
        "switches it on"
    )


def test_deploy_to_a_missing_bucket_is_one_line(project: Path, tmp_path: Path) -> None:
    """A bucket no test creates (moto's state is shared by every server in a process);
    --check: whatever happens, nothing is deployed."""
    bucket = f"absent-{uuid.uuid4().hex[:12]}"
    configure(project, Request(bucket, "m", ("prod",)))
    with MotoServer() as aws:
        env = no_aws(tmp_path, **LOCAL_AWS_ENV, AWS_ENDPOINT_URL=aws.url)
        result = python("deployment.deploy", "--stage", "prod", "--check", "--project-dir",
                        project, env=env)  # fmt: skip
    assert the_one_error(result) == (
        f"bucket {bucket} (MODEL_BUCKET of stage prod) does not exist: create it "
        f"(aws s3 mb s3://{bucket}), or point the stage at yours: python -m "
        "deployment.configure --bucket B --model NAME --stage prod"
    )


@pytest.mark.parametrize(
    "module",
    ["deployment.deploy", "deployment.batch_setup", "deployment.api_keys", "deployment.package"],
)
def test_a_project_dir_without_chalice_config_is_one_line(
    module: str, tmp_path: Path, untouched_checkout: object
) -> None:
    result = python(module, "--stage", "prod", "--project-dir", tmp_path)
    assert the_one_error(result).endswith(
        "has no .chalice/config.json: run it from the project's directory (where app.py and "
        ".chalice/ are)"
    )


@pytest.mark.parametrize("module", ["deployment.deploy", "deployment.api_keys", "layer_build"])
def test_an_unknown_stage_is_one_line(module: str, untouched_checkout: object) -> None:
    assert the_one_error(python(module, "--stage", "staging")) == (
        f"no stage 'staging' in .chalice/config.json; stages: {STAGES}"
    )


def test_make_deploy_without_a_stage_is_one_line() -> None:
    result = run("make", "-s", "-o", "venv", "deploy")
    assert the_one_error(result) == "make deploy STAGE=<stage> (stages: .chalice/config.json)"
