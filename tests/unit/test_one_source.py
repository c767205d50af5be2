"""Configuration from one source: the app's name, the batch handlers' names and batch
sizes are chalicelib.config's constants, which app.py registers and deployment sizes by;
which routes are public is the HTTP surface's (chalicelib.surfaces.routes)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import chalicelib
from chalicelib import config
from chalicelib.surfaces.routes import PUBLIC_ROUTES, is_public
from project_paths import PROJECT_DIR

ROOT = Path(chalicelib.__file__).resolve().parent.parent
DUMP = """
import json, app
print(json.dumps([[e.name, e.handler_string, e.queue, e.batch_size]
                  for e in app.app.event_sources]))
"""


def test_app_registers_the_batch_handlers_under_the_configured_names_and_sizes() -> None:
    queues = {config.BATCH_CHUNK_QUEUE: "c", config.BATCH_DEAD_LETTER_QUEUE: "d",
              config.BATCH_EVENTS_QUEUE: "e", config.BATCH_WORKER_BATCH_SIZE: "4"}  # fmt: skip
    out = subprocess.run([sys.executable, "-c", DUMP], cwd=PROJECT_DIR, env=os.environ | queues,
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    sources = {name: (handler, queue, size) for name, handler, queue, size
               in json.loads(out.splitlines()[-1])}  # fmt: skip
    assert sources == {
        config.CHUNK_HANDLER: (f"app.{config.CHUNK_HANDLER}", "c", 4),
        config.DEAD_LETTER_HANDLER: (f"app.{config.DEAD_LETTER_HANDLER}", "d",
                                     config.DEAD_LETTER_BATCH_SIZE),
        config.EVENTS_HANDLER: (f"app.{config.EVENTS_HANDLER}", "e", config.EVENTS_BATCH_SIZE),
    }  # fmt: skip


def _string_literals(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and type(n.value) is str]


def test_names_are_spelled_once_in_the_code() -> None:
    """The app's name, the handlers' names and the public routes' paths appear as string
    literals only where they are defined (tests and docs may repeat them)."""
    defined = {
        config.APP_NAME: ROOT / "chalicelib" / "config.py",
        config.CHUNK_HANDLER: ROOT / "chalicelib" / "config.py",
        config.DEAD_LETTER_HANDLER: ROOT / "chalicelib" / "config.py",
        config.EVENTS_HANDLER: ROOT / "chalicelib" / "config.py",
    }
    sources = [p for d in ("chalicelib", "deployment", "localdev", "modelops", "benchmarks")
               for p in (ROOT / d).rglob("*.py")] + [ROOT / "app.py"]  # fmt: skip
    for path in sources:
        literals = _string_literals(path)
        for name, home in defined.items():
            if path != home:
                assert not any(name in text for text in literals), (name, str(path))


def test_the_openapi_title_is_the_app_name() -> None:
    document = json.loads((ROOT / "chalicelib" / "openapi.json").read_text())
    assert document["info"]["title"] == config.APP_NAME


def test_public_routes_are_the_http_surfaces_and_not_configuration() -> None:
    assert not hasattr(config, "PUBLIC_ROUTES")
    assert is_public("get", "/health") and not is_public("POST", "/predict")
    assert all(method == "GET" for method, _ in PUBLIC_ROUTES)
