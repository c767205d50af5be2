"""python -m layer_build --flavor lite|tensorflow [--package]

Builds the flavor's pruned runtime into vendor/ (proving every pruning step), and
with --package runs `chalice package` into build/<flavor>/package/ and gates sizes.
"""

from __future__ import annotations

import argparse
import sys

from layer_build.build import BuildFailed, build_runtime
from layer_build.flavors import FLAVORS, MB
from layer_build.package import FORMATS, PackageOptionUnsupported, chalice_package
from layer_build.proof import ProofFailed
from layer_build.size_report import SizeLimitExceeded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m layer_build", description=__doc__)
    parser.add_argument("--flavor", choices=sorted(FLAVORS), default="lite")
    parser.add_argument("--package", action="store_true", help="also run chalice package")
    parser.add_argument("--stage", help="Chalice stage to package (default: the flavor's)")
    parser.add_argument(
        "--format", choices=FORMATS, default="cloudformation", help="chalice package --pkg-format"
    )
    parser.add_argument(
        "--api-key",
        action="store_true",
        help="CloudFormation only: API key, usage plan, throttling",
    )
    args = parser.parse_args(argv)
    flavor = FLAVORS[args.flavor]
    try:
        build = build_runtime(flavor)
        print(f"==> [{flavor.name}] runtime built in {build.seconds:.0f} s: "
              f"{build.installed_bytes / MB:.1f} MB installed, {build.pruned_bytes / MB:.1f} MB "
              "after pruning")  # fmt: skip
        if args.package:
            chalice_package(flavor, args.stage, args.format, args.api_key)
    except (BuildFailed, ProofFailed, SizeLimitExceeded, PackageOptionUnsupported) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
