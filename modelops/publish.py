"""Publish a Keras model as a versioned model bundle in S3; list and roll back.

    python -m modelops.publish --model artifacts/demo/model.keras \\
        --preprocessing artifacts/demo/preprocessing.json --labels artifacts/demo/labels.json \\
        --name loan-grade --version 1 --stage dev
    python -m modelops.publish --list --stage dev
    python -m modelops.publish --promote 1 --stage dev

Writes `<prefix>/<version>/{model.keras|model.h5, model.tflite|model.onnx, manifest.json}` and
then `<prefix>/LATEST` (the layout of chalicelib.bundle_layout, which the store reads).
The prefix is `models/<name>` (modelops.publish_target), so one model never replaces
another. The task (`--task`: classification, binary, multilabel, regression;
chalicelib.tasks) is detected from the final activation where that is unambiguous and
always verified on a sample: a probabilistic task whose outputs are not probabilities
is refused. The lite runtime's engines are tried in the registry's order (LiteRT, then
ONNX Runtime; chalicelib.engines.registry): the first whose conversion matches Keras
within 1e-5 (regression: of each output's scale) and in every decided label is the
bundle's. When none does, the bundle is Keras-only: the tensorflow runtime flavor serves
it, and the console names the ops that blocked each engine. `--engine` forces one engine
(refusing if it cannot serve the model); `--require-lite` refuses a Keras-only bundle,
uploading nothing. Custom layers load from chalicelib.custom_objects. Each integer
input's valid range (an Embedding's `input_dim`) is found in the model and recorded;
`--sample FILE` (training records: modelops.sample) records feature statistics that turn
on the range check for encoded records, and without it (or `--feature-stats`) the console
says that check is off. A user mistake ends in one `error: ...` line and exit code 2.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from chalicelib.bundle_layout import BundleLayout
from chalicelib.engines.registry import ENGINES
from chalicelib.manifest import (
    HEADS_TASK,
    Artifact,
    BundleManifest,
    FeatureStats,
    Head,
    PreprocessingSpec,
)
from chalicelib.model_inputs import ModelInputs
from chalicelib.s3_errors import is_missing
from chalicelib.tasks import (
    DEFAULT_THRESHOLD,
    NUMERIC_TASK,
    TASKS,
    Task,
    detected_task,
    detection_hint,
    task_named,
)
from chalicelib.tasks.heads import head_problems
from modelops.bundle_admin import (
    ALLOW_CONTRACT_CHANGE,
    check_promotable,
    check_publishable,
    check_version_name,
    format_listing,
    list_versions,
    move_latest,
    promote,
)
from modelops.cli_errors import (
    OTHER_FAILURE_EXIT,
    OneLineParser,
    S3Failure,
    UserMistake,
    fail,
    s3_errors,
)
from modelops.convert import EngineOutcome
from modelops.publish_inputs import (
    check_model_file,
    read_feature_stats,
    read_features,
    read_heads,
    read_labels,
    read_metrics,
    read_preprocessing,
)
from modelops.publish_target import resolve_target
from modelops.sample import read_sample, sample_matrix, sample_stats
from modelops.signature import (
    FeatureNames,
    SignatureError,
    keras_inputs,
    map_features,
    parity_matrix,
    with_index_ranges,
)

#: Sample rows added to the engines' parity sample at most.
PARITY_SAMPLE_ROWS = 256

PARITY_TOLERANCE = 1e-5


class PublishError(UserMistake):
    """The model cannot be published as asked; nothing was uploaded."""


@dataclass(frozen=True)
class BuiltBundle:
    """A bundle assembled locally: file name -> bytes, plus its manifest."""

    manifest: BundleManifest
    files: dict[str, bytes]
    #: The chosen engine vs Keras on the parity sample; None: Keras-only.
    parity_max_difference: float | None
    #: Why the bundle is Keras-only: each lite engine's problem (None: it has a lite one).
    lite_problem: str | None = None
    #: The engine the lite runtime serves it with; "keras" when Keras-only.
    engine: str = "keras"
    #: Why engines preferred to the chosen one were passed over, one line each.
    passed_over: tuple[str, ...] = ()


def build_bundle(
    model_path: Path,
    *,
    name: str,
    version: str,
    labels: list[str] | None = None,
    preprocessing: PreprocessingSpec | None = None,
    feature_names: FeatureNames | None = None,
    metrics: dict[str, Any] | None = None,
    feature_stats: FeatureStats | None = None,
    sample: np.ndarray | None = None,
    sample_records: Sequence[Any] | None = None,
    converters: Mapping[str, Callable[[Path], bytes]] | None = None,
    engine: str | None = None,
    require_lite: bool = False,
    task: str | None = None,
    outputs: list[str] | None = None,
    threshold: float | None = None,
    heads: Mapping[str, Mapping[str, Any]] | None = None,
) -> BuiltBundle:
    """Load, check and convert the model; return the bundle's files and manifest.

    `feature_names` is a flat list (one input) or {input name: [names]} (several).
    Each lite engine's converter (the registry's, or `converters[kind]`) turns the
    Keras file into its artifact; the first that matches Keras within 1e-5 is kept, else
    the bundle is Keras-only (`lite_problem` says why) or, with `require_lite`, refused.
    `engine` tries that engine only (refusing if it fails; "keras": Keras-only).
    `feature_stats` (training mean/std per encoded feature) enables the
    service's range rule for encoded records; `sample_records` (training records, raw or
    encoded) computes them when not given, and adds rows to the parity sample. Integer
    inputs get the index range the model shows (`with_index_ranges`). `task` (default:
    detected) with `labels` for the probabilistic tasks, `outputs` for regression and
    `threshold` for binary/multilabel.
    """
    check_version_name(version, PublishError)
    from chalicelib.engines.keras_engine import KerasEngine

    candidates = _candidate_engines(engine)
    model = load_model(model_path)
    try:
        encoded, inputs = map_features(keras_inputs(model), preprocessing, feature_names)
        inputs = with_index_ranges(model, inputs)
    except SignatureError as exc:
        raise PublishError(str(exc)) from exc
    nested = [i.name for i in inputs if i.shape]
    if nested and (sample_records is not None or feature_stats is not None):
        raise PublishError(
            f"input {nested[0]!r} takes nested lists: training statistics are per flat "
            "feature, so publish this model without --sample/--feature-stats (make serve: "
            "without SAMPLE=)"
        )
    if len(model.outputs) > 1:
        if task or labels or outputs or threshold is not None:
            raise PublishError(
                f"the model has {len(model.outputs)} outputs ({', '.join(model.output_names)}): "
                "give each its task and labels with --heads (make serve HEADS=), not "
                "--task/--labels/--outputs/--threshold"
            )
        kind, answer = task_named(HEADS_TASK), OutputSection((), (), None)
        model_heads = heads_of(model, heads or {})
    else:
        units = _check_output(model)
        kind = task_named(task) if task else detect_task(model, units)
        answer = output_section(kind, units, labels, outputs, threshold)
        model_heads = ()
    manifest = BundleManifest(
        name=name,
        version=version,
        encoded_features=tuple(encoded),
        labels=answer.labels,
        artifacts={},
        preprocessing=preprocessing,
        frameworks=_framework_versions(),
        metrics=metrics or {},
        created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        feature_stats=feature_stats,
        inputs=inputs,
        task=kind.name,
        outputs=answer.outputs,
        threshold=answer.threshold,
        heads=model_heads,
    )
    manifest.check()
    if sample_records is not None:
        matrix = sample_matrix(manifest, sample_records)
        if feature_stats is None:
            manifest = replace(manifest, feature_stats=sample_stats(matrix))
        if sample is None:
            sample = matrix[:PARITY_SAMPLE_ROWS]
    probe = ModelInputs(manifest).split(
        parity_matrix(model, encoded, inputs, preprocessing, sample)
    )
    verify_outputs(kind, KerasEngine(model).predict(probe), manifest)
    chosen, passed_over = _choose_engine(
        candidates, model, model_path, probe, converters or {}, kind,
        answer.threshold or DEFAULT_THRESHOLD,
    )  # fmt: skip
    problem = None if chosen else "; ".join(passed_over) or "--engine keras asks for Keras only"
    if chosen is None and engine not in (None, "keras"):
        raise PublishError(f"{problem}; --engine {engine} refuses any other engine")
    if chosen is None and require_lite:
        raise PublishError(f"{problem}; --require-lite refuses a Keras-only bundle")
    # What each engine runs: the Keras file as given, and the chosen lite conversion.
    contents = {"keras": model_path.read_bytes()}
    if chosen is not None and chosen.artifact is not None:
        contents[chosen.kind] = chosen.artifact
    files: dict[str, bytes] = {}
    artifacts: dict[str, Artifact] = {}
    for kind_name, content in contents.items():
        spec = ENGINES[kind_name]
        files[spec.file_name(model_path.suffix)] = content
        artifacts[spec.artifact] = _artifact(spec.file_name(model_path.suffix), content)
    outcome: dict[str, Any] = (
        {"lite_unavailable": problem}
        if chosen is None
        else {"engine": chosen.kind, "parity_max_abs_diff": chosen.max_abs_diff}
    )
    if chosen is not None and passed_over:
        outcome["engines_passed_over"] = list(passed_over)
    manifest = replace(manifest, artifacts=artifacts, metrics=(metrics or {}) | outcome)
    manifest.check()
    return BuiltBundle(manifest, files, chosen.max_abs_diff if chosen else None, problem,
                       chosen.kind if chosen else "keras", passed_over)  # fmt: skip


def _candidate_engines(forced: str | None) -> list[str]:
    """The lite engines to try, in the registry's order; `forced` alone when given."""
    lite = [kind for kind, spec in ENGINES.items() if spec.converter is not None]
    if forced is None:
        return lite
    if forced == "keras":
        return []
    if forced not in lite:
        raise PublishError(f"--engine must be one of {', '.join([*lite, 'keras'])}")
    return [forced]


def _choose_engine(
    candidates: list[str], model: Any, model_path: Path, probe: Mapping[str, np.ndarray],
    converters: Mapping[str, Callable[[Path], bytes]], task: Task, threshold: float,
) -> tuple[EngineOutcome | None, tuple[str, ...]]:  # fmt: skip
    """The first candidate that converts and passes parity, and why earlier ones did not."""
    from modelops.convert import try_engine

    problems: list[str] = []
    for kind in candidates:
        outcome = try_engine(kind, model, model_path, probe, converters.get(kind),
                             PARITY_TOLERANCE, task, threshold)  # fmt: skip
        if outcome.artifact is not None:
            return outcome, tuple(problems)
        problems.append(outcome.problem or f"{ENGINES[kind].label} failed")
    return None, tuple(problems)


def load_model(model_path: Path) -> Any:
    """The Keras model, custom objects registered; an unknown custom class is one line
    saying where to register it."""
    from chalicelib.engines.keras_engine import load_keras_model

    try:
        return load_keras_model(str(model_path))
    except Exception as exc:  # Keras raises TypeError/ValueError with pages of config
        missing = re.search(r"Could not locate class '([^']+)'", str(exc))
        if missing is None:
            raise
        raise PublishError(
            f"{model_path} uses the custom class {missing.group(1)!r}, which is not "
            "registered: define or import it in chalicelib/custom_objects.py (decorated with "
            "@keras.saving.register_keras_serializable, or added to CUSTOM_OBJECTS) and "
            "publish again"
        ) from None


def upload_bundle(
    bundle: BuiltBundle,
    s3_client: Any,
    bucket: str,
    prefix: str,
    *,
    promote: bool = True,
    overwrite: bool = False,
    allow_contract_change: bool = False,
) -> str:
    """Upload files, then the manifest, then LATEST; returns the bundle's S3 URL. With
    `promote`, a request contract other than the serving version's is refused before
    anything is uploaded, unless `allow_contract_change`."""
    version = bundle.manifest.version
    check_version_name(version, PublishError)
    layout = BundleLayout(prefix)
    base = layout.version_dir(version)
    if not overwrite and _exists(s3_client, bucket, layout.manifest_key(version)):
        raise PublishError(
            f"version {version} already exists at s3://{bucket}/{base}/ "
            "(pass --overwrite to replace it)"
        )
    if promote and not allow_contract_change:
        check_promotable(s3_client, bucket, layout, bundle.manifest)
    for file_name, content in sorted(bundle.files.items()):
        s3_client.put_object(Bucket=bucket, Key=layout.file_key(version, file_name), Body=content)
    s3_client.put_object(
        Bucket=bucket,
        Key=layout.manifest_key(version),
        Body=bundle.manifest.dumps(),
        ContentType="application/json",
    )
    if promote:
        move_latest(s3_client, bucket, layout, bundle.manifest,
                    allow_contract_change=allow_contract_change)  # fmt: skip
    return f"s3://{bucket}/{base}/"


def _check_output(model: Any) -> int:
    """A one-output model's units (several outputs are heads: `heads_of`)."""
    if len(model.outputs[0].shape) != 2:
        raise PublishError(
            f"the model's output has shape {tuple(model.outputs[0].shape)}; a bundle serves "
            "one (rows, outputs) output: end the model with keras.layers.Flatten() or a Dense layer"
        )
    return int(model.outputs[0].shape[-1])


@dataclass(frozen=True)
class OutputSection:
    """The manifest's task-specific part: labels or output names, and the threshold."""

    labels: tuple[str, ...]
    outputs: tuple[str, ...]
    threshold: float | None


def detect_task(model: Any, units: int) -> Task:
    """The task the final activation makes unambiguous; else a refusal saying what to pass."""
    activation = final_activation(model)
    found = detected_task(activation, units)
    if found is not None:
        return found
    raise PublishError(
        f"cannot tell the model's task from its output ({units} unit(s), final activation "
        f"{activation or 'unknown'}): for numeric outputs pass --task={NUMERIC_TASK}; for "
        f"probabilities end the model with a {detection_hint()} layer"
    )


def final_activation(model: Any) -> str | None:
    """The name of the activation that produces the model's output, if it has one."""
    layer = model.outputs[0]._keras_history.operation
    if type(layer).__name__ == "Softmax":
        return "softmax"
    return getattr(getattr(layer, "activation", None), "__name__", None)


def output_section(
    task: Task,
    units: int,
    labels: list[str] | None,
    outputs: list[str] | None,
    threshold: float | None,
) -> OutputSection:
    """Labels/output names and threshold for `task`, checked against the output width."""
    if threshold is not None and not task.thresholded:
        raise PublishError("--threshold applies to binary and multilabel models only")
    if threshold is not None and not 0.0 < threshold < 1.0:
        raise PublishError("--threshold must be between 0 and 1 (exclusive)")
    try:
        names, output_names = task.output_section(units, labels, outputs)
    except ValueError as exc:
        raise PublishError(str(exc)) from None
    default = DEFAULT_THRESHOLD if task.thresholded else None
    return OutputSection(names, output_names, default if threshold is None else threshold)


def heads_of(model: Any, given: Mapping[str, Mapping[str, Any]]) -> tuple[Head, ...]:
    """Each named output's head: the task given in `--heads`, else the one its final
    activation makes unambiguous; else one line saying exactly what to pass."""
    names = [str(name) for name in model.output_names]
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise PublishError(
            f"--heads names outputs {unknown} the model does not have; its outputs are "
            f"{', '.join(names)}"
        )
    found = []
    for index, (name, tensor) in enumerate(zip(names, model.outputs, strict=True)):
        if len(tensor.shape) != 2:
            raise PublishError(f"output {name!r} must be 2-D (rows, outputs)")
        units, spec = int(tensor.shape[-1]), given.get(name, {})
        try:
            kind = task_named(str(spec["task"])) if "task" in spec else _detect(model, index, units)
        except ValueError as exc:
            raise PublishError(f"--heads, output {name!r}: {exc}") from None
        if kind is None:
            example = json.dumps({name: {"task": NUMERIC_TASK}})
            raise PublishError(
                f"cannot tell the task of output {name!r} ({units} unit(s), final activation "
                f"{_activation(model, index) or 'unknown'}): pass --heads '{example}' "
                f"(make serve HEADS='{example}'), or {'/'.join(_DETECTABLE)} with "
                "its labels, for each output to set"
            )
        labels = spec.get("labels")
        section = output_section(
            kind, units,
            labels.split(",") if isinstance(labels, str) else labels,
            spec.get("outputs"), spec.get("threshold"),
        )  # fmt: skip
        found.append(Head(name, kind.name, section.labels, section.outputs, section.threshold))
    return tuple(found)


#: The tasks a final activation can tell, for the refusal that names them.
_DETECTABLE = [task.name for task in TASKS.values() if task.activation is not None]


def _detect(model: Any, index: int, units: int) -> Task | None:
    return detected_task(_activation(model, index), units)


def _activation(model: Any, index: int) -> str | None:
    layer = model.outputs[index]._keras_history.operation
    if type(layer).__name__ == "Softmax":
        return "softmax"
    return getattr(getattr(layer, "activation", None), "__name__", None)


def verify_outputs(task: Task, outputs: np.ndarray, manifest: BundleManifest | None = None) -> None:
    """Refuse a model whose sample outputs are not what `task` answers with (each
    head's task for a model with several outputs)."""
    if manifest is not None and manifest.heads:
        problems = list(head_problems(manifest, outputs))
        if problems:
            raise PublishError(
                f"the model's outputs on a sample do not fit their tasks: {'; '.join(problems)}; "
                "fix the task in --heads (make serve HEADS=); nothing was uploaded"
            )
        return
    problem = task.sample_problem(outputs)
    if problem is None:
        return
    if task.probabilistic:
        raise PublishError(
            f"the model's outputs are not {task.name} probabilities on a sample ({problem}): "
            f"{task.remedy}; nothing was uploaded"
        )
    raise PublishError(f"the model's outputs are not numbers on a sample ({problem})")


def _artifact(file_name: str, content: bytes) -> Artifact:
    return Artifact(file_name, hashlib.sha256(content).hexdigest(), len(content))


def _framework_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("tensorflow-cpu", "tensorflow", "keras", "ai-edge-litert", "onnxruntime",
                    "tf2onnx", "onnx", "numpy"):  # fmt: skip
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _exists(s3_client: Any, bucket: str, key: str) -> bool:
    try:
        s3_client.head_object(Bucket=bucket, Key=key)
    except Exception as exc:
        if is_missing(exc):
            return False
        raise
    return True


def _report_engines(bundle: BuiltBundle) -> None:
    for problem in bundle.passed_over if bundle.lite_problem is None else ():
        print(f"    passed over: {problem}")
    if bundle.lite_problem is None:
        label = ENGINES[bundle.engine].label
        print(f"    engine: {label} (lite runtime); parity with Keras: max difference "
              f"{bundle.parity_max_difference:.2e}")  # fmt: skip
        return
    print(
        f"==> Keras-only bundle: {bundle.lite_problem}.\n"
        f"    Serve it with {ENGINES['keras'].runtime}; the lite flavor answers 503 for it."
    )


def range_check_report(manifest: BundleManifest, sampled: bool) -> str:
    """What the service will check inputs against, said plainly (off included)."""
    checks = manifest.range_checks()
    lines = []
    if checks["encoded"]:
        source = "the --sample's statistics" if sampled else "--feature-stats"
        lines.append(f"    range checks: on for encoded records ({source})")
    else:
        lines.append(
            "    range checks: OFF for encoded records (no --sample given): any finite value "
            "gets a prediction; publish with --sample FILE (training records) to turn them on"
        )
    if checks.get("raw"):
        lines.append("    range checks: on for raw records (the preprocessing spec)")
    for name, (low, high) in checks.get("index_ranges", {}).items():
        lines.append(f"    index range of input {name!r}: {low} to {high} (from the model)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit code (2: a user mistake, one line said)."""
    parser = OneLineParser(prog="python -m modelops.publish", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help=".keras or legacy .h5 file")
    parser.add_argument("--name", help="model name, e.g. loan-grade; its prefix is models/<name>")
    parser.add_argument("--version", help="bundle version, e.g. 1 or 2026-11-24")
    parser.add_argument(
        "--task",
        choices=sorted(set(TASKS) - {HEADS_TASK}),  # several outputs: --heads
        help="model kind (default: detected from the final activation where unambiguous)",
    )
    parser.add_argument(
        "--labels", help="labels JSON file or comma-separated names (binary: negative first)"
    )
    parser.add_argument("--outputs", help="regression output names: JSON file or comma-separated")
    parser.add_argument(
        "--heads",
        help="a model with several outputs: per output name its task, labels or outputs and "
        'threshold, JSON inline or a file: {"grade": {"task": "classification", "labels": '
        '["A", "B"]}, "default": {"task": "binary"}} (default: detected per output)',
    )
    parser.add_argument(
        "--threshold", type=float, help="binary/multilabel: a label at p >= this (default 0.5)"
    )
    parser.add_argument("--preprocessing", help="preprocessing spec JSON (raw-record support)")
    parser.add_argument(
        "--features",
        help="encoded feature names, JSON (file or inline): a list for one input, "
        '{"input name": [names]} for several',
    )
    parser.add_argument("--metrics", help="training metrics JSON to record in the manifest")
    parser.add_argument(
        "--feature-stats", help="mean/std per encoded feature JSON (range rule for encoded input)"
    )
    parser.add_argument(
        "--sample",
        help="training records (.csv with a header, .jsonl or .json; raw or encoded): their "
        "feature statistics turn on the range check for encoded records",
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--stage", help="the model this Chalice stage serves (must be --name's)")
    where.add_argument("--bucket", help="S3 bucket; the prefix is models/<name> unless --prefix")
    parser.add_argument("--prefix", help="explicit S3 key prefix, with --bucket")
    parser.add_argument("--no-promote", action="store_true", help="do not move LATEST")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing version")
    parser.add_argument(
        ALLOW_CONTRACT_CHANGE,
        action="store_true",
        help="move LATEST even to a version whose request contract (task, inputs, widths, "
        "fields) differs from the serving one's: every client must change its requests",
    )
    admin = parser.add_mutually_exclusive_group()
    admin.add_argument("--list", action="store_true", help="list the versions and LATEST's")
    admin.add_argument("--promote", metavar="VERSION", help="point LATEST at VERSION (rollback)")
    parser.add_argument(
        "--engine",
        choices=[kind for kind, spec in ENGINES.items() if spec.converter] + ["keras"],
        help="use this engine only (default: the first of "
        f"{', '.join(k for k, s in ENGINES.items() if s.converter)} that matches Keras; "
        "keras: a Keras-only bundle)",
    )
    parser.add_argument(
        "--require-lite",
        "--require-litert",
        dest="require_lite",
        action="store_true",
        help="refuse rather than publish a Keras-only bundle when no lite engine serves it",
    )
    args = parser.parse_args(argv)
    _check_mode(parser, args)
    try:
        return _admin(args) if args.list or args.promote else _publish(args)
    except UserMistake as exc:
        return fail(str(exc))
    except S3Failure as exc:
        return fail(str(exc), OTHER_FAILURE_EXIT)


def _check_mode(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Publishing needs a model, name and version; --list and --promote take none of
    the publishing options (argparse's usage error, exit 2)."""
    publishing_only = (
        "model",
        "version",
        "task",
        "labels",
        "outputs",
        "threshold",
        "preprocessing",
        "features",
        "metrics",
        "feature_stats",
        "engine",
        "sample",
    )
    if args.list or args.promote:
        given = [f"--{o}" for o in publishing_only if getattr(args, o) is not None]
        given += [
            f"--{o.replace('_', '-')}"
            for o in ("no_promote", "overwrite", "require_lite")
            if getattr(args, o)
        ]
        if args.list and args.allow_contract_change:
            given.append("--allow-contract-change")
        if given:
            parser.error(f"--list and --promote take no publishing option: drop {', '.join(given)}")
        return
    missing = [f"--{o}" for o in ("model", "name", "version") if getattr(args, o) is None]
    if missing:
        parser.error(f"publishing needs {', '.join(missing)} (or use --list or --promote)")


def _publish(args: argparse.Namespace) -> int:
    """Check everything that is quick (arguments, files, S3) before converting."""
    check_version_name(args.version, PublishError)
    check_model_file(args.model)
    if args.sample is not None and args.feature_stats is not None:
        raise PublishError("give --sample or --feature-stats, not both")
    feature_stats = read_feature_stats(args.feature_stats)
    labels, preprocessing = read_labels(args.labels), read_preprocessing(args.preprocessing)
    sample_records = read_sample(args.sample, preprocessing)
    features, metrics = read_features(args.features), read_metrics(args.metrics)
    target = resolve_target(stage=args.stage, bucket=args.bucket, prefix=args.prefix,
                            name=args.name)  # fmt: skip
    s3 = _s3_client()
    with s3_errors(target.bucket):
        check_publishable(s3, target.bucket, target.prefix, name=args.name,
                          version=args.version, overwrite=args.overwrite)  # fmt: skip
    lite = " or ".join(s.label for s in ENGINES.values() if s.converter)
    print(f"==> checking and converting {args.model} (Keras -> {lite})", flush=True)
    try:
        bundle = build_bundle(
            args.model,
            name=args.name,
            version=args.version,
            labels=labels,
            task=args.task,
            outputs=read_labels(args.outputs, "--outputs"),
            threshold=args.threshold,
            heads=read_heads(args.heads),
            preprocessing=preprocessing,
            feature_names=features,
            metrics=metrics,
            feature_stats=feature_stats,
            sample_records=sample_records,
            engine=args.engine,
            require_lite=args.require_lite,
        )
    except (OSError, ValueError) as exc:  # Keras cannot load it, or inputs disagree with it
        raise PublishError(f"cannot publish {args.model}: {exc}") from exc
    print(f"    task: {bundle.manifest.task}")
    _report_engines(bundle)
    print(range_check_report(bundle.manifest, sampled=sample_records is not None))
    with s3_errors(target.bucket):
        url = upload_bundle(bundle, s3, target.bucket, target.prefix,
                            promote=not args.no_promote, overwrite=args.overwrite,
                            allow_contract_change=args.allow_contract_change)  # fmt: skip
    print(f"==> published {args.name} version {args.version} to {url}")
    return 0


def _admin(args: argparse.Namespace) -> int:
    """--list, or --promote VERSION."""
    target = resolve_target(stage=args.stage, bucket=args.bucket, prefix=args.prefix,
                            name=args.name)  # fmt: skip
    s3 = _s3_client()
    with s3_errors(target.bucket):
        if args.list:
            print(format_listing(list_versions(s3, target.bucket, target.prefix)))
            return 0
        previous = promote(s3, target.bucket, target.prefix, args.promote, target.name,
                           allow_contract_change=args.allow_contract_change)  # fmt: skip
    print(f"==> LATEST of {target.url} now points at {args.promote} (was {previous or 'unset'})")
    return 0


def _s3_client() -> Any:
    import boto3
    from botocore.config import Config

    # Few retries: an unreachable endpoint should be reported in seconds, not minutes.
    return boto3.client("s3", config=Config(connect_timeout=10, retries={"max_attempts": 3}))


if __name__ == "__main__":
    sys.exit(main())
