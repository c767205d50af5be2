"""The walk: every mistake of tests/cli_mistakes.MISTAKES made through `make`, as a user
would, ends in one `error:` line in make's words (variables, not options), exit 2, with
nothing before it (no TensorFlow or absl lines, no usage block, no traceback) and, unless
the mistake is inside the model, no server started."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from project_paths import PROJECT_DIR
from tests.cli_mistakes import MISTAKES, Mistake, command_line, the_one_error

pytestmark = pytest.mark.slow  # a make and a Python start each: in make test, not test-fast

#: A Keras 3 Sequential model's config whose output is a softmax over 3 classes: all the
#: stack reads before asking for LABELS.
CLASSIFIER_CONFIG = {"class_name": "Sequential", "config": {"name": "s", "layers": [
    {"class_name": "InputLayer", "config": {"name": "x", "batch_shape": [None, 4]}},
    {"class_name": "Dense", "config": {"name": "d", "units": 3, "activation": "softmax"}},
]}}  # fmt: skip


@pytest.fixture
def files(tmp_path: Path) -> Path:
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "notes.keras").write_text("my notes, not a model\n")
    (folder / "model.txt").write_text("weights\n")
    (folder / "garbled.keras").write_bytes(b"PK\x03\x04 a zip header, then nothing Keras reads")
    with zipfile.ZipFile(folder / "classifier.keras", "w") as archive:
        archive.writestr("config.json", json.dumps(CLASSIFIER_CONFIG))
    return folder


def make(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`make -s` as a user types it (-o venv: never reinstall the shared environment)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    env["TMPDIR"] = str(tmp_path)
    return subprocess.run(["make", "-s", "-o", "venv", *args], cwd=PROJECT_DIR, env=env,
                          capture_output=True, text=True, timeout=180)  # fmt: skip


@pytest.mark.parametrize("mistake", MISTAKES, ids=command_line)
def test_each_mistake_is_one_line_in_makes_words(
    mistake: Mistake, files: Path, tmp_path: Path
) -> None:
    result = make([arg.format(d=files) for arg in mistake.args], tmp_path)
    line = the_one_error(result)
    assert line.startswith(mistake.says.format(d=files)), result.stderr
    error, *rest = result.stderr.splitlines()
    assert error == f"error: {line}"  # nothing before it: no TensorFlow, absl or usage lines
    assert rest == [] or (len(rest) == 1 and rest[0].startswith("make: *** ")), result.stderr
    assert " --" not in line  # make's variables, not the options behind them
    if not mistake.servers_start:
        assert result.stdout == ""  # every check ran before any server started


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["localdev.stack", "--s3-port", "abc"],
         "--s3-port=abc is not a whole number (--help lists the options)"),
        (["localdev.stack", "--task", "regression"],
         "--task describes your model, but no --model= is given: add --model=path/to/model.keras"),
        (["modelops.publish", "--task", "regresion", "--bucket", "b"],
         "--task=regresion is not one of binary, classification, multilabel, regression "
         "(--help lists the options)"),
        (["deployment.package", "--flavor", "tensorflw"],
         "--flavor=tensorflw is not one of lite, tensorflow (--help lists the options)"),
    ],
)  # fmt: skip
def test_run_directly_the_same_mistakes_name_the_options(
    argv: list[str], says: str, tmp_path: Path
) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop("MAKE_VARIABLES", None)
    result = subprocess.run([sys.executable, "-m", *argv], cwd=PROJECT_DIR, env=env,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert the_one_error(result) == says
    assert result.stderr == f"error: {says}\n" and result.stdout == ""
