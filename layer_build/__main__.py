"""python -m layer_build --flavor lite|tensorflow

Builds the flavor's pruned runtime into vendor/, proving every pruning step.
`make package` (python -m deployment.package) builds and then runs `chalice package`.
"""

from __future__ import annotations

import argparse
import sys

from layer_build.build import BuildFailed, build_runtime
from layer_build.flavors import FLAVORS, MB
from layer_build.proof import ProofFailed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m layer_build", description=__doc__)
    parser.add_argument("--flavor", choices=sorted(FLAVORS), default="lite")
    args = parser.parse_args(argv)
    flavor = FLAVORS[args.flavor]
    try:
        build = build_runtime(flavor)
    except (BuildFailed, ProofFailed) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"==> [{flavor.name}] runtime built in {build.seconds:.0f} s: "
          f"{build.installed_bytes / MB:.1f} MB installed, {build.pruned_bytes / MB:.1f} MB "
          "after pruning")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
