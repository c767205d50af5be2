"""Per runtime flavor: package size, cold init, warm latency and peak RSS, measured on
the packaged zips in the Lambda-like layout (layer_build.lambda_like)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.stats import p50_p99, percentile
from deployment.package import chalice_package
from deployment.project import DEPLOYED_PARTS, copy_project
from layer_build.build import build_runtime
from layer_build.cache import runtime_vendor_dir
from layer_build.elf_check import check_tree
from layer_build.flavors import FLAVORS, MB, Flavor
from layer_build.lambda_like import LambdaLayout, invoke, unpack
from layer_build.platforms import ARM64, X86_64
from layer_build.size_report import measure
from localdev.apigw_events import proxy_event
from localdev.servers import MotoServer, s3_env
from modelops.examples import holdout_records
from project_paths import BUILD_DIR, CHALICE_DIR, PROJECT_DIR

COLD_STARTS = 5
WARM_RUNS = 200
TARGETS: dict[str, dict[str, float | None]] = {
    "lite": {"zipped": 50.0, "unzipped": 250.0, "cold": 1.0, "rss": 150.0},
    "tensorflow": {"zipped": None, "unzipped": 250.0, "cold": 8.0, "rss": None},
}


@dataclass(frozen=True)
class FlavorResult:
    flavor: str
    zipped_mb: float
    unzipped_mb: float
    cold_init_s: float
    cold_init_all: list[float]
    cold_phases: tuple[float, ...]  # median unpack, import, first call (S3 load + predict)
    warm_ms: dict[int, tuple[float, float]]  # records -> (p50, p99)
    peak_rss_mb: float


def ensure_package(flavor: Flavor, rebuild: bool) -> Path:
    """build/bench/<flavor>/package: the flavor's packaged zips, made from the cached
    runtime when missing or packaged from other sources than the checkout's, or from a
    fresh build when asked to (vendor/ is left alone)."""
    out = BUILD_DIR / "bench" / flavor.name / "package"
    stamp = out.parent / "package.sources"
    sources = deployed_sources_digest()
    if not rebuild and (out / "sam.json").exists() and _read(stamp) == sources:
        return out
    with tempfile.TemporaryDirectory() as tmp:
        vendor = Path(tmp) / "vendor"
        if rebuild:
            build_runtime(flavor, vendor_dir=vendor, work_dir=Path(tmp) / "work")
        else:
            vendor = runtime_vendor_dir(flavor)
        chalice_package(flavor, project_dir=copy_project(Path(tmp) / "project", vendor), out=out)
    stamp.write_text(sources)
    return out


def deployed_sources_digest() -> str:
    """sha256 over what Chalice packages from the checkout (app, chalicelib, config) and
    the code that packages it."""
    digest = hashlib.sha256()
    files = [PROJECT_DIR / part for part in DEPLOYED_PARTS if (PROJECT_DIR / part).is_file()]
    for part in DEPLOYED_PARTS:
        if (PROJECT_DIR / part).is_dir():
            files += sorted((PROJECT_DIR / part).rglob("*.py"))
            files += sorted((PROJECT_DIR / part).rglob("*.json"))
    files += sorted(CHALICE_DIR.glob("*.json"))
    # How the zips are made, too: a package from older packaging code is stale (e.g. without
    # the function's bytecode, layer_build.function_bytecode).
    files += [PROJECT_DIR / "deployment" / "package.py"]
    files += sorted((PROJECT_DIR / "layer_build").glob("*zip*.py"))
    files += [PROJECT_DIR / "layer_build" / "function_bytecode.py"]
    for path in files:
        digest.update(str(path.relative_to(PROJECT_DIR)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


def measure_flavor(flavor: Flavor, layout: LambdaLayout, model_dir: Path, s3_url: str,
                   package: Path) -> FlavorResult:  # fmt: skip
    sizes = [measure(p) for p in sorted(package.glob("*.zip"))]
    records, _ = holdout_records(model_dir, 1000)
    one = proxy_event("POST", "/predict", {"instances": records[:1]})
    thousand = proxy_event("POST", "/predict", {"instances": records})
    colds, phases = [], []
    for _ in range(COLD_STARTS):
        with tempfile.TemporaryDirectory() as tmp:  # a new container: empty /tmp
            os.sync()  # ... and no disk writeback left over from the previous one
            env = s3_env(s3_url) | {"MODEL_CACHE_DIR": tmp, "RUNTIME_UNPACK_DIR": tmp}
            report = invoke(layout, [one], env)
            colds.append(report["import_seconds"] + report["first_call_seconds"])
            unpack = report["unpack_seconds"]
            phases.append((unpack, report["import_seconds"] - unpack, report["first_call_seconds"]))
    with tempfile.TemporaryDirectory() as tmp:
        env = s3_env(s3_url) | {"MODEL_CACHE_DIR": tmp, "RUNTIME_UNPACK_DIR": tmp}
        warm = invoke(layout, [one, thousand], env, repeat=WARM_RUNS)
    latencies = {}
    for size, result in zip((1, 1000), warm["results"], strict=True):
        latencies[size] = p50_p99([t * 1000 for t in result["seconds"][1:]])
    return FlavorResult(
        flavor.name,
        sum(s.zipped for s in sizes) / MB,
        sum(s.unzipped for s in sizes) / MB,
        percentile(colds, 50),
        colds,
        tuple(percentile([p[i] for p in phases], 50) for i in range(3)),
        latencies,
        warm["maxrss_kb"] / 1024,
    )


def run_flavor_benchmarks(model_dir: Path, rebuild: bool = False) -> list[FlavorResult]:
    """Package each flavor if needed, publish the model to a private moto server, measure."""
    packages = {name: ensure_package(flavor, rebuild) for name, flavor in FLAVORS.items()}
    server = MotoServer().start()
    saved = dict(os.environ)
    try:
        os.environ.update(s3_env(server.url))
        from localdev.stack import publish_demo

        publish_demo(model_dir, "dev", "1")  # both flavors' stages read the dev bucket
        results = []
        with tempfile.TemporaryDirectory() as tmp:
            for name, flavor in FLAVORS.items():
                print(f"==> measuring flavor {name} ({COLD_STARTS} cold starts, warm runs)")
                layout = unpack(packages[name], Path(tmp) / name)
                results.append(measure_flavor(flavor, layout, model_dir, server.url,
                                              packages[name]))  # fmt: skip
        return results
    finally:
        os.environ.clear()
        os.environ.update(saved)
        server.stop()


def print_flavor_table(results: list[FlavorResult]) -> None:
    print("\nPer flavor, packaged zips in the Lambda-like layout (model from local S3)")
    print(f"{'flavor':<12}{'zipped MB':>10}{'unzipped MB':>12}{'cold init s':>12}"
          f"{'1 rec p50/p99 ms':>18}{'1000 rec p50/p99 ms':>21}{'peak RSS MB':>12}")  # fmt: skip
    for r in results:
        one, thousand = r.warm_ms[1], r.warm_ms[1000]
        print(f"{r.flavor:<12}{r.zipped_mb:>10.1f}{r.unzipped_mb:>12.1f}{r.cold_init_s:>12.2f}"
              f"{f'{one[0]:.2f} / {one[1]:.2f}':>18}{f'{thousand[0]:.1f} / {thousand[1]:.1f}':>21}"
              f"{r.peak_rss_mb:>12.0f}")  # fmt: skip
    print("targets: lite <= 50 MB zipped, <= 250 MB unzipped, cold init <= 1.0 s, RSS <= 150 MB; "
          "tensorflow within 250 MB unzipped, cold init <= 8 s")  # fmt: skip
    for r in results:
        misses = _missed_targets(r)
        verdict = "all targets met" if not misses else "MISSED: " + ", ".join(misses)
        colds = ", ".join(f"{c:.2f}" for c in r.cold_init_all)
        unpack, imports, first = r.cold_phases
        print(
            f"  {r.flavor}: {verdict}; cold starts {colds} s; median phases: unpack "
            f"{unpack:.2f} s, import {imports:.2f} s, first call (S3 load + predict) {first:.2f} s"
        )


def _missed_targets(r: FlavorResult) -> list[str]:
    measured = {"zipped": r.zipped_mb, "unzipped": r.unzipped_mb, "cold": r.cold_init_s,
                "rss": r.peak_rss_mb}  # fmt: skip
    misses = []
    for key, value in measured.items():
        limit = TARGETS[r.flavor][key]
        if limit is not None and value > limit:
            misses.append(f"{key} {value:.2f} > {limit}")
    return misses


def plot_flavors(results: list[FlavorResult], path: Path) -> None:
    """Cold init and package size per flavor, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r.flavor for r in results]
    figure, (cold, size) = plt.subplots(1, 2, figsize=(9, 3.6))
    cold.bar(names, [r.cold_init_s for r in results], color=["#4c72b0", "#dd8452"])
    for i, r in enumerate(results):
        cold.plot([i] * len(r.cold_init_all), r.cold_init_all, "k.", alpha=0.6)
    cold.axhline(10, color="red", linestyle="--", linewidth=1, label="Lambda init limit")
    cold.set(ylabel="seconds", title="Cold init (import + S3 load + 1st prediction)")
    cold.legend()
    size.bar([f"{n}\nzipped" for n in names], [r.zipped_mb for r in results], color="#55a868")
    size.bar([f"{n}\nunzipped" for n in names], [r.unzipped_mb for r in results], color="#8172b3")
    size.axhline(250, color="red", linestyle="--", linewidth=1, label="250 MB unzipped")
    size.axhline(50, color="orange", linestyle=":", linewidth=1, label="50 MB direct upload")
    size.set(ylabel="MB", title="Package size (function + layers)")
    size.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def print_arm64_row(stage: str = "prod-arm64") -> None:
    """The lite flavor for arm64 (Graviton): sizes and the static checks; it can't be run
    here (no aarch64 CPython 3.12 is to be had from the reachable registries)."""
    flavor = FLAVORS["lite"]
    vendor = runtime_vendor_dir(flavor, arch=ARM64)
    elf = check_tree(vendor, ARM64)
    (BUILD_DIR / "bench").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=BUILD_DIR / "bench") as tmp:
        out = Path(tmp) / "package"
        chalice_package(flavor, stage, project_dir=copy_project(Path(tmp) / "project", vendor),
                        out=out)  # fmt: skip
        sizes = [measure(p) for p in sorted(out.glob("*.zip"))]
    glibc = ".".join(map(str, elf.highest_glibc))
    print(f"{'lite arm64':<12}{sum(s.zipped for s in sizes) / MB:>10.1f}"
          f"{sum(s.unzipped for s in sizes) / MB:>12.1f}   not run here (no aarch64 "
          "interpreter)")  # fmt: skip
    print(f"  lite arm64: {len(elf.files)} ELF files, all aarch64, highest glibc {glibc} "
          f"(<= 2.34: {'ok' if not elf.problems else 'MISS'}); compute "
          f"${ARM64.price_per_gb_second:.10f}/GB-s vs ${X86_64.price_per_gb_second:.10f} x86_64 "
          f"({1 - ARM64.price_per_gb_second / X86_64.price_per_gb_second:.0%} less)")  # fmt: skip
