"""Run a packaged function the way Lambda does, without Lambda: unzip the function
into task/ (/var/task) and layers into opt/ (/opt), then a fresh isolated Python 3.12
whose sys.path is the standard library, those, and a directory holding only boto3."""

from __future__ import annotations

import json
import resource
import subprocess
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layer_build.cache import built_once
from layer_build.python312 import python312
from layer_build.wheels import install_wheels
from project_paths import user_cache_dir

DRIVER = Path(__file__).resolve().parent / "lambda_driver.py"
BOTO3_PIN = "boto3==1.44.8"  # the Lambda python3.12 runtime provides boto3


@dataclass(frozen=True)
class LambdaLayout:
    task: Path
    opt: Path
    boto3: Path
    environment: dict[str, str]


def boto3_only_dir() -> Path:
    """boto3 and its dependencies, nothing else: installed once into the user cache."""
    entry = user_cache_dir() / "boto3-runtime" / BOTO3_PIN

    def install(staging: Path) -> None:
        install_wheels(staging / "lib", BOTO3_PIN, with_dependencies=True,
                       cache_dir=user_cache_dir() / "pip")  # fmt: skip

    return built_once(entry, install) / "lib"


def unpack(package_dir: Path, into: Path) -> LambdaLayout:
    """Unzip deployment.zip into task/ and every *layer*.zip into opt/."""
    task, opt = into / "task", into / "opt"
    for path in sorted(package_dir.glob("*.zip")):
        with zipfile.ZipFile(path) as archive:
            archive.extractall(opt if "layer" in path.name else task)
    template = json.loads((package_dir / "sam.json").read_text())
    function = template["Resources"]["APIHandler"]["Properties"]
    environment = dict(function.get("Environment", {}).get("Variables", {}))
    return LambdaLayout(task, opt, boto3_only_dir(), environment)


def invoke(
    layout: LambdaLayout,
    events: list[dict[str, Any]],
    env: dict[str, str],
    repeat: int = 1,
    read_only_code: bool = False,
) -> dict[str, Any]:
    """Start a fresh interpreter (a cold start), invoke `events`, return the driver's report
    with the function's own stdout lines under "stdout", the process's wall seconds
    (interpreter start included) under "process_seconds" and its CPU seconds (user + system)
    under "cpu_seconds". `read_only_code`: write no bytecode, as on Lambda, where /var/task
    is read-only and every cold start compiles the function's modules (only the layer
    ships .pyc files); otherwise the first run's .pyc files speed up later ones."""
    request = {"env": {**layout.environment, **env}, "events": events, "repeat": repeat}
    flags = ["-B"] if read_only_code else []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(
        [python312(), "-I", "-S", *flags, str(DRIVER), str(layout.task), str(layout.opt),
         str(layout.boto3)],
        input=json.dumps(request), capture_output=True, text=True, env={"LANG": "C.UTF-8"},
    )  # fmt: skip
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f"the Lambda-like process failed:\n{result.stderr[-3000:]}")
    *printed, last = result.stdout.strip().splitlines()
    report: dict[str, Any] = json.loads(last)
    report["stdout"] = printed  # what the function printed: its log and EMF lines
    report["process_seconds"] = seconds
    # Children waited for meanwhile: only this one (other threads' children would count too).
    report["cpu_seconds"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return report
