"""`make deploy STAGE=S`: `chalice deploy` a stage with its batch path.

python -m deployment.deploy --stage S [--project-dir DIR]

1. the stage's queues (`chalice deploy` subscribes functions to queues but creates none);
2. `chalice deploy --stage S`, with the stage's BATCH_*_QUEUE names and API_AUTH
   exported: Chalice imports app.py in its own process, and the decorators read the
   names, and which routes need IAM or a key, at import;
3. `deployment.batch_setup`'s other steps: partial batch responses and maximum
   concurrency on the mappings, the bucket's notification for the input prefix;
4. for API_AUTH=api_key stages, `deployment.api_keys`: the key, usage plan, binding.

The lite runtime must be in vendor/ (`make deploy` runs `make vendor` first).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3

from chalicelib.config import ConfigurationError
from deployment.api_keys import deployed_plan, ensure_api_key
from deployment.batch_setup import BatchSetupError, after_deploy, ensure_queues
from deployment.batch_stack import (
    BatchStackError,
    batch_stack,
    queue_environment,
    shared_resources,
)
from deployment.cli import stage_parser
from deployment.stages import UnknownStage, auth_environment, stage_auth
from modelops.cli_errors import OTHER_FAILURE_EXIT, fail


def chalice_deploy(project_dir: Path, stage: str) -> int:
    """`chalice deploy --stage` in `project_dir`, with the stage's queue names and
    API_AUTH exported."""
    config_path = project_dir / ".chalice" / "config.json"
    env = {**os.environ, **queue_environment(stage, config_path),
           **auth_environment(stage, config_path)}  # fmt: skip
    chalice = Path(sys.executable).parent / "chalice"
    return subprocess.run([str(chalice), "deploy", "--stage", stage], cwd=project_dir, env=env,
                          check=False).returncode  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = stage_parser("python -m deployment.deploy", __doc__).parse_args(argv)
    config_path = args.project_dir / ".chalice" / "config.json"
    try:
        stack = batch_stack(args.stage, config_path)
        auth = stage_auth(args.stage, config_path)
    except (UnknownStage, BatchStackError, ConfigurationError) as exc:
        return fail(str(exc))
    shared = shared_resources(config_path)
    if shared:
        return fail(f"{'; '.join(shared)}: give each stage its own")
    session = boto3.session.Session()
    print(f"==> queues: {', '.join(q.name for q in stack.queues)}", flush=True)
    ensure_queues(session.client("sqs"), stack)
    print(f"==> chalice deploy --stage {args.stage} (API_AUTH={auth})", flush=True)
    code = chalice_deploy(args.project_dir, args.stage)
    if code:
        return code
    print("==> event source mappings (ReportBatchItemFailures, maximum concurrency), "
          f"notification s3://{stack.bucket}/{stack.input_prefix}", flush=True)  # fmt: skip
    try:
        after_deploy(stack, session)
    except BatchSetupError as exc:
        return fail(str(exc), OTHER_FAILURE_EXIT)
    if auth == "api_key":
        plan = deployed_plan(args.project_dir, args.stage)
        key_id, _ = ensure_api_key(session.client("apigateway"), plan)
        print(f"==> API key {plan.key_name} ({key_id}) in usage plan {plan.plan_name}; "
              f"its value: aws apigateway get-api-key --api-key {key_id} --include-value",
              flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
