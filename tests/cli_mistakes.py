"""What every command-line user mistake looks like: one `error: ` line, exit code 2,
no traceback; and the walk of the mistakes people make through `make`, each with the line
it must print (tests/functional/test_cli_mistakes.py runs them; docs/troubleshooting.md
must name each one, tests/unit/test_docs_reference.py checks)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass


def the_one_error(result: subprocess.CompletedProcess[str]) -> str:
    """Assert a user-mistake exit; return the error line's text after `error: `."""
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error: " in line]
    assert len(errors) == 1, result.stderr
    assert result.returncode == 2, result.stderr
    return errors[0].split("error: ", 1)[1]


@dataclass(frozen=True)
class Mistake:
    """`make <args>` and the start of the one line it must print after `error: `.
    `{d}` stands for a folder of test files: missing.keras (absent), notes.keras (text),
    model.txt, classifier.keras (a softmax over 3 classes, config only), garbled.keras (a
    zip header and nothing Keras can load)."""

    args: tuple[str, ...]
    says: str
    servers_start: bool = False  # True: S3 starts first (the mistake is inside the model)


MISTAKES = (
    Mistake(("serve", "S3_PORT=abc"), "S3_PORT=abc is not a whole number"),
    Mistake(("serve", "API_PORT=-"), "API_PORT=- is not a whole number"),
    Mistake(("serve", "MODEL="), "MODEL= is empty"),
    Mistake(("serve", "MODEL={d}/missing.keras"), "MODEL={d}/missing.keras: no such file"),
    Mistake(("serve", "MODEL={d}"), "MODEL={d} is a directory: give the model file itself"),
    Mistake(
        ("serve", "MODEL={d}/notes.keras"),
        "MODEL={d}/notes.keras is not a model file: a "
        ".keras model is a zip archive (Keras's model.save writes it), this is text",
    ),
    Mistake(("serve", "MODEL={d}/model.txt"), "MODEL={d}/model.txt: not a Keras model file"),
    Mistake(
        ("serve", "MODEL={d}/classifier.keras"),
        "what are the 3 classes of "
        "classifier.keras called? give LABELS=name1,...,name3 (in output order), or "
        "LABELS=0,1,2 to serve the class numbers",
    ),
    Mistake(
        ("serve", "MODEL={d}/classifier.keras", "LABELS=,"), "LABELS=: give comma-separated names"
    ),
    Mistake(
        ("serve", "MODEL={d}/classifier.keras", "TASK=regresion"),
        "TASK=regresion is not one of classification, binary, multilabel, regression",
    ),
    Mistake(
        ("serve", "MODEL={d}/classifier.keras", "LABELS=a,b,c", "NAME=my model"),
        "NAME=my model is not a valid model name",
    ),
    Mistake(("serve", "TASK=regression"), "TASK= describes your model, but no MODEL= is given"),
    Mistake(
        ("serve", "MODEL={d}/garbled.keras", "LABELS=a,b", "S3_PORT=0", "API_PORT=0"),
        "cannot publish {d}/garbled.keras: ",
        servers_start=True,
    ),
    Mistake(("batch", "WORKERS=0"), "WORKERS=0 must be 1 or more"),
    Mistake(("batch", "WORKERS=two"), "WORKERS=two is not a whole number"),
    Mistake(("batch", "INPUT={d}/missing.csv"), "INPUT={d}/missing.csv is not a file"),
    Mistake(("package", "FLAVOR=tensorflw"), "FLAVOR=tensorflw is not one of lite, tensorflow"),
    Mistake(("package", "FORMAT=yaml"), "no format 'yaml'; formats: cloudformation, terraform"),
    Mistake(("package", "STAGE=staging"), "no stage 'staging' in .chalice/config.json"),
    Mistake(("vendor", "FLAVOR=lyte"), "FLAVOR=lyte is not one of lite, tensorflow"),
    Mistake(("deploy",), "make deploy STAGE=<stage>"),
)


def command_line(mistake: Mistake) -> str:
    """How docs/troubleshooting.md writes the mistake: `make serve MODEL=models/notes.keras`
    (the folder of test files is `models` there)."""
    return "make " + " ".join(arg.format(d="models") for arg in mistake.args)
