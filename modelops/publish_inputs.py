"""The publisher's local inputs, read and checked before any S3 call or conversion,
so a wrong path or a malformed JSON file fails in milliseconds with what to do."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chalicelib.engines.registry import ENGINES
from chalicelib.manifest import FeatureStats, ManifestError, PreprocessingSpec
from modelops.cli_errors import UserMistake

#: The first bytes of each model format: a .keras file is a zip archive, a .h5 file HDF5.
MODEL_SIGNATURES = {".keras": (b"PK\x03\x04", "a zip archive"),
                    ".h5": (b"\x89HDF\r\n\x1a\n", "an HDF5 file")}  # fmt: skip


def check_model_file(path: Path) -> None:
    """The model must be a readable .keras or legacy .h5 file: a path that is missing,
    a directory, or a file of another kind each gets its own message."""
    suffixes = ENGINES["keras"].suffixes
    if path.is_dir():
        inside = sorted(p.name for p in path.iterdir() if p.is_file() and p.suffix in suffixes)[:3]
        hint = f" (it holds {', '.join(inside)})" if inside else ""
        raise UserMistake(f"--model={path} is a directory: give the model file itself{hint}")
    if not path.exists():
        raise UserMistake(f"--model={path}: no such file; give the path of your model file")
    if path.suffix not in suffixes:
        raise UserMistake(
            f"--model={path}: not a Keras model file; save it as {' or '.join(suffixes)}"
        )
    head = _head(path, "--model")
    signature, kind = MODEL_SIGNATURES.get(path.suffix, (b"", ""))
    if not head.startswith(signature):
        found = "text" if _is_text(head) else "not one"
        raise UserMistake(f"--model={path} is not a model file: a {path.suffix} model is {kind} "
                          f"(Keras's model.save writes it), this is {found}")  # fmt: skip


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\0" not in head


def read_labels(value: str | None, option: str = "--labels") -> list[str] | None:
    """`--labels` (or `--outputs`): a JSON file holding a list of names, or
    comma-separated names."""
    if value is None:
        return None
    if value.endswith(".json") or Path(value).is_file():
        data = read_json(Path(value), option)
        if not isinstance(data, list) or not all(isinstance(x, str | int) for x in data):
            raise UserMistake(f'{option}={value}: must hold a JSON list of names, e.g. ["A", "B"]')
        return [str(label) for label in data]
    names = [label.strip() for label in value.split(",") if label.strip()]
    if not names:
        raise UserMistake(f"{option}: give comma-separated names (A,B,C) or a JSON file")
    return names


def read_preprocessing(path: str | None) -> PreprocessingSpec | None:
    """`--preprocessing`: a spec as modelops.train writes it."""
    return _read_train_output(
        path, "--preprocessing", PreprocessingSpec.from_json,
        '{"numeric": [{"name", "mean", "std"}], "categorical": [{"name", "categories"}]}',
    )  # fmt: skip


def read_feature_stats(path: str | None) -> FeatureStats | None:
    """`--feature-stats`: mean and std per encoded feature, as modelops.train writes it."""
    return _read_train_output(
        path, "--feature-stats", FeatureStats.from_json,
        '{"mean": [...], "std": [...]}, one number per encoded feature',
    )  # fmt: skip


def _read_train_output[T](
    path: str | None, option: str, parse: Callable[[Any], T], shape: str
) -> T | None:
    """A JSON file modelops.train writes; a malformed one names the shape it must have."""
    if path is None:
        return None
    try:
        return parse(read_json(Path(path), option))
    except ManifestError as exc:
        raise UserMistake(
            f"{option}={path}: {exc}; write it as modelops.train does ({shape})"
        ) from exc


def read_features(value: str | None) -> list[str] | dict[str, list[str]] | None:
    """`--features`: encoded feature names as JSON, inline (starting with `[` or `{`) or in a
    file: a list for one input, or `{"input name": [names]}` for several."""
    if value is None:
        return None
    inline = value.lstrip()[:1] in ("[", "{")
    if inline:
        try:
            data = json.loads(value)
        except json.JSONDecodeError as exc:
            raise UserMistake(f"--features: not valid JSON ({_where(exc)})") from exc
    else:
        data = read_json(Path(value), "--features")
    shown = "--features" if inline else f"--features={value}"
    if _names(data):
        return list(data)
    if isinstance(data, dict) and data and all(_names(v) for v in data.values()):
        return {str(k): list(v) for k, v in data.items()}
    raise UserMistake(
        f'{shown}: must hold a JSON list of names, e.g. ["x0", "x1"], or one list per '
        'input, e.g. {"numbers": ["x0"], "ids": ["x1"]}'
    )


def _names(data: Any) -> bool:
    return isinstance(data, list) and all(isinstance(x, str) for x in data)


def read_metrics(path: str | None) -> dict[str, Any] | None:
    """`--metrics`: a JSON object recorded as-is in the manifest."""
    if path is None:
        return None
    data = read_json(Path(path), "--metrics")
    if not isinstance(data, dict):
        raise UserMistake(f'--metrics={path}: must hold a JSON object, e.g. {{"accuracy": 0.9}}')
    return data


def read_json(path: Path, option: str) -> Any:
    """Parse `path` as JSON; a missing, unreadable or malformed file is a UserMistake."""
    if not path.is_file():
        raise UserMistake(f"{option}={path}: no such file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserMistake(f"{option}={path}: cannot read it ({exc.strerror})") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserMistake(f"{option}={path}: not valid JSON ({_where(exc)}); fix the file") from exc


def _head(path: Path, option: str) -> bytes:
    """The file's first bytes; an unreadable file is a UserMistake."""
    try:
        with path.open("rb") as handle:
            return handle.read(512)
    except OSError as exc:
        raise UserMistake(f"{option}={path}: cannot read it ({exc.strerror})") from exc


def _where(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"line {exc.lineno} column {exc.colno}: {exc.msg}"
    return "not UTF-8 text"


#: What --heads holds, as the refusal of an ambiguous output shows it.
HEADS_EXAMPLE = (
    '{"grade": {"task": "classification", "labels": ["A", "B", "C"]}, '
    '"default": {"task": "binary", "labels": ["no", "yes"], "threshold": 0.5}}'
)


def read_heads(value: str | None) -> dict[str, dict[str, Any]] | None:
    """`--heads`: per named output of a model with several, its task and labels (or
    regression `outputs`) and threshold, as JSON inline (starting with `{`) or in a file."""
    if value is None:
        return None
    inline = value.lstrip()[:1] == "{"
    if inline:
        try:
            data = json.loads(value)
        except json.JSONDecodeError as exc:
            raise UserMistake(f"--heads: not valid JSON ({_where(exc)})") from exc
    else:
        data = read_json(Path(value), "--heads")
    allowed = {"task", "labels", "outputs", "threshold"}
    if (
        isinstance(data, dict)
        and data
        and all(isinstance(v, dict) and set(v) <= allowed for v in data.values())
    ):
        return {str(k): dict(v) for k, v in data.items()}
    raise UserMistake(
        f"--heads: must hold one object per output name with task, labels, outputs or "
        f"threshold, e.g. {HEADS_EXAMPLE}"
    )
