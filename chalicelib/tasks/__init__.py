"""The one table of tasks (model kinds): name -> output checks and response shape.

The manifest names its task (absent: classification); the store probes the output
width the task expects, the service checks rows and builds responses with it, and
the publisher detects, verifies and compares outputs with it. Adding a task is an
entry here plus its module.
"""

from __future__ import annotations

from chalicelib.tasks.base import DEFAULT_THRESHOLD, Task
from chalicelib.tasks.binary import Binary
from chalicelib.tasks.classification import Classification
from chalicelib.tasks.heads import Heads
from chalicelib.tasks.multilabel import Multilabel
from chalicelib.tasks.regression import Regression

DEFAULT_TASK = "classification"

TASKS: dict[str, Task] = {
    task.name: task for task in (Classification(), Binary(), Multilabel(), Regression(), Heads())
}


def task_named(name: str) -> Task:
    """The registry entry for `name`; ValueError names the known tasks."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(TASKS)}") from None


__all__ = ["DEFAULT_TASK", "DEFAULT_THRESHOLD", "TASKS", "Task", "task_named"]
