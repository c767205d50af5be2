"""Reference pages checked against the one place each thing is defined: every
environment variable (chalicelib/config.py, project_paths.py) and make variable
(the Makefile's `## NAME` lines) in docs/configuration.md; every error code
(chalicelib/errors.py and the codes chalicelib raises) and every command-line mistake
(tests/cli_mistakes.MISTAKES) in docs/troubleshooting.md; every target and variable in
`make help`."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

import project_paths
from chalicelib import config
from project_paths import PROJECT_DIR
from tests.cli_mistakes import MISTAKES, command_line

MAKEFILE = (PROJECT_DIR / "Makefile").read_text()
CONFIGURATION = (PROJECT_DIR / "docs" / "configuration.md").read_text()
TROUBLESHOOTING = (PROJECT_DIR / "docs" / "troubleshooting.md").read_text()

#: Names the Makefile assigns itself (not a user's to set).
INTERNAL = {name for name in re.findall(r"^([A-Z][A-Z0-9_]*) *:?=", MAKEFILE, re.M)}


def environment_variables() -> set[str]:
    names = {value for name, value in vars(config).items()
             if name.isupper() and isinstance(value, str) and value == name}  # fmt: skip
    return names | {project_paths.CACHE_DIR_VARIABLE}


def make_variables() -> list[str]:
    """The variables `make help` documents (`## NAME  text` lines)."""
    return re.findall(r"^## ([A-Z][A-Z0-9_]*) ", MAKEFILE, re.M)


def make_targets() -> list[str]:
    """Rules (not the target-specific `target: export VAR := ...` lines)."""
    return sorted(set(re.findall(r"^([a-z][a-z-]*):(?! export)", MAKEFILE, re.M)))


def error_codes() -> set[str]:
    sources = [p.read_text() for p in (PROJECT_DIR / "chalicelib").rglob("*.py")]
    sources.append((PROJECT_DIR / "app.py").read_text())
    codes = {"internal_error"}
    for text in sources:
        codes |= set(re.findall(r'\b(?:default_)?code(?:=| = )"([a-z_]+)"', text))
    return codes


def test_the_sources_define_what_is_checked() -> None:
    assert {"MODEL_BUCKET", "API_AUTH", "BATCH_CHUNK_QUEUE"} <= environment_variables()
    assert {"MODEL", "LABELS", "FLAVOR", "STAGE", "JOBS"} <= set(make_variables())
    assert {"invalid_json", "not_served", "model_unavailable"} <= error_codes()


@pytest.mark.parametrize("name", sorted(environment_variables()))
def test_configuration_lists_every_environment_variable(name: str) -> None:
    assert f"`{name}`" in CONFIGURATION


@pytest.mark.parametrize("name", make_variables())
def test_configuration_lists_every_make_variable(name: str) -> None:
    assert f"`{name}`" in CONFIGURATION


def test_every_variable_a_recipe_reads_is_documented() -> None:
    read = set(re.findall(r"\$\(([A-Z][A-Z0-9_]*)\)", MAKEFILE))
    read |= set(re.findall(r"serve_option,([A-Z][A-Z0-9_]*),", MAKEFILE))
    assert read - INTERNAL - {"MAKEFILE_LIST"} <= set(make_variables())


@pytest.mark.parametrize("code", sorted(error_codes()))
def test_troubleshooting_lists_every_error_code(code: str) -> None:
    assert f"`{code}`" in TROUBLESHOOTING


@pytest.mark.parametrize("mistake", MISTAKES, ids=command_line)
def test_troubleshooting_lists_every_command_line_mistake(mistake: object) -> None:
    assert f"`{command_line(mistake)}`" in TROUBLESHOOTING  # type: ignore[arg-type]


def test_make_help_lists_every_target_and_variable_in_one_line_each() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL")}
    shown = subprocess.run(["make", "-s", "help"], cwd=PROJECT_DIR, env=env, check=True,
                           capture_output=True, text=True, timeout=30).stdout  # fmt: skip
    listed = re.findall(r"^  ([a-z][a-z-]*|[A-Z][A-Z0-9_]*) +\S", shown, re.M)
    assert sorted(listed) == sorted(make_targets() + make_variables())
    assert len(listed) == len(set(listed))  # one line each


def test_the_readme_is_a_front_door_whose_links_resolve() -> None:
    readme = (PROJECT_DIR / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    for target in re.findall(r"\]\((docs/[^)#]*)", readme):
        assert (PROJECT_DIR / target).exists(), target
    assert "`make serve`" in readme or "make serve" in readme
    assert "first" in readme.lower()  # the first run's cost is stated
