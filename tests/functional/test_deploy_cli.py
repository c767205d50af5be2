"""`make package` and `deployment.configure` as a user runs them (subprocesses): each
mistake is one `error: ` line, exit code 2, no traceback, before anything is built or
written; configure edits a copy of the project (never the checkout) and is idempotent."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployment.configure import as_text
from deployment.package import PackageRequestError, check_request
from deployment.stages import stage_location
from layer_build.flavors import FLAVORS
from project_paths import BUILD_DIR, CHALICE_DIR, PROJECT_DIR
from tests.cli_mistakes import the_one_error
from tests.deploy.conftest import load

pytestmark = pytest.mark.slow  # each test is a subprocess (make, chalice package)

BUCKET = "loan-models-123456789012-eu-west-1"
STAGES = "dev, prod, dev-tensorflow, prod-tensorflow"


def run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*map(str, command)], cwd=PROJECT_DIR, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip


def python(module: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", module, *args)


def fingerprint(*dirs: Path) -> dict[Path, str]:
    return {path: hashlib.sha256(path.read_bytes()).hexdigest()
            for folder in dirs if folder.exists() for path in sorted(folder.rglob("*"))
            if path.is_file()}  # fmt: skip


def build_entries() -> dict[Path, int]:
    """build/<flavor>/<what> of the checkout with mtimes (its trees are too big to hash)."""
    return {path: path.stat().st_mtime_ns for path in sorted(BUILD_DIR.glob("*/*"))}


@pytest.fixture
def untouched_checkout() -> Iterator[None]:
    """Fail if the test wrote into .chalice/ or build/ of the checkout."""
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
        (["--flavor", "huge"], "argument --flavor: invalid choice: 'huge'"),
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
        (["--bucket", BUCKET, "--model", "m", "--memory", "lots"], "argument --memory: invalid"),
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
