"""Per model kind x engine (modelops.model_zoo): cold init + first prediction, warm
latency for 1 and 1,000 rows, peak RSS, package size and |Δ| against Keras, measured on
the packaged zips run Lambda-like. Each kind is published once per lite engine that
converts it (`--engine`), and Keras-only for the tensorflow flavor (the seed's way of
serving every model), so the rows compare engines on the same model.

Cold starts run as on Lambda: the function's code is read-only (no .pyc written by one
cold start for the next). Wall time on a shared machine depends on its load, so each row
also gives the cold process's CPU time to the first answer (user + system, interpreter
start included) and
the table prints the load average: compare CPU times across runs, wall times within one."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.flavors import ensure_package
from benchmarks.stats import percentile
from chalicelib.engines.registry import ENGINES
from layer_build.flavors import FLAVORS, MB
from layer_build.lambda_like import LambdaLayout, invoke, unpack
from layer_build.size_report import measure
from localdev.apigw_events import proxy_event
from localdev.servers import MotoServer, s3_env
from modelops.model_zoo import ZOO, ZooModel, keras_outputs, served_outputs

BUCKET = "bench-zoo"
COLD_STARTS = {"lite": 5, "tensorflow": 1}  # a tensorflow cold start takes ~10 s
WARM_RUNS = 100
COLD_TARGET_S = 0.35  # the lite runtime, every kind (issue 18)


@dataclass(frozen=True)
class EngineRow:
    kind: str
    engine: str
    flavor: str
    converts: bool
    cold_s: float = 0.0
    colds: tuple[float, ...] = ()
    warm_one_ms: float = 0.0
    warm_thousand_ms: float = 0.0
    peak_rss_mb: float = 0.0
    zipped_mb: float = 0.0
    unzipped_mb: float = 0.0
    max_abs_diff: float = 0.0
    why_not: str = ""
    #: Median seconds importing the app (its engine is imported later) and of the first call
    #: (manifest and model from S3, engine import and load, the prediction).
    phases: tuple[float, float] = (0.0, 0.0)
    #: Median CPU seconds (user + system, every thread) of a cold-start process from the
    #: interpreter's start to the first answer.
    cold_cpu_s: float = 0.0


def run_engine_benchmarks(
    kinds: list[str] | None = None, tensorflow: bool = True
) -> list[EngineRow]:
    """Publish each kind per engine to a private moto server and measure each row."""
    flavors = ["lite", "tensorflow"] if tensorflow else ["lite"]
    packages = {name: ensure_package(FLAVORS[name], rebuild=False) for name in flavors}
    sizes = {name: [measure(p) for p in sorted(packages[name].glob("*.zip"))] for name in flavors}
    server = MotoServer().start()
    saved = dict(os.environ)
    rows: list[EngineRow] = []
    try:
        os.environ.update(s3_env(server.url))
        import boto3

        boto3.client("s3").create_bucket(Bucket=BUCKET)
        with tempfile.TemporaryDirectory() as tmp:
            layouts = {name: unpack(packages[name], Path(tmp) / name) for name in flavors}
            for name in kinds or list(ZOO):
                entry = ZOO[name]
                model = entry.build()
                path = Path(tmp) / f"{name}-model.keras"
                model.save(path)
                for engine, flavor in _engines(flavors):
                    print(f"==> {name}: {ENGINES[engine].label} ({flavor} flavor)", flush=True)
                    problem = _publish(path, entry, engine)
                    if problem:
                        rows.append(EngineRow(name, engine, flavor, False, why_not=problem))
                        continue
                    package = (sum(z.zipped for z in sizes[flavor]) / MB,
                               sum(z.unzipped for z in sizes[flavor]) / MB)  # fmt: skip
                    rows.append(_measure(layouts[flavor], entry, model, engine, flavor,
                                         server.url, package))  # fmt: skip
    finally:
        os.environ.clear()
        os.environ.update(saved)
        server.stop()
    return rows


def _engines(flavors: list[str]) -> list[tuple[str, str]]:
    """(engine, flavor) per row: the lite engines, then Keras on the tensorflow flavor."""
    lite = [(kind, "lite") for kind, spec in ENGINES.items() if spec.converter is not None]
    # The engine that runs the Keras file itself, on its own flavor (the seed's way).
    keras = [(kind, spec.flavors[0]) for kind, spec in ENGINES.items()
             if spec.converter is None and spec.flavors[0] in flavors]  # fmt: skip
    return lite + keras


def _publish(path: Path, entry: ZooModel, engine: str) -> str | None:
    """Publish `engine`'s bundle to models/<kind>-<engine>; why not, if it cannot."""
    import boto3

    from modelops.publish import PublishError, build_bundle, upload_bundle

    try:
        built = build_bundle(path, name=entry.name, version="1", feature_names=entry.features,
                             engine=engine)  # fmt: skip
    except PublishError as exc:
        return str(exc).split(";")[0]
    upload_bundle(built, boto3.client("s3"), BUCKET, f"models/{entry.name}-{engine}",
                  overwrite=True)  # fmt: skip
    return None


def _measure(layout: LambdaLayout, entry: ZooModel, model: Any, engine: str, flavor: str,
             s3_url: str, package: tuple[float, float]) -> EngineRow:  # fmt: skip
    rows = entry.rows(1000)
    one = proxy_event("POST", "/predict", entry.records(rows[:1]))
    thousand = proxy_event("POST", "/predict", entry.records(rows))
    colds, phases, cpus = [], [], []
    for _ in range(COLD_STARTS[flavor]):
        with tempfile.TemporaryDirectory() as tmp:  # a new container: empty /tmp
            report = invoke(layout, [one], _env(s3_url, tmp, entry, engine), read_only_code=True)
            colds.append(report["import_seconds"] + report["first_call_seconds"])
            phases.append((report["import_seconds"], report["first_call_seconds"]))
            cpus.append(report["first_answer_cpu_seconds"])
    with tempfile.TemporaryDirectory() as tmp:
        warm = invoke(
            layout,
            [one, thousand],
            _env(s3_url, tmp, entry, engine),
            repeat=WARM_RUNS,
            read_only_code=True,
        )
    one_ms, thousand_ms = (
        percentile([t * 1000 for t in result["seconds"][1:]], 50) for result in warm["results"]
    )
    answer = json.loads(warm["results"][1]["response"]["body"])
    served = served_outputs(model, answer["predictions"])
    expected = keras_outputs(model, rows)
    return EngineRow(
        entry.name, engine, flavor, True, _median(colds),
        tuple(colds), one_ms, thousand_ms, warm["maxrss_kb"] / 1024, *package,
        max_abs_diff=float(np.abs(served - expected).max()),
        phases=(_median([p[0] for p in phases]), _median([p[1] for p in phases])),
        cold_cpu_s=_median(cpus),
    )  # fmt: skip


def _median(values: list[float]) -> float:
    return percentile(values, 50) if len(values) > 1 else values[0]


def _env(s3_url: str, tmp: str, entry: ZooModel, engine: str) -> dict[str, str]:
    return s3_env(s3_url) | {
        "MODEL_BUCKET": BUCKET, "MODEL_PREFIX": f"models/{entry.name}-{engine}",
        "MODEL_CACHE_DIR": tmp, "RUNTIME_UNPACK_DIR": tmp,
    }  # fmt: skip


def print_engine_table(rows: list[EngineRow]) -> None:
    print("\nPer model kind x engine, packaged zips in the Lambda-like layout (model from local "
          "S3; cold = import + S3 load + first prediction, median of "
          f"{COLD_STARTS['lite']} lite / {COLD_STARTS['tensorflow']} tensorflow cold starts; "
          "cpu = the cold process's CPU time to its first answer, interpreter start "
          "included)")  # fmt: skip
    print(_load_line())
    print(f"{'kind':<18}{'engine':<20}{'cold s':>8}{'cpu s':>7}{'import/1st':>12}{'1 row ms':>10}"
          f"{'1000 rows ms':>14}{'RSS MB':>8}{'zip/unzip MB':>14}{'max |Δ|':>10}")  # fmt: skip
    for r in rows:
        label = f"{ENGINES[r.engine].label}"
        if not r.converts:
            print(f"{r.kind:<18}{label:<20}  does not convert: {r.why_not[:90]}")
            continue
        sizes = f"{r.zipped_mb:.1f}/{r.unzipped_mb:.0f}"
        split = f"{r.phases[0]:.2f}/{r.phases[1]:.2f}"
        print(f"{r.kind:<18}{label:<20}{r.cold_s:>8.2f}{r.cold_cpu_s:>7.2f}{split:>12}"
              f"{r.warm_one_ms:>10.3f}"
              f"{r.warm_thousand_ms:>14.2f}{r.peak_rss_mb:>8.0f}{sizes:>14}"
              f"{r.max_abs_diff:>10.1e}")  # fmt: skip
    lite = [r for r in rows if r.converts and r.flavor == "lite"]
    for what, value in (("wall", lambda r: r.cold_s), ("CPU", lambda r: r.cold_cpu_s)):
        misses = [f"{r.kind}/{r.engine} {value(r):.2f} s" for r in lite if value(r) > COLD_TARGET_S]
        print(
            f"target: lite cold init + first <= {COLD_TARGET_S} s for every kind ({what}): "
            + ("met" if not misses else "MISSED: " + ", ".join(misses))
        )
    print(_load_line())


def _load_line() -> str:
    """The machine's load next to its cores: wall times above mean little when busy."""
    one, five, _ = os.getloadavg()
    cores = os.cpu_count() or 1
    busy = " (busy: wall times include waiting for a core)" if one > cores / 2 else ""
    return f"load average {one:.1f} (1 min) / {five:.1f} (5 min) on {cores} cores{busy}"
