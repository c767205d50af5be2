"""`make serve`: moto S3 + demo model + `chalice local`, stopped together by Ctrl-C.

1. starts a moto S3 server on 127.0.0.1:5000 (in this process),
2. trains the demo model into artifacts/demo/ unless it is there,
3. publishes it where the `dev` stage reads its model,
4. runs `chalice local` on 127.0.0.1:8000 and prints curl commands that work.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3

from deployment.stages import stage_location
from localdev.servers import ChaliceLocal, MotoServer, ServerError, s3_env
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
    s3 = boto3.client("s3")
    if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=bucket)
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


def write_examples(out_dir: Path) -> tuple[Path, Path]:
    """Request bodies from held-out records: raw fields, and the same encoded."""
    from modelops.examples import example_requests

    raw, encoded = example_requests(out_dir)
    raw_path, encoded_path = out_dir / "example-raw.json", out_dir / "example-encoded.json"
    raw_path.write_text(json.dumps(raw, indent=2))
    encoded_path.write_text(json.dumps(encoded, indent=2))
    return raw_path, encoded_path


def main(argv: list[str] | None = None) -> int:
    """Run the local stack until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--s3-port", type=int, default=5000, help="0: any free port")
    parser.add_argument("--api-port", type=int, default=8000, help="0: any free port")
    parser.add_argument("--version", default="1", help="bundle version to publish")
    parser.add_argument("--model-dir", type=Path, default=DEMO_DIR, help="trained model files")
    args = parser.parse_args(argv)
    model_dir = args.model_dir.resolve()

    _stop_on_signals()
    s3 = MotoServer(args.s3_port)
    api: ChaliceLocal | None = None
    try:
        s3.start()
        print(f"==> moto S3 server on {s3.url}", flush=True)
        env = s3_env(s3.url)
        os.environ.update(env)
        ensure_demo_model(model_dir)
        publish_demo(model_dir, args.stage, args.version)
        raw_path, encoded_path = write_examples(model_dir)
        print(f"==> starting chalice local (stage {args.stage})", flush=True)
        api = ChaliceLocal(args.stage, env, port=args.api_port or None, quiet=False)
        api.start()
        _print_usage(api.url, raw_path, encoded_path)
        while api.process is not None and api.process.poll() is None:
            time.sleep(0.5)
        print("chalice local stopped", file=sys.stderr)
        return 1
    except ServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\n==> stopping", flush=True)
        return 0
    finally:
        if api is not None:
            api.stop()
        s3.stop()


def _stop_on_signals() -> None:
    """Ctrl-C and `kill` both stop the stack, even where SIGINT started out ignored
    (a background job of a non-interactive shell)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def _shown(path: Path) -> Path:
    """`path` relative to the project when inside it (shorter curl lines)."""
    return path.relative_to(PROJECT_DIR) if path.is_relative_to(PROJECT_DIR) else path


def _print_usage(url: str, raw_path: Path, encoded_path: Path) -> None:
    raw, encoded = _shown(raw_path), _shown(encoded_path)
    print(
        f"""
The loan-grade model is being served at {url}  (Ctrl-C stops everything)

  curl -s {url}/health
  curl -s {url}/model
  curl -s -X POST {url}/predict -H 'Content-Type: application/json' -d @{raw}
  curl -s -X POST {url}/predict -H 'Content-Type: application/json' -d @{encoded}
""",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
