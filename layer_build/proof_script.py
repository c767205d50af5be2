"""Runs inside the isolated interpreter: import the runtime tree and predict.

    python3.12 -I -S proof_script.py TREE PROJECT ENGINES FIXTURES

Prints one JSON line; exits 1 with the failing module named on stderr.
"""

import json
import sys
import traceback


def main() -> int:
    tree, project, engines, fixtures = sys.argv[1], sys.argv[2], sys.argv[3].split(","), sys.argv[4]
    sys.path[:0] = [tree, project]  # the runtime tree, then chalicelib from the project
    try:
        import numpy as np

        from chalicelib.engines import ENGINES, load_engine

        with open(f"{fixtures}/tiny_expected.json") as handle:
            expected = json.load(handle)
        inputs = {"input": np.asarray(expected["inputs"], dtype=np.float32)}
        worst = 0.0
        for engine in engines:
            artifact = f"tiny{ENGINES[engine].suffixes[0]}"  # the fixture per engine
            probabilities = load_engine(engine, f"{fixtures}/{artifact}").predict(inputs)
            worst = max(worst, float(np.abs(probabilities - expected["probabilities"]).max()))
    except BaseException as exc:  # report whatever broke, by module
        module = getattr(exc, "name", None) or type(exc).__name__
        sys.stderr.write(f"PROOF FAILED in module {module}: {exc!r}\n{traceback.format_exc()}")
        return 1
    modules = sorted({m.split(".")[0] for m in sys.modules})
    print(json.dumps({"max_abs_diff": worst, "engines": engines, "top_modules": modules}))
    return 0 if worst <= 1e-5 else 2


if __name__ == "__main__":
    sys.exit(main())
