"""Hostile bodies up to Lambda's 6 MB payload limit, each through the Lambda handler
(`app(event, context)` with an API Gateway event) in a fresh interpreter, so the
peak RSS growth over the warm baseline (model loaded) belongs to that body alone.

Run one body: `python -m benchmarks.hostile_bodies NAME --model-dir DIR` (the
environment says where the model is); it prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SIZE = 6_300_000  # a little more than 6 MB: Lambda's synchronous payload limit
MAX_GROWTH_MB = 64.0
MAX_SECONDS = 0.5


def _nested_arrays(_: Path) -> bytes:
    return b"[" * (SIZE // 2) + b"]" * (SIZE // 2)


def _nested_mix(_: Path) -> bytes:
    unit = b"[],[[]],[[[]]],"
    return b"[" + unit * (SIZE // len(unit)) + b"[]]"


def _empty_objects(_: Path) -> bytes:
    return b"[" + b"{}," * (SIZE // 3 - 1) + b"{}]"


def _instances_of_empty_objects(_: Path) -> bytes:
    return b'{"instances": [' + b"{}," * (SIZE // 3 - 6) + b"{}]}"


def _unknown_keys(_: Path) -> bytes:
    keys: list[bytes] = []
    size = 0
    while size < SIZE:
        keys.append(b'"k%d":0' % len(keys))
        size += len(keys[-1]) + 1
    return b"[{" + b",".join(keys) + b"}]"


def _valid_looking_records(model_dir: Path) -> bytes:
    from modelops.examples import holdout_records

    record = json.dumps(holdout_records(model_dir, 1)[0][0]).encode()
    return b"[" + b",".join([record] * (SIZE // (len(record) + 1))) + b"]"


def _widest_allowed_records(_: Path) -> bytes:
    """1,000 records of 1,024 values: the most the structural checks let through."""
    from chalicelib.surfaces.json_structure import MAX_VALUES_PER_RECORD

    record = b"[" + b",".join([b"1.5"] * MAX_VALUES_PER_RECORD) + b"]"
    return b"[" + b",".join([record] * 1000) + b"]"


def _v2_tensor(name: bytes = b"x") -> bytes:
    return b'{"name":"%s","datatype":"FP32","shape":[1],"data":[1]}' % name


def _v2_empty_objects(_: Path) -> bytes:
    return b'{"inputs":[' + b"{}," * (SIZE // 3 - 5) + b"{}]}"


def _v2_empty_rows(_: Path) -> bytes:
    head = b'{"inputs":[{"name":"x","datatype":"FP32","shape":[2000000,0],"data":['
    return head + b"[]," * (SIZE // 3 - 25) + b"[]]}]}"


def _v2_unknown_member(_: Path) -> bytes:
    return b'{"x":[' + b"{}," * (SIZE // 3 - 25) + b'{}],"inputs":[' + _v2_tensor() + b"]}"


def _v2_parameter_keys(model_dir: Path) -> bytes:
    """The 580k keys of `_unknown_keys`, as the request's parameters."""
    keys = _unknown_keys(model_dir)[2:-2]
    return b'{"parameters":{' + keys + b'},"inputs":[' + _v2_tensor() + b"]}"


def _v2_unknown_inputs(_: Path) -> bytes:
    """90,000 well-formed tensors of names the model does not have (~6 MB)."""
    tensors = b",".join(_v2_tensor(b"u%d" % i) for i in range(90_000))
    return b'{"inputs":[' + tensors + b"]}"


def _v2_few_unknown_inputs(_: Path) -> bytes:
    """2,000 unknown names: small enough to parse, so the error lists them (capped)."""
    tensors = b",".join(_v2_tensor(b"u%d" % i) for i in range(2_000))
    return b'{"inputs":[' + tensors + b"]}"


def _v2_widest_allowed(_: Path) -> bytes:
    """A 1,000 x 1,024 FP32 tensor: about the most values the V2 budget lets through."""
    from chalicelib.surfaces.json_structure import MAX_VALUES_PER_RECORD

    data = b",".join([b"1.5"] * (1000 * MAX_VALUES_PER_RECORD))
    shape = b"[1000,%d]" % MAX_VALUES_PER_RECORD
    head = b'{"inputs":[{"name":"x","datatype":"FP32","shape":' + shape
    return head + b',"data":[' + data + b"]}]}"


def _batch_empty_objects(_: Path) -> bytes:
    return b'{"input":[' + b"{}," * (SIZE // 3 - 5) + b"{}]}"


@dataclass(frozen=True)
class Hostile:
    """One hostile body and the route it is sent to."""

    path: str
    build: Callable[[Path], bytes]


_V2 = "/v2/models/loan-grade/infer"
BODIES: dict[str, Hostile] = {
    "nested arrays [[[...]]]": Hostile("/predict", _nested_arrays),
    "nested mix [[],[[]],...]": Hostile("/predict", _nested_mix),
    "2.1M empty objects [{},...]": Hostile("/predict", _empty_objects),
    '{"instances": [{},...]}': Hostile("/predict", _instances_of_empty_objects),
    "580k unknown keys in 1 record": Hostile("/predict", _unknown_keys),
    "raw loan records (5,700)": Hostile("/predict", _valid_looking_records),
    "1,000 records x 1,024 values": Hostile("/predict", _widest_allowed_records),
    'V2 {"inputs":[{},...]}': Hostile(_V2, _v2_empty_objects),
    "V2 data [[],[],...]": Hostile(_V2, _v2_empty_rows),
    "V2 unknown member x:[{},...]": Hostile(_V2, _v2_unknown_member),
    "V2 580k parameters keys": Hostile(_V2, _v2_parameter_keys),
    "V2 90,000 unknown inputs": Hostile(_V2, _v2_unknown_inputs),
    "V2 2,000 unknown inputs": Hostile(_V2, _v2_few_unknown_inputs),
    "V2 1,000 x 1,024 FP32 values": Hostile(_V2, _v2_widest_allowed),
    'batch {"input":[{},...]}': Hostile("/batch", _batch_empty_objects),
}
#: What POST /batch needs to read a body at all: a stage that declares the batch path.
BATCH_ENV = {
    "BATCH_BUCKET": "bench-batch",
    "BATCH_CHUNK_QUEUE": "bench-chunks",
    "BATCH_DEAD_LETTER_QUEUE": "bench-dlq",
    "BATCH_EVENTS_QUEUE": "bench-events",
}


@dataclass(frozen=True)
class HostileResult:
    body: str
    size_mb: float
    status: int
    code: str
    seconds: float
    growth_mb: float
    #: The answer's body size (an error body's details are capped).
    answer_kb: float = 0.0

    @property
    def within_bound(self) -> bool:
        return self.growth_mb <= MAX_GROWTH_MB and self.seconds <= MAX_SECONDS


def run_hostile_benchmarks(model_dir: Path, tmp_dir: Path) -> list[HostileResult]:
    """Publish the model to a private moto server, then send each body."""
    import boto3

    from localdev.servers import MotoServer, s3_env
    from modelops.publish import main as publish

    with MotoServer() as server:
        env = s3_env(server.url) | {
            "MODEL_BUCKET": "bench",
            "MODEL_PREFIX": "m",
            "MODEL_CACHE_DIR": str(tmp_dir),
            "MAX_RECORDS": "1000",
        }
        saved = dict(os.environ)
        os.environ.update(env)
        try:
            boto3.client("s3").create_bucket(Bucket="bench")
            assert publish(["--model", str(model_dir / "model.keras"), "--name", "loan-grade",
                            "--version", "1", "--bucket", "bench", "--prefix", "m", "--overwrite",
                            "--preprocessing", str(model_dir / "preprocessing.json"),
                            "--labels", str(model_dir / "labels.json")]) == 0  # fmt: skip
        finally:
            os.environ.clear()
            os.environ.update(saved)
        return run_all(model_dir, env)


def run_all(model_dir: Path, env: dict[str, str]) -> list[HostileResult]:
    """Each body in its own interpreter; `env` points the app at a published model."""
    return [run_one(name, model_dir, env) for name in BODIES]


def run_one(name: str, model_dir: Path, env: dict[str, str]) -> HostileResult:
    child = subprocess.run(
        [sys.executable, "-m", "benchmarks.hostile_bodies", name, "--model-dir", str(model_dir)],
        env=os.environ | BATCH_ENV | env, capture_output=True, text=True, check=False, timeout=300,
        cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    if child.returncode != 0:
        raise RuntimeError(f"{name}: {child.stderr[-2000:]}")
    return HostileResult(**json.loads(child.stdout.strip().splitlines()[-1]))


def print_table(results: list[HostileResult]) -> None:
    print(
        f"\nHostile bodies through the Lambda handler (fresh process each; bound: "
        f"<= {MAX_GROWTH_MB:g} MB peak RSS growth over warm, <= {MAX_SECONDS:g} s)"
    )
    print(f"{'body':<31}{'MB':>6}{'status':>8}  {'code':<18}{'time s':>8}{'RSS +MB':>9}"
          f"{'answer KB':>10}  bound")  # fmt: skip
    for r in results:
        verdict = "ok" if r.within_bound else "MISS"
        print(f"{r.body:<31}{r.size_mb:>6.2f}{r.status:>8}  {r.code:<18}{r.seconds:>8.3f}"
              f"{r.growth_mb:>9.1f}{r.answer_kb:>10.1f}  {verdict}")  # fmt: skip


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _measure(name: str, model_dir: Path) -> HostileResult:
    """In the child: warm the handler, then send one hostile body and watch VmHWM."""
    from app import app
    from localdev.apigw_events import LambdaContext, proxy_event
    from modelops.examples import holdout_records

    context = LambdaContext()
    warm = app(proxy_event("POST", "/predict", holdout_records(model_dir, 2)[0]), context)
    assert warm["statusCode"] == 200, warm["body"][:300]
    hostile = BODIES[name]
    body = hostile.build(model_dir)
    event = proxy_event("POST", hostile.path, body.decode())
    if hostile.path == _V2:
        event["pathParameters"] = {"name": "loan-grade"}
        event["resource"] = event["requestContext"]["resourcePath"] = "/v2/models/{name}/infer"
    del body
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # resets the peak (VmHWM) to the current RSS
    baseline = _status_kb("VmRSS")
    started = time.perf_counter()
    response = app(event, context)
    seconds = time.perf_counter() - started
    growth = (_status_kb("VmHWM") - baseline) / 1024
    answer = json.loads(response["body"])
    error = answer.get("error")
    code = error["code"] if isinstance(error, dict) else "-"  # V2 errors are text only
    size = len(event["body"]) / 1e6
    return HostileResult(name, size, response["statusCode"], code, seconds, growth,
                         len(response["body"]) / 1e3)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("body", choices=sorted(BODIES))
    parser.add_argument("--model-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    print(json.dumps(_measure(args.body, args.model_dir).__dict__))
    return 0


if __name__ == "__main__":
    sys.exit(main())
