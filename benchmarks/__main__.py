"""`make bench`: print the benchmark tables and write a plot to build/bench/.

1. warm in-process latency of POST /predict (API Gateway event through Chalice)
   for 1, 100 and 1,000 records, raw and encoded;
2. hostile bodies up to 6 MB through the handler: status, time, peak RSS growth
   (benchmarks.hostile_bodies, a fresh process per body);
2b. 1,000 rows as the Open Inference Protocol's bodies (binary FP32 tensor, JSON
   tensor, columnar raw fields) next to /predict's, with each body's JSON-parse floor
   (benchmarks.v2_latency);
3. per Lambda runtime flavor: package size, cold init, warm latency, peak RSS
   (benchmarks.flavors; builds the packages if needed). `--skip-flavors` skips it;
4. batch scoring (benchmarks.batch): rows/s per worker, 1,000,000 rows with 2 workers,
   peak memory, and the Lambda cost projection. `--skip-batch` skips it;
5. per model kind x engine (benchmarks.engines): LiteRT, ONNX Runtime and the tensorflow
   flavor's Keras on LSTM, GRU, attention, convolution, ... models: cold init + first,
   warm 1 and 1,000 rows, peak RSS, package size. `--skip-engines` skips it.

`--only latency|v2|hostile|flavors|batch|engines` runs one of them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from benchmarks.handler_latency import TARGET_P50_MS, LatencyResult, run_handler_benchmarks
from benchmarks.hostile_bodies import print_table as print_hostile_table
from benchmarks.hostile_bodies import run_hostile_benchmarks
from localdev.stack import DEMO_DIR, ensure_demo_model
from project_paths import BUILD_DIR, PROJECT_DIR

OUT_DIR = BUILD_DIR / "bench"


def print_latency_table(results: list[LatencyResult]) -> None:
    print("\nWarm POST /predict through the Chalice app (in process, LiteRT engine)")
    print(f"{'format':<9}{'records':>8}{'p50 ms':>10}{'p99 ms':>10}{'target p50':>12}{'runs':>7}")
    for r in results:
        target = TARGET_P50_MS.get(r.records)
        verdict = (
            "" if target is None else f"<= {target:g} {'ok' if r.p50_ms <= target else 'MISS'}"
        )
        print(f"{r.fmt:<9}{r.records:>8}{r.p50_ms:>10.3f}{r.p99_ms:>10.3f}{verdict:>12}{r.runs:>7}")


def plot_latency(results: list[LatencyResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for fmt, color in (("raw", "#4c72b0"), ("encoded", "#dd8452")):
        rows = [r for r in results if r.fmt == fmt]
        sizes = [r.records for r in rows]
        axis.plot(sizes, [r.p50_ms for r in rows], "o-", color=color, label=f"{fmt} p50")
        axis.plot(sizes, [r.p99_ms for r in rows], "x--", color=color, label=f"{fmt} p99")
    axis.set(xscale="log", yscale="log", xlabel="records per request", ylabel="ms",
             title="Warm POST /predict latency (in process)")  # fmt: skip
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-flavors", action="store_true")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the flavor packages")
    parser.add_argument(
        "--only", choices=["latency", "v2", "hostile", "flavors", "batch", "engines"]
    )
    parser.add_argument("--skip-batch", action="store_true")
    parser.add_argument("--skip-engines", action="store_true")
    args = parser.parse_args(argv)
    everything = {"latency", "v2", "hostile", "flavors", "batch", "engines"}
    wanted = {args.only} if args.only else everything
    if args.skip_engines:
        wanted.discard("engines")
    if args.skip_flavors:
        wanted.discard("flavors")
    if args.skip_batch:
        wanted.discard("batch")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    ensure_demo_model(DEMO_DIR)
    if "latency" in wanted:
        with tempfile.TemporaryDirectory() as tmp:
            results = run_handler_benchmarks(DEMO_DIR, Path(tmp))
        print_latency_table(results)
        plot_latency(results, OUT_DIR / "handler_latency.png")
        print(f"plot: {(OUT_DIR / 'handler_latency.png').relative_to(PROJECT_DIR)}")
    if "v2" in wanted:
        from benchmarks.v2_latency import print_table as print_v2_table
        from benchmarks.v2_latency import run_v2_benchmarks

        with tempfile.TemporaryDirectory() as tmp:
            print_v2_table(run_v2_benchmarks(DEMO_DIR, Path(tmp)))
    if "hostile" in wanted:
        with tempfile.TemporaryDirectory() as tmp:
            print_hostile_table(run_hostile_benchmarks(DEMO_DIR, Path(tmp)))
    if "flavors" in wanted:
        from benchmarks.flavors import (
            plot_flavors,
            print_arm64_row,
            print_flavor_table,
            run_flavor_benchmarks,
        )

        flavors = run_flavor_benchmarks(DEMO_DIR, rebuild=args.rebuild)
        print_flavor_table(flavors)
        print_arm64_row()
        plot_flavors(flavors, OUT_DIR / "flavors.png")
        print(f"plot: {(OUT_DIR / 'flavors.png').relative_to(PROJECT_DIR)}")
    if "batch" in wanted:
        from benchmarks.batch import run_batch_benchmarks

        run_batch_benchmarks(rows=1_000_000, workers=2)
    if "engines" in wanted:
        from benchmarks.engines import print_engine_table, run_engine_benchmarks

        print_engine_table(run_engine_benchmarks())
    return 0


if __name__ == "__main__":
    sys.exit(main())
