"""`make package`: build the runtime, run `chalice package`, normalise, size-gate.

python -m deployment.package --flavor lite|tensorflow [--stage S]
    [--format cloudformation|terraform] [--api-key]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from chalice.cli.factory import CLIFactory

from deployment import templates
from deployment.stages import stage_setting
from layer_build.build import BuildFailed, build_runtime
from layer_build.flavors import FLAVORS, Flavor
from layer_build.proof import ProofFailed
from layer_build.reproducible_zip import normalise
from layer_build.size_report import SizeLimitExceeded, ZipSize, check_limits, measure, report
from project_paths import BUILD_DIR, PROJECT_DIR

FORMATS = ("cloudformation", "terraform")


class PackageOptionUnsupported(ValueError):
    """An option the chosen package format can't carry."""


def _refuse_api_key() -> None:
    raise PackageOptionUnsupported(
        "--api-key is a CloudFormation merge template; Terraform output takes none"
    )


def package_dir(flavor: Flavor) -> Path:
    """Where `make package` writes: build/<flavor>/package/."""
    return BUILD_DIR / flavor.name / "package"


def chalice_package(
    flavor: Flavor, stage: str | None = None, pkg_format: str = "cloudformation",
    api_key: bool = False, project_dir: Path = PROJECT_DIR, out: Path | None = None,
) -> list[ZipSize]:  # fmt: skip
    """`chalice package` a stage of `project_dir` (with its vendor/) into `out` (default
    build/<flavor>/package/), add what Chalice can't express (ephemeral storage, optional
    API key and usage plan), and gate sizes. The merge template goes beside `out`."""
    stage = stage or flavor.stage
    if api_key and pkg_format != "cloudformation":
        _refuse_api_key()
    out = out or package_dir(flavor)
    shutil.rmtree(out, ignore_errors=True)
    config_path = project_dir / ".chalice" / "config.json"
    retention_days = stage_setting(stage, "log_retention_in_days", config_path)
    overrides: dict[str, Any] = {}
    merge = None
    if pkg_format == "cloudformation":
        merge = _cloudformation_merge_template(
            flavor, bool(retention_days), api_key, out.parent / "merge-template.json"
        )
    elif retention_days:
        overrides["log_retention_in_days"] = 0  # Chalice's Terraform output has no log groups
    print(f"==> [{flavor.name}] chalice package --stage {stage} --pkg-format {pkg_format}"
          f"{f' --merge-template {_shown(merge)}' if merge else ''} -> {_shown(out)}")  # fmt: skip
    _run_chalice_package(project_dir, stage, pkg_format, merge, overrides, out)
    if pkg_format == "terraform":
        if retention_days:
            templates.write_json(templates.terraform_log_group(retention_days),
                                 out / "log_group.tf.json")  # fmt: skip
        if flavor.ephemeral_storage_mb:
            templates.write_json(
                templates.terraform_ephemeral_storage(flavor.ephemeral_storage_mb),
                out / "ephemeral_storage_override.tf.json")  # fmt: skip
    zips = sorted(out.glob("*.zip"))
    for path in zips:
        normalise(path)
    sizes = [measure(path) for path in zips]
    print(report(flavor, sizes))
    check_limits(flavor, sizes)
    return sizes


def _shown(path: Path) -> Path:
    return path.relative_to(PROJECT_DIR) if path.is_relative_to(PROJECT_DIR) else path


def _run_chalice_package(
    project_dir: Path, stage: str, pkg_format: str, merge: Path | None,
    overrides: dict[str, Any], out: Path,
) -> None:  # fmt: skip
    """What `chalice package` does, with config overrides the command line can't pass."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # packaging calls no AWS API
    factory = CLIFactory(project_dir=str(project_dir))
    config = factory.create_config_obj(stage, user_provided_params=overrides)
    packager = factory.create_app_packager(
        config, factory.create_package_options(), pkg_format, "json",
        str(merge) if merge else None)  # fmt: skip
    packager.package_app(config, str(out), stage)


def _cloudformation_merge_template(
    flavor: Flavor, log_retention: bool, api_key: bool, path: Path
) -> Path | None:
    fragments = []
    if log_retention:
        fragments.append(templates.log_group_name_fix())
    if flavor.ephemeral_storage_mb:
        fragments.append(templates.ephemeral_storage(flavor.ephemeral_storage_mb))
    if api_key:
        fragments.append(templates.api_key())
    if not fragments:
        return None
    return templates.write_json(templates.compose(fragments), path)


def main(argv: list[str] | None = None) -> int:
    """`make package`: build the flavor's runtime into vendor/, then package a stage."""
    parser = argparse.ArgumentParser(
        prog="python -m deployment.package", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--flavor", choices=sorted(FLAVORS), default="lite")
    parser.add_argument("--stage", help="Chalice stage to package (default: the flavor's)")
    parser.add_argument(
        "--format", choices=FORMATS, default="cloudformation", help="chalice package --pkg-format"
    )
    parser.add_argument(
        "--api-key",
        action="store_true",
        help="CloudFormation only: API key, usage plan, throttling",
    )
    args = parser.parse_args(argv)
    flavor = FLAVORS[args.flavor]
    try:
        if args.api_key and args.format != "cloudformation":
            _refuse_api_key()
        build_runtime(flavor)
        chalice_package(flavor, args.stage, args.format, args.api_key)
    except (BuildFailed, ProofFailed, SizeLimitExceeded, PackageOptionUnsupported) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
