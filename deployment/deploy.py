"""`make deploy STAGE=S`: `chalice deploy` a stage, with its batch path when it has one.

python -m deployment.deploy --stage S [--check] [--project-dir DIR]

0. checks first, each mistake one `error:` line (exit 2): the project, the stage, a
   region, credentials, and the stage's model bucket;
1. a stage with a batch path (its own BATCH_*_QUEUE names): its queues, since Chalice
   subscribes functions to queues but creates none;
2. `chalice deploy --stage S`, as a Chalice user types it (Chalice sets the stage's
   variables before importing app.py, which registers what the stage declares);
3. for a batch path, `deployment.batch_setup`'s other steps: partial batch responses
   and maximum concurrency on the mappings, the bucket's notification;
4. for API_AUTH=api_key stages, `deployment.api_keys`: the key, usage plan, binding.

`--check` stops after step 0 (`make deploy` checks, then builds the stage's runtime into
vendor/, then deploys).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from chalicelib.config import ConfigurationError
from deployment.api_keys import deployed_plan, ensure_api_key
from deployment.batch_setup import BatchSetupError, after_deploy, ensure_queues
from deployment.batch_stack import BatchStackError, declared_batch, shared_resources
from deployment.cli import stage_parser
from deployment.preflight import AwsFailure, aws_errors, aws_session, check_bucket
from deployment.stages import NotAChaliceProject, UnknownStage, stage_auth, stage_location
from modelops.cli_errors import OTHER_FAILURE_EXIT, UserMistake, fail


def chalice_deploy(project_dir: Path, stage: str) -> int:
    """`chalice deploy --stage` in `project_dir`, nothing added."""
    chalice = Path(sys.executable).parent / "chalice"
    return subprocess.run([str(chalice), "deploy", "--stage", stage], cwd=project_dir,
                          check=False).returncode  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("python -m deployment.deploy", __doc__)
    parser.add_argument("--check", action="store_true", help="only the checks before AWS")
    args = parser.parse_args(argv)
    config_path = args.project_dir / ".chalice" / "config.json"
    try:
        stack = declared_batch(args.stage, config_path)
        auth = stage_auth(args.stage, config_path)
        bucket, _ = stage_location(args.stage, config_path)
        shared = shared_resources(config_path)
        if shared:
            raise UserMistake(f"{'; '.join(shared)}: give each stage its own")
        session = aws_session(args.stage)
        check_bucket(session, bucket, args.stage)
        if args.check:
            return 0
        if stack is not None:
            print(f"==> queues: {', '.join(q.name for q in stack.queues)}", flush=True)
            with aws_errors("creating the batch queues"):
                ensure_queues(session.client("sqs"), stack)
    except (UnknownStage, NotAChaliceProject, BatchStackError, ConfigurationError,
            UserMistake) as exc:  # fmt: skip
        return fail(str(exc))
    except AwsFailure as exc:
        return fail(str(exc), OTHER_FAILURE_EXIT)
    print(f"==> chalice deploy --stage {args.stage} (API_AUTH={auth})", flush=True)
    code = chalice_deploy(args.project_dir, args.stage)
    if code:
        return code
    try:
        if stack is not None:
            print("==> event source mappings (ReportBatchItemFailures, maximum concurrency), "
                  f"notification s3://{stack.bucket}/{stack.input_prefix}", flush=True)  # fmt: skip
            with aws_errors("wiring the batch path"):
                after_deploy(stack, session)
        if auth == "api_key":
            plan = deployed_plan(args.project_dir, args.stage)
            with aws_errors("setting up the API key"):
                key_id, _ = ensure_api_key(session.client("apigateway"), plan)
            print(f"==> API key {plan.key_name} ({key_id}) in usage plan {plan.plan_name}; "
                  f"its value: aws apigateway get-api-key --api-key {key_id} --include-value",
                  flush=True)  # fmt: skip
    except UserMistake as exc:
        return fail(str(exc))
    except (BatchSetupError, AwsFailure) as exc:
        return fail(str(exc), OTHER_FAILURE_EXIT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
