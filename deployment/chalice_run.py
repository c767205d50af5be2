"""`chalice package` in a process of its own, with settings its command line can't pass.

python -m deployment.chalice_run PROJECT_DIR STAGE FORMAT OUT [MERGE_TEMPLATE] [OVERRIDES]

Chalice imports app.py after setting the stage's environment_variables in os.environ
(`CLIFactory.create_config_obj` hands them to `load_chalice_app`), and app.py registers
its routes' auth and batch handlers from them (`chalicelib.config.Registration`). A
fresh process per stage gives each stage a fresh import and leaves the caller's
environment alone. OVERRIDES is a JSON object of Chalice config settings that win over
the stage's (e.g. `{"log_retention_in_days": 0}`; `environment_variables` merge last).
"""

from __future__ import annotations

import json
import os
import sys

from chalice.cli.factory import CLIFactory


def main(argv: list[str]) -> int:
    project_dir, stage, pkg_format, out, *rest = argv
    merge = rest[0] if rest and rest[0] else None
    overrides = json.loads(rest[1]) if len(rest) > 1 else {}
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # packaging calls no AWS API
    factory = CLIFactory(project_dir=project_dir, environ=os.environ)  # as `chalice` does
    config = factory.create_config_obj(stage, user_provided_params=overrides)
    packager = factory.create_app_packager(
        config, factory.create_package_options(), pkg_format, "json", merge
    )
    packager.package_app(config, out, stage)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
