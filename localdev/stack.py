"""`make serve`: moto S3 + a model + `chalice local`, stopped together by Ctrl-C.

1. checks the ports (5000 for S3, 8000 for the API) are free, before any work,
2. starts a moto S3 server (in this process),
3. the demo: trains it into artifacts/demo/ unless it is there and publishes it where
   the `dev` stage reads its model; or `--model FILE` (`make serve MODEL=...`): publishes
   your model as models/<name> in the stage's bucket (localdev.own_model), reading but
   never writing your model's folder,
4. runs `chalice local` and prints curl commands that work for that model.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow is imported

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import boto3

from chalicelib.bundle_layout import is_model_name
from chalicelib.tasks import TASKS
from deployment.stages import stage_location
from localdev.model_peek import model_output
from localdev.own_model import (
    OwnModel,
    example_bodies,
    local_project,
    name_from_file,
    needs_keras,
    read_manifest,
    usage,
)
from localdev.own_model import write_examples as write_own_examples
from localdev.servers import (
    HOST,
    ChaliceLocal,
    MotoServer,
    ServerError,
    bound_socket,
    model_cache_env,
    port_in_use,
    s3_env,
)
from modelops.cli_errors import (
    OTHER_FAILURE_EXIT,
    USER_MISTAKE_EXIT,
    OneLineParser,
    UserMistake,
    fail,
)
from modelops.publish_inputs import (
    check_model_file,
    read_features,
    read_labels,
    read_preprocessing,
)
from project_paths import PROJECT_DIR

DEMO_DIR = PROJECT_DIR / "artifacts" / "demo"


def ensure_demo_model(out_dir: Path) -> None:
    """Train the demo model (progress on the console) unless a trained one exists."""
    if (out_dir / "model.keras").exists() and (out_dir / "holdout.csv").exists():
        print(f"==> using the trained demo model in {_shown(out_dir)}")
        return
    print("==> training the demo model (synthetic loans; under 2 minutes)", flush=True)
    subprocess.run([sys.executable, "-m", "modelops.train", "--out", str(out_dir)], check=True)


def publish_demo(out_dir: Path, stage: str, version: str) -> None:
    """Publish the demo bundle to the stage's bucket (created if missing)."""
    bucket, _ = stage_location(stage)
    ensure_bucket(bucket)
    from modelops.publish import main as publish

    code = publish([
        "--model", str(out_dir / "model.keras"),
        "--preprocessing", str(out_dir / "preprocessing.json"),
        "--labels", str(out_dir / "labels.json"),
        "--metrics", str(out_dir / "metrics.json"),
        *_if_present("--feature-stats", out_dir / "feature_stats.json"),
        "--name", "loan-grade", "--version", version, "--stage", stage, "--overwrite",
    ])  # fmt: skip
    if code:
        raise SystemExit(code)


def _if_present(option: str, path: Path) -> list[str]:
    """`[option, path]` when the file exists (models trained before it was written lack it)."""
    return [option, str(path)] if path.exists() else []


def write_examples(out_dir: Path) -> tuple[Path, Path, Path, Path]:
    """Request bodies from held-out records: raw fields, and the same encoded; and the
    same rows as V2 inference requests (the model's tensor, and raw-field columns)."""
    from modelops.examples import example_requests

    raw, encoded = example_requests(out_dir)
    raw_path, encoded_path = out_dir / "example-raw.json", out_dir / "example-encoded.json"
    raw_path.write_text(json.dumps(raw, indent=2))
    encoded_path.write_text(json.dumps(encoded, indent=2))
    records = raw["instances"]
    tensor = {"name": "features", "datatype": "FP32", "shape": [len(encoded), len(encoded[0])],
              "data": [list(record.values()) for record in encoded]}  # fmt: skip
    columns = [
        {"name": name, "datatype": "BYTES" if isinstance(records[0][name], str) else "FP64",
         "shape": [len(records)], "data": [record[name] for record in records]}
        for name in records[0]
    ]  # fmt: skip
    tensor_path, columns_path = (
        out_dir / "example-v2-tensor.json",
        out_dir / "example-v2-columns.json",
    )
    tensor_path.write_text(json.dumps({"inputs": [tensor]}))
    columns_path.write_text(json.dumps({"inputs": columns}))
    return raw_path, encoded_path, tensor_path, columns_path


def main(argv: list[str] | None = None) -> int:
    """Run the local stack until Ctrl-C; a user mistake is one `error: ...` line, exit 2."""
    args = _parser().parse_args(argv)
    try:
        _check_stage(args.stage)
        own = _own_model(args)
        demo_dir = _demo_dir(args.demo_dir) if own is None else None
        _check_ports_free(args.s3_port, args.api_port)  # before any training or publishing
    except UserMistake as exc:
        return fail(str(exc))

    at_once: list[Callable[[], None]] = []  # what a second Ctrl-C still does
    _stop_on_signals(at_once)
    s3 = MotoServer(args.s3_port)
    api: ChaliceLocal | None = None
    with tempfile.TemporaryDirectory(prefix="keras-serve-") as scratch:
        at_once.append(partial(shutil.rmtree, scratch, ignore_errors=True))
        try:
            s3.start()
            print(f"==> moto S3 server on {s3.url}", flush=True)
            env = s3_env(s3.url) | model_cache_env(Path(scratch))
            os.environ.update(env)
            banner: Callable[[str], str]
            if own is None:
                assert demo_dir is not None
                ensure_demo_model(demo_dir)
                publish_demo(demo_dir, args.stage, args.version)
                project_dir, banner = PROJECT_DIR, partial(_demo_usage, *write_examples(demo_dir))
            else:
                project_dir, banner = _publish_own(own, args.stage, args.version, Path(scratch))
            print(f"==> starting chalice local (stage {args.stage})", flush=True)
            api = ChaliceLocal(args.stage, env, port=args.api_port or None, quiet=False,
                               project_dir=project_dir)  # fmt: skip
            at_once.insert(0, api.kill)
            api.start()
            print("\n" + banner(api.url), flush=True)
            while api.process is not None and api.process.poll() is None:
                time.sleep(0.5)
            print("chalice local stopped", file=sys.stderr)
            return 1
        except UserMistake as exc:
            return fail(str(exc))
        except _PublishFailed as exc:
            return exc.code
        except ServerError as exc:
            return fail(str(exc), OTHER_FAILURE_EXIT)
        except subprocess.CalledProcessError:
            return fail("training the demo model failed (its output is above)", OTHER_FAILURE_EXIT)
        except KeyboardInterrupt:
            print("\n==> stopping", flush=True)
            return 0
        finally:
            if api is not None:
                api.stop()
            s3.stop()


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m localdev.stack", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", default="dev", help="the stage whose bucket (and engine) "
                        "is used")  # fmt: skip
    parser.add_argument("--s3-port", type=int, default=5000, help="0: any free port")
    parser.add_argument("--api-port", type=int, default=8000, help="0: any free port")
    parser.add_argument("--version", default="1", help="bundle version to publish")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--model", help="your .keras/.h5 model (default: the demo)")
    which.add_argument("--demo-dir", type=Path, default=DEMO_DIR,
                       help="the demo's own folder: a trained demo, or empty to train one "
                       "(default artifacts/demo); never your model's folder")  # fmt: skip
    own = parser.add_argument_group("your model (with --model; as modelops.publish takes them)")
    own.add_argument("--name", help="model name (default: the file's stem); served from "
                     "models/<name>")  # fmt: skip
    for option in ("labels", "task", "features", "preprocessing", "outputs", "heads", "sample"):
        own.add_argument(f"--{option}", help=f"passed to modelops.publish --{option}")
    return parser


#: Files `modelops.train` writes; a folder with all of them is a trained demo.
DEMO_FILES = ("model.keras", "preprocessing.json", "labels.json", "metrics.json", "holdout.csv")


def _own_model(args: argparse.Namespace) -> OwnModel | None:
    """The user's model from the arguments, every one checked (the file, the name, what
    modelops.publish will read) before any server starts; None: the demo."""
    options = ("name", "labels", "task", "features", "preprocessing", "outputs", "heads", "sample")
    if args.model is None:
        given = [f"--{o}" for o in options if getattr(args, o) is not None]
        if given:
            verb = "describes" if len(given) == 1 else "describe"
            raise UserMistake(f"{', '.join(given)} {verb} your model, but no --model= is given: "
                              "add --model=path/to/model.keras")  # fmt: skip
        return None
    if not args.model.strip():
        raise UserMistake("--model= is empty: give the path of your .keras or .h5 model file "
                          "(or leave it out to serve the demo)")  # fmt: skip
    path = Path(args.model)
    check_model_file(path)
    name = args.name if args.name is not None else name_from_file(path)
    if not is_model_name(name):
        raise UserMistake(f"--name={name} is not a valid model name: use 1-128 letters, "
                          "digits, '.', '_' or '-', starting with a letter or digit")  # fmt: skip
    if args.task is not None and args.task not in TASKS:
        raise UserMistake(f"--task={args.task} is not one of {', '.join(TASKS)}")
    read_labels(args.labels)
    read_labels(args.outputs, "--outputs")
    read_preprocessing(args.preprocessing)
    read_features(args.features)
    if args.labels is None and args.task in (None, *(t for t in TASKS if TASKS[t].probabilistic)):
        _ask_for_labels(path)
    values = {o: getattr(args, o) for o in options if o != "name"}
    return OwnModel(path.resolve(), name, **values)


def _ask_for_labels(path: Path) -> None:
    """A classifier served without labels would answer `0, 1, 2, ...`: ask what they are."""
    output = model_output(path)
    classes = output.classes if output is not None else None
    if classes is None:
        return
    numbers = ",".join(str(i) for i in range(classes))
    order = "negative first" if output is not None and output.units == 1 else "in output order"
    raise UserMistake(f"what are the {classes} classes of {path.name} called? give "
                      f"--labels=name1,...,name{classes} ({order}), or --labels={numbers} "
                      "to serve the class numbers")  # fmt: skip


def _demo_dir(path: Path) -> Path:
    """The demo's folder; one that holds anything but a trained demo is refused, so
    nothing is ever trained into (over) a folder of someone's own model."""
    path = path.resolve()
    if path == DEMO_DIR or not path.exists() or not any(path.iterdir()):
        return path
    missing = [name for name in DEMO_FILES if not (path / name).is_file()]
    if missing:
        raise UserMistake(f"--demo-dir={path} holds files but not a trained demo (no "
                          f"{', '.join(missing)}), so nothing is trained into it: leave "
                          "--demo-dir out, or serve your own model with "
                          "--model=path/to/model.keras")  # fmt: skip
    return path


def _check_stage(stage: str) -> None:
    try:
        stage_location(stage)
    except KeyError:
        raise UserMistake(
            f"unknown stage {stage!r}: choose one of .chalice/config.json's "
            "stages (with a MODEL_BUCKET)"
        ) from None


def _check_ports_free(s3_port: int, api_port: int) -> None:
    """Both fixed ports can be bound now (0 means any free port)."""
    for port, option in ((s3_port, "--s3-port"), (api_port, "--api-port")):
        if not port:
            continue
        try:
            bound_socket(port).close()
            taken = port_in_use(port)
        except ServerError:
            taken = True
        if taken:
            raise UserMistake(
                f"port {port} on {HOST} is already in use: free it or pass "
                f"{option}=<another port> (0 picks a free one)"
            )


def _publish_own(
    own: OwnModel, stage: str, version: str, scratch: Path
) -> tuple[Path, Callable[[str], str]]:
    """Publish the user's model to the stage's bucket under models/<name>; return a
    project copy (in `scratch`) serving it, and its banner given chalice local's URL."""
    bucket, _ = stage_location(stage)
    s3 = ensure_bucket(bucket)
    from modelops.publish import main as publish

    try:
        code = publish(own.publish_args(bucket, version))
    except SystemExit as exc:  # argparse's usage error: its message is printed
        code = exc.code if isinstance(exc.code, int) else USER_MISTAKE_EXIT
    if code:
        raise _PublishFailed(code)
    manifest = read_manifest(s3, bucket, own.prefix)
    examples = write_own_examples(example_bodies(manifest), own.scratch_dir)
    engine = "keras" if needs_keras(manifest) else None
    if engine:
        print(f"==> {own.name} has no LiteRT artifact: serving it with the Keras engine")
    project = local_project(scratch / "project", stage, own.prefix, engine)
    return project, partial(usage, model=own, manifest=manifest, examples=examples,
                            bucket=bucket)  # fmt: skip


def ensure_bucket(bucket: str) -> Any:
    """An S3 client, with `bucket` created if missing."""
    s3 = boto3.client("s3")
    if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=bucket)
    return s3


class _PublishFailed(Exception):
    """modelops.publish refused; it has said why."""

    def __init__(self, code: int) -> None:
        self.code = code


def _stop_on_signals(at_once: list[Callable[[], None]]) -> None:
    """Ctrl-C and `kill` stop the stack, even where SIGINT started out ignored (a
    background job of a non-interactive shell). Another one while stopping ends this
    process at once and quietly: moto is a thread of it; `chalice local` (in its own
    session) is killed and the scratch folder removed first."""

    def interrupt(signum: int, frame: object) -> None:
        signal.signal(signal.SIGINT, again)
        signal.signal(signal.SIGTERM, again)
        raise KeyboardInterrupt

    def again(signum: int, frame: object) -> None:
        for step in at_once:
            step()
        sys.stdout.flush()
        os._exit(0)

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def _shown(path: Path) -> Path:
    """`path` relative to the project when inside it (shorter curl lines)."""
    return path.relative_to(PROJECT_DIR) if path.is_relative_to(PROJECT_DIR) else path


def _demo_usage(
    raw_path: Path, encoded_path: Path, tensor_path: Path, columns_path: Path, url: str
) -> str:
    raw, encoded = _shown(raw_path), _shown(encoded_path)
    tensor, columns = _shown(tensor_path), _shown(columns_path)
    infer = f"{url}/v2/models/loan-grade/infer"
    return f"""The loan-grade model is being served at {url}  (Ctrl-C stops everything)

  curl -s {url}/health
  curl -s {url}/model
  curl -s -X POST {url}/predict -H 'Content-Type: application/json' -d @{raw}
  curl -s -X POST {url}/predict -H 'Content-Type: application/json' -d @{encoded}

Open Inference Protocol (KServe V2):
  curl -s {url}/v2/models/loan-grade
  curl -s -X POST {infer} -H 'Content-Type: application/json' -d @{tensor}
  curl -s -X POST {infer} -H 'Content-Type: application/json' -d @{columns}
"""


if __name__ == "__main__":
    code = main()
    # Stopped: Python restores SIGINT's default while it exits, so a late Ctrl-C would end
    # the process with SIGINT's status instead of this one.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(code)
