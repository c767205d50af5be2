"""`make package`: build the runtime, run `chalice package`, normalise, size-gate."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from layer_build.build import BUILD_DIR, PROJECT_DIR
from layer_build.flavors import Flavor
from layer_build.reproducible_zip import normalise
from layer_build.size_report import ZipSize, check_limits, measure, report

MERGE_TEMPLATES = Path(__file__).resolve().parent / "cfn"


def package_dir(flavor: Flavor) -> Path:
    return BUILD_DIR / flavor.name / "package"


def chalice_package(flavor: Flavor) -> list[ZipSize]:
    """`chalice package` the flavor's stage into build/<flavor>/package/ and gate sizes."""
    out = package_dir(flavor)
    shutil.rmtree(out, ignore_errors=True)
    command = [str(Path(sys.executable).parent / "chalice"), "package", "--stage", flavor.stage]
    merge = MERGE_TEMPLATES / f"{flavor.name}.json"
    if merge.exists():
        command += ["--merge-template", str(merge)]
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    shown = out.relative_to(PROJECT_DIR)
    print(f"==> [{flavor.name}] chalice package --stage {flavor.stage} -> {shown}")
    subprocess.run([*command, str(out)], cwd=PROJECT_DIR, env=env, check=True)
    zips = sorted(out.glob("*.zip"))
    for path in zips:
        normalise(path)
    sizes = [measure(path) for path in zips]
    print(report(flavor, sizes))
    check_limits(flavor, sizes)
    return sizes
