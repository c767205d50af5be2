"""Runs inside a fresh `python3.12 -I -S`, laid out like Lambda: imports the handler
and invokes it with API Gateway events read as JSON from stdin.

    python3.12 -I -S lambda_driver.py TASK_DIR OPT_DIR BOTO3_DIR < request.json

request: {"env": {...}, "events": [...], "repeat": N}. Prints one JSON line: init
seconds, per-event responses (the last of N warm repeats) and timings, peak RSS.
Only the standard library may be imported before the handler.
"""

import json
import os
import resource
import sys
import time
from typing import Any


def peak_rss_kb() -> int:
    """This process's peak RSS (VmHWM). Not ru_maxrss: Linux carries that across exec,
    so a child of a big parent would report the parent's size."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> int:
    started = time.perf_counter()
    task, opt, boto3_dir = sys.argv[1:4]
    # Lambda's order: function code, layer site-packages, layer python/, runtime (boto3).
    sys.path[:0] = [task, f"{opt}/python/lib/python3.12/site-packages", f"{opt}/python", boto3_dir]
    request = json.load(sys.stdin)
    os.environ.update(request["env"])
    os.chdir(task)
    import app  # the handler module, as Lambda imports it

    class Context:
        function_name, memory_limit_in_mb, aws_request_id = "lambda-like", 256, "local"

        @staticmethod
        def get_remaining_time_in_millis() -> int:
            return 30_000

    imported = time.perf_counter()
    results: list[dict[str, Any]] = []
    first_answer_cpu = 0.0
    for event in request["events"]:
        timings = []
        for _ in range(max(1, request.get("repeat", 1))):
            begin = time.perf_counter()
            response = app.app(event, Context())
            timings.append(time.perf_counter() - begin)
            # CPU of every thread since the interpreter started, to the first answer.
            first_answer_cpu = first_answer_cpu or time.process_time()
        results.append({"response": response, "seconds": timings})
    report = {
        "import_seconds": imported - started,
        "unpack_seconds": getattr(app.BUNDLED_RUNTIME, "seconds", 0.0),
        "first_call_seconds": results[0]["seconds"][0] if results else 0.0,
        "first_answer_cpu_seconds": first_answer_cpu,
        "results": results,
        "maxrss_kb": peak_rss_kb(),
        "sys_path": sys.path,
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
