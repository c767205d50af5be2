"""Your own bucket and model: `deployment.configure` on a copy of the project, then
`make package`'s packaging and cfn-lint; and a failed package never replaces a good one."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployment.batch_stack import batch_stack
from deployment.cfn_lint import cfn_lint_errors
from deployment.configure import Request, configure
from deployment.package import ChalicePackageFailed, chalice_package
from deployment.policy import batch_problems, privilege_problems, stage_policy
from deployment.project import copy_project
from layer_build.flavors import FLAVORS
from project_paths import CHALICE_DIR
from tests.deploy.conftest import load
from tests.deploy.test_templates import (
    check_cloudformation_batch_path,
    logs_where_the_role_may_write,
)

pytestmark = pytest.mark.deploy

BUCKET = "acme-models-123456789012-eu-west-1"
MODEL = "credit-risk"


def test_a_configured_stage_packages_with_matching_names_and_least_privilege(
    lite_vendor: Path, tmp_path: Path
) -> None:
    tracked = {path.name: path.read_text() for path in CHALICE_DIR.glob("*.json")}
    project = copy_project(tmp_path / "project", lite_vendor)
    diffs, notes = configure(project, Request(BUCKET, MODEL, ("prod",), 512, batch=True))
    assert diffs and notes == []
    chalice_dir = project / ".chalice"
    policy = stage_policy("prod", chalice_dir)
    assert privilege_problems(policy) == []

    out = tmp_path / "package"
    chalice_package(FLAVORS["lite"], "prod", api_key=True, project_dir=project, out=out)
    assert cfn_lint_errors(out / "sam.json") == []
    resources = load(out / "sam.json")["Resources"]
    function = resources["APIHandler"]["Properties"]
    assert function["Environment"]["Variables"]["MODEL_BUCKET"] == BUCKET
    assert function["Environment"]["Variables"]["MODEL_PREFIX"] == f"models/{MODEL}"
    assert function["MemorySize"] == 512
    role_policy = resources["ApiHandlerRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    assert role_policy == policy
    reads = [s["Resource"] for s in role_policy["Statement"] if "s3:GetObject" in s["Action"]]
    paths = (f"models/{MODEL}", "batch/prod/in", "batch/prod/out")
    assert reads == [f"arn:aws:s3:::{BUCKET}/{path}/*" for path in paths]
    assert batch_problems("prod", chalice_dir) == []
    check_cloudformation_batch_path(resources, batch_stack("prod", chalice_dir / "config.json"),
                                    policy)  # fmt: skip
    assert logs_where_the_role_may_write(resources) == "/aws/lambda/keras-model-serving-prod"
    # The other prod stage kept its own bucket, model and log group.
    twin = stage_policy("prod-tensorflow", chalice_dir)
    assert privilege_problems(twin) == []
    assert [s["Resource"] for s in twin["Statement"] if "s3:GetObject" in s["Action"]] == [
        "arn:aws:s3:::loan-models-prod/models/loan-grade/*"
    ]
    assert {path.name: path.read_text() for path in CHALICE_DIR.glob("*.json")} == tracked


def test_a_failed_package_leaves_the_previous_one(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project", tmp_path / "no-vendor")
    out = tmp_path / "build" / "lite" / "dev-cloudformation"
    (out / "sam.json").parent.mkdir(parents=True)
    (out / "sam.json").write_text('{"previous": "good package"}')
    policy = project / ".chalice" / "policy-dev.json"
    good = policy.read_text()
    policy.write_text("{not json")  # Chalice fails while packaging
    with pytest.raises(ChalicePackageFailed, match="Expecting property name"):
        chalice_package(FLAVORS["lite"], "dev", project_dir=project, out=out)
    assert load(out / "sam.json") == {"previous": "good package"}
    assert sorted(p.name for p in out.parent.iterdir()) == ["dev-cloudformation"]

    policy.write_text(good)
    chalice_package(FLAVORS["lite"], "dev", project_dir=project, out=out)
    assert "APIHandler" in load(out / "sam.json")["Resources"]
    assert (out / "merge-template.json").exists()
    assert sorted(p.name for p in out.parent.iterdir()) == ["dev-cloudformation"]
