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


#: The task to suggest at publish when no final activation tells (numeric outputs).
NUMERIC_TASK = Regression.name


def detected_task(activation: str | None, units: int) -> Task | None:
    """The task a final `activation` over `units` outputs makes unambiguous, if any."""
    return next((task for task in TASKS.values() if task.detects(activation, units)), None)


def detection_hint() -> str:
    """Which final layer means which task: `softmax (classification) or sigmoid (binary,
    multilabel)`, from the registry."""
    by_activation: dict[str, list[str]] = {}
    for task in TASKS.values():
        if task.activation is not None:
            by_activation.setdefault(task.activation, []).append(task.name)
    return " or ".join(f"{act} ({', '.join(names)})" for act, names in by_activation.items())


def task_named(name: str) -> Task:
    """The registry entry for `name`; ValueError names the known tasks."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(TASKS)}") from None


__all__ = [
    "DEFAULT_TASK",
    "DEFAULT_THRESHOLD",
    "NUMERIC_TASK",
    "TASKS",
    "Task",
    "detected_task",
    "detection_hint",
    "task_named",
]
