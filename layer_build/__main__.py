"""python -m layer_build --flavor lite|tensorflow [--arch x86_64|arm64 | --stage S]

Builds the flavor's pruned runtime into vendor/ for one architecture (`--stage S`: the
stage's `lambda_architecture`), proving every pruning step where that architecture runs.
`make package` (python -m deployment.package) builds and then runs `chalice package`.
"""

from __future__ import annotations

import sys

from deployment.cli import OneLineParser
from layer_build.build import BuildFailed, build_runtime
from layer_build.flavors import FLAVORS, MB
from layer_build.platforms import ARCHITECTURES, architecture
from layer_build.proof import ProofFailed
from modelops.cli_errors import OTHER_FAILURE_EXIT, fail


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m layer_build", description=__doc__.split("\n\n")[0])
    parser.add_argument("--flavor", choices=sorted(FLAVORS), default="lite")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--arch", choices=sorted(ARCHITECTURES), default="x86_64")
    target.add_argument("--stage", help="build for this Chalice stage's lambda_architecture")
    args = parser.parse_args(argv)
    flavor = FLAVORS[args.flavor]
    name = args.arch
    if args.stage:
        from deployment.stages import NotAChaliceProject, UnknownStage, stage_architecture

        try:
            name = stage_architecture(args.stage)
        except (UnknownStage, NotAChaliceProject) as exc:
            return fail(str(exc))
    try:
        arch = architecture(name)
    except ValueError as exc:
        return fail(f"stage {args.stage}: lambda_architecture: {exc}")
    try:
        build = build_runtime(flavor, arch=arch)
    except (BuildFailed, ProofFailed) as exc:
        return fail(str(exc), OTHER_FAILURE_EXIT)
    print(f"==> [{flavor.name} {arch.name}] runtime built in {build.seconds:.0f} s: "
          f"{build.installed_bytes / MB:.1f} MB installed, {build.pruned_bytes / MB:.1f} MB "
          "after pruning")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
