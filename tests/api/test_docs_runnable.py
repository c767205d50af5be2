"""Docs that can't drift: every runnable example of README.md and docs/*.md (the
quickstart's session, the curl and tritonclient examples; tests/docs_runnable.py says how
they are marked and compared) runs against one `make serve` stack serving the demo model
(trained once into the cache, as make serve trains it) and prints what the page shows."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from project_paths import PROJECT_DIR
from tests.api.stack_process import Stack, running_stack
from tests.docs_runnable import Example, examples, mismatch
from tests.trained_demo import trained_demo

pytestmark = pytest.mark.slow

PAGES = [PROJECT_DIR / "README.md", *sorted((PROJECT_DIR / "docs").glob("*.md"))]
EXAMPLES = [example for page in PAGES for example in examples(page, PROJECT_DIR)]
DOCS_URL = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, str, Path]]:
    """(the stack, its URL, a working folder whose artifacts/demo is the served demo)."""
    work = tmp_path_factory.mktemp("docs")
    demo = work / "artifacts" / "demo"
    shutil.copytree(trained_demo(), demo)
    with running_stack(["--demo-dir", str(demo)], 7, 300.0, work) as running:
        [url] = re.findall(r"http://127\.0\.0\.1:\d+", running.curls[0])
        yield running, url, work


def test_the_docs_have_runnable_examples() -> None:
    pages = {example.page for example in EXAMPLES}
    assert {"README.md", "docs/quickstart.md", "docs/api.md"} <= pages
    assert any("tritonclient" in example.code for example in EXAMPLES)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.id)
def test_each_runnable_example_prints_what_its_page_shows(
    example: Example, stack: tuple[Stack, str, Path]
) -> None:
    _, url, work = stack
    code = example.code.replace(DOCS_URL, url).replace("127.0.0.1:8000", url[len("http://") :])
    if example.language == "python":
        command = [sys.executable, "-c", code]
    else:
        command = ["bash", "-o", "pipefail", "-c", code]
    env = {**os.environ, "TMPDIR": str(work), "PATH": f"{Path(sys.executable).parent}:"
           f"{os.environ['PATH']}"}  # fmt: skip
    result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    shown = [line.replace(DOCS_URL, url) for line in example.shown]
    problem = mismatch(shown, result.stdout)
    assert problem is None, f"{example.id}: {problem}"
