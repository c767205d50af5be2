"""The OpenAPI document `GET /openapi.json` serves: the committed `chalicelib/openapi.json`
with its per-task parts (`ModelInfo`'s task enum, each task's prediction shape and
`Prediction`, one of them) filled from the task registry, so a task's module documents it."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from chalicelib.tasks import TASKS

_OPENAPI = Path(__file__).parent.parent / "openapi.json"


def document() -> dict[str, Any]:
    """The committed document, its task parts from the registry."""
    # bounded: the committed document, never a request body
    served: dict[str, Any] = json.loads(_OPENAPI.read_text())
    schemas = served["components"]["schemas"]
    schemas["ModelInfo"]["properties"]["task"]["enum"] = list(TASKS)
    names = []
    for task in TASKS.values():
        name, schema = task.prediction_schema()
        schemas[name] = schema
        names.append(name)
    schemas["Prediction"]["oneOf"] = [
        {"$ref": f"#/components/schemas/{name}"} for name in dict.fromkeys(names)
    ]
    return served


@functools.cache
def document_text() -> str:
    """`document()` as served: built once per process."""
    return json.dumps(document(), indent=2) + "\n"
