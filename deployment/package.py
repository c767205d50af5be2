"""`make package`: check the request, build the runtime, run `chalice package`,
normalise, size-gate.

python -m deployment.package --flavor lite|tensorflow [--stage S]
    [--format cloudformation|terraform] [--api-key]

The routes' auth is the stage's API_AUTH (iam, api_key or none; Chalice sets the
stage's variables before importing app.py); `--api-key` packages the stage with
API_AUTH=api_key whatever its setting. With api_key, the package adds the key, a usage
plan with throttling and a quota, and the plan-key binding (a merge template fragment,
or api_key.tf.json for Terraform). The runtime is built for the stage's
`lambda_architecture` (x86_64 or arm64). Terraform output gets today's version
constraints (`deployment.terraform`).

Writes build/<flavor>/<stage>-<format>/; a failed run leaves the previous one there.
A mistake in the request (unknown stage or format, a flavor without the stage's engine)
is one `error:` line and exit code 2, before anything is built.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chalicelib.config import API_AUTH, MODEL_ENGINE, ConfigurationError, Settings
from chalicelib.engines.registry import engine_spec
from deployment import templates, terraform
from deployment.batch_stack import (
    BatchStack,
    BatchStackError,
    declared_batch,
    shared_resources,
)
from deployment.cli import OneLineParser
from deployment.stages import (
    NotAChaliceProject,
    UnknownStage,
    function_name,
    stage_architecture,
    stage_auth,
    stage_environment,
    stage_setting,
)
from layer_build.build import BuildFailed, build_runtime
from layer_build.flavors import FLAVORS, MB, Flavor
from layer_build.function_bytecode import add_bytecode
from layer_build.platforms import Architecture, architecture
from layer_build.proof import ProofFailed
from layer_build.python312 import python312
from layer_build.reproducible_zip import normalise
from layer_build.size_report import SizeLimitExceeded, ZipSize, check_limits, measure, report
from modelops.cli_errors import OTHER_FAILURE_EXIT, fail
from project_paths import BUILD_DIR, CHALICE_CONFIG, PROJECT_DIR, user_cache_dir

FORMATS = ("cloudformation", "terraform")


class PackageRequestError(ValueError):
    """A stage, format or flavor `make package` refuses before building anything."""


class ChalicePackageFailed(RuntimeError):
    """`chalice package` itself failed; the message is its last line."""


def package_dir(flavor: Flavor, stage: str, pkg_format: str, build_dir: Path = BUILD_DIR) -> Path:
    """Where `make package` writes: build/<flavor>/<stage>-<format>/."""
    return build_dir / flavor.name / f"{stage}-{pkg_format}"


def check_request(
    flavor: Flavor, stage: str, pkg_format: str, config_path: Path = CHALICE_CONFIG
) -> None:
    """Refuse an unknown stage or format, or a flavor without the stage's engine (the
    function would fail every request), before anything is built."""
    if pkg_format not in FORMATS:
        raise PackageRequestError(f"no format {pkg_format!r}; formats: {', '.join(FORMATS)}")
    try:
        engine = stage_environment(stage, config_path).get(MODEL_ENGINE, Settings.engine)
        architecture(stage_architecture(stage, config_path))
    except (UnknownStage, NotAChaliceProject) as exc:
        raise PackageRequestError(str(exc)) from None
    except ValueError as exc:
        raise PackageRequestError(f"stage {stage}: lambda_architecture: {exc}") from None
    try:
        engine_spec(engine)
    except ValueError as exc:
        raise PackageRequestError(f"stage {stage}: {MODEL_ENGINE}: {exc}") from None
    try:
        stage_auth(stage, config_path)
    except ConfigurationError as exc:
        raise PackageRequestError(f"stage {stage}: {exc}") from None
    policy_file = stage_setting(stage, "iam_policy_file", config_path)
    if stage_setting(stage, "autogen_policy", config_path) is False and not (
            config_path.parent / str(policy_file)).is_file():  # fmt: skip
        raise PackageRequestError(
            f"stage {stage} names .chalice/{policy_file}, which does not exist: restore it, "
            "or write it with python -m deployment.configure"
        )
    try:
        declared_batch(stage, config_path)
    except BatchStackError as exc:
        raise PackageRequestError(str(exc)) from None
    shared = shared_resources(config_path)
    if shared:
        raise PackageRequestError(f"{'; '.join(shared)}: give each stage its own")
    if engine not in flavor.engines:
        able = [name for name, other in FLAVORS.items() if engine in other.engines]
        raise PackageRequestError(
            f"stage {stage} uses {MODEL_ENGINE}={engine}, which the {flavor.name} flavor "
            f"lacks; use FLAVOR={' or FLAVOR='.join(able)}"
        )


@contextmanager
def _replaced_when_complete(out: Path) -> Iterator[Path]:
    """A sibling directory to build into; it replaces `out` only if the block succeeds,
    so a failed run leaves the previous package where it was."""
    partial, previous = out.with_name(f".{out.name}.partial"), out.with_name(f".{out.name}.old")
    for leftover in (partial, previous):
        shutil.rmtree(leftover, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        yield partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if out.exists():
        out.rename(previous)
    partial.rename(out)
    shutil.rmtree(previous, ignore_errors=True)


def chalice_package(
    flavor: Flavor, stage: str | None = None, pkg_format: str = "cloudformation",
    api_key: bool = False, project_dir: Path = PROJECT_DIR, out: Path | None = None,
) -> list[ZipSize]:  # fmt: skip
    """`chalice package` a stage of `project_dir` (with its vendor/) into `out` (default
    build/<flavor>/<stage>-<format>/), add what Chalice can't express (the function's
    name, ephemeral storage, optional API key and usage plan), and gate sizes. `out` is
    replaced only once the new package is complete; its merge template goes inside it."""
    stage = stage or flavor.stage
    config_path = project_dir / ".chalice" / "config.json"
    check_request(flavor, stage, pkg_format, config_path)
    out = out or package_dir(flavor, stage, pkg_format, project_dir / "build")
    with _replaced_when_complete(out) as partial:
        sizes = _package_into(flavor, stage, pkg_format, api_key, project_dir, partial, out)
    return sizes


def _package_into(
    flavor: Flavor, stage: str, pkg_format: str, api_key: bool, project_dir: Path,
    partial: Path, out: Path,
) -> list[ZipSize]:  # fmt: skip
    config_path = project_dir / ".chalice" / "config.json"
    retention_days = stage_setting(stage, "log_retention_in_days", config_path)
    stack = declared_batch(stage, config_path)
    auth = stage_auth(stage, config_path)
    overrides: dict[str, Any] = {}
    if api_key and auth != "api_key":
        auth = "api_key"  # wins over the stage's variables when Chalice imports app.py
        overrides["environment_variables"] = {API_AUTH: auth}
    merge = None
    if pkg_format == "cloudformation":
        merge = _cloudformation_merge_template(
            flavor, function_name(stage, config_path), retention_days, auth == "api_key", stack,
            partial / "merge-template.json")  # fmt: skip
    elif retention_days:
        overrides["log_retention_in_days"] = 0  # Chalice's Terraform output has no log groups
    merged = " --merge-template merge-template.json" if merge else ""
    arch = stage_architecture(stage, config_path)
    print(f"==> [{flavor.name} {arch}] chalice package --stage {stage} --pkg-format "
          f"{pkg_format}{merged} (API_AUTH={auth}) -> {_shown(out)}", flush=True)  # fmt: skip
    run_chalice_package(project_dir, stage, pkg_format, merge, overrides, partial)
    if pkg_format == "terraform":
        _terraform_extras(flavor, partial, stack, retention_days, auth == "api_key")
    zips = sorted(partial.glob("*.zip"))
    for path in zips:
        if "layer" not in path.name:  # the layers' trees are precompiled when built
            add_bytecode(path, python312())
            normalise(path)
        else:  # the same layer, stage after stage: normalised once
            normalise(path, cache_dir=user_cache_dir() / "normalised-layers")
    sizes = [measure(path) for path in zips]
    print(report(flavor, sizes))
    check_limits(flavor, sizes)
    return sizes


def _terraform_extras(
    flavor: Flavor, partial: Path, stack: BatchStack | None, retention_days: int | None,
    api_key: bool,
) -> None:  # fmt: skip
    """What Chalice's Terraform lacks, as files beside it; today's version constraints."""
    terraform.modernise(partial / "chalice.tf.json")
    if api_key:
        templates.write_json(templates.terraform_api_key(), partial / "api_key.tf.json")
    handlers = tuple(q.handler for q in stack.queues) if stack else ()
    if stack:
        templates.write_json(templates.terraform_batch_queues(stack),
                             partial / "batch_queues.tf.json")  # fmt: skip
        templates.write_json(templates.terraform_batch_event_sources(stack),
                             partial / "batch_event_sources_override.tf.json")  # fmt: skip
    functions = (templates.TERRAFORM_FUNCTION, *handlers)
    if retention_days:
        templates.write_json(templates.terraform_log_group(retention_days, functions),
                             partial / "log_group.tf.json")  # fmt: skip
    if flavor.ephemeral_storage_mb:
        templates.write_json(
            templates.terraform_ephemeral_storage(flavor.ephemeral_storage_mb, functions),
            partial / "ephemeral_storage_override.tf.json")  # fmt: skip


def _shown(path: Path) -> Path:
    return path.relative_to(PROJECT_DIR) if path.is_relative_to(PROJECT_DIR) else path


def run_chalice_package(
    project_dir: Path, stage: str, pkg_format: str, merge: Path | None,
    overrides: dict[str, Any], out: Path,
) -> None:  # fmt: skip
    """`chalice package` in a process of its own (`deployment.chalice_run`): Chalice sets
    the stage's variables before importing app.py, so each stage gets a fresh import and
    this process's environment is left alone. AWS_CHALICE_CLI_MODE, as Chalice's own
    command sets it: app.py then leaves an archived runtime packed (no unpack to /tmp)."""
    project_dir = project_dir.resolve()
    command = [sys.executable, "-m", "deployment.chalice_run", str(project_dir), stage,
               pkg_format, str(out.resolve()), str(merge.resolve()) if merge else "",
               json.dumps(overrides)]  # fmt: skip
    env = {
        **os.environ,
        "AWS_CHALICE_CLI_MODE": "true",
        "PYTHONPATH": os.pathsep.join([str(PROJECT_DIR), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(command, cwd=project_dir, env=env, capture_output=True, text=True,
                            check=False)  # fmt: skip
    if result.returncode != 0:
        lines = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()
        raise ChalicePackageFailed(f"chalice package --stage {stage} failed: {lines[-1]}")


def _cloudformation_merge_template(
    flavor: Flavor, function: str, retention_days: int | None, api_key: bool,
    stack: BatchStack | None, path: Path,
) -> Path:  # fmt: skip
    fragments = [templates.function_name(function)]
    if stack:
        fragments.append(templates.batch_queues(stack, log_groups=bool(retention_days)))
    if retention_days:
        fragments.append(templates.log_group_name(function))
    if flavor.ephemeral_storage_mb:
        queues = stack.queues if stack else ()
        functions = (templates.FUNCTION_LOGICAL_ID, *(q.logical_id for q in queues))
        fragments.append(templates.ephemeral_storage(flavor.ephemeral_storage_mb, functions))
    if api_key:
        fragments.append(templates.api_key())
    return templates.write_json(templates.compose(fragments), path)


def main(argv: list[str] | None = None) -> int:
    """`make package`: build the flavor's runtime into vendor/, then package a stage."""
    parser = OneLineParser(
        prog="python -m deployment.package", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--flavor", choices=sorted(FLAVORS), default="lite")
    parser.add_argument("--stage", help="Chalice stage to package (default: the flavor's)")
    parser.add_argument(
        "--format", default="cloudformation", help=f"chalice package --pkg-format: {FORMATS}"
    )
    parser.add_argument(
        "--api-key",
        action="store_true",
        help="API_AUTH=api_key whatever the stage says: API key, usage plan, throttling",
    )
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    flavor = FLAVORS[args.flavor]
    stage = args.stage or flavor.stage
    project = args.project_dir
    config_path = project / ".chalice" / "config.json"
    try:
        check_request(flavor, stage, args.format, config_path)
    except PackageRequestError as exc:
        return fail(str(exc))
    arch = architecture(stage_architecture(stage, config_path))
    build, vendor = project / "build", project / "vendor"
    try:
        build_runtime(flavor, vendor_dir=vendor, work_dir=build, arch=arch)
        sizes = chalice_package(flavor, stage, args.format, args.api_key, project_dir=project)
    except (BuildFailed, ProofFailed, SizeLimitExceeded, ChalicePackageFailed) as exc:
        return fail(str(exc), OTHER_FAILURE_EXIT)
    print(cost_line(arch, stage, config_path))
    print(f"==> {_shown(package_dir(flavor, stage, args.format, build))}: "
          f"{sum(s.zipped for s in sizes) / MB:.1f} MB of zips; build/ holds "
          f"{_tree_mb(build):.1f} MB, vendor/ {_tree_mb(vendor):.1f} MB (make clean frees "
          "both)")  # fmt: skip
    if declared_batch(stage, config_path) is not None:
        print("once deployed, batch input events need the bucket's notification: python -m "
              f"deployment.batch_setup --stage {stage} --notification-only")  # fmt: skip
    return 0


def cost_line(arch: Architecture, stage: str, config_path: Path = CHALICE_CONFIG) -> str:
    """What a GB-second costs on the stage's architecture (Lambda list price)."""
    memory = int(stage_setting(stage, "lambda_memory_size", config_path) or 128)
    return (f"==> {arch.name}: ${arch.price_per_gb_second:.10f} per GB-s; at {memory} MB, "
            f"${arch.price_per_gb_second * memory / 1024 * 1_000_000:.2f} per million "
            "function-seconds (arm64 is 20 % cheaper than x86_64)")  # fmt: skip


def _tree_mb(path: Path) -> float:
    if not path.exists():
        return 0.0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) / MB


if __name__ == "__main__":
    sys.exit(main())
