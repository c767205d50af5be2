"""A stage's API key and usage plan for `chalice deploy` (API_AUTH=api_key).

python -m deployment.api_keys --stage S [--project-dir DIR]

Chalice marks the methods `apiKeyRequired` but creates no key and no usage plan, and
API Gateway refuses a key outside a plan. After `chalice deploy --stage S` (which
writes .chalice/deployed/S.json), this creates, or finds and updates, the key
`<app>-<stage>-client`, the usage plan `<app>-<stage>` on the deployed API's stage with
throttling and a daily quota, and the plan-key binding. Run again, it changes nothing.
Prints the key's id, never its value (`aws apigateway get-api-key --api-key ID
--include-value`). `make deploy` runs it for api_key stages.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployment.cli import stage_parser
from deployment.preflight import AwsFailure, aws_errors, aws_session
from deployment.stages import NotAChaliceProject, UnknownStage, function_name, stage_setting
from deployment.templates import BURST_LIMIT, DAILY_QUOTA, RATE_LIMIT
from modelops.cli_errors import OTHER_FAILURE_EXIT, UserMistake, fail


@dataclass(frozen=True)
class ApiKeyPlan:
    """What a stage's key and plan look like once set up."""

    key_name: str
    plan_name: str
    rest_api_id: str
    api_stage: str
    rate_limit: float = RATE_LIMIT
    burst_limit: int = BURST_LIMIT
    daily_quota: int = DAILY_QUOTA


def deployed_plan(project_dir: Path, stage: str) -> ApiKeyPlan:
    """The plan for `stage`'s deployed REST API (from .chalice/deployed/<stage>.json)."""
    config_path = project_dir / ".chalice" / "config.json"
    name = function_name(stage, config_path)  # UnknownStage first
    deployed_path = project_dir / ".chalice" / "deployed" / f"{stage}.json"
    if not deployed_path.is_file():
        raise FileNotFoundError(f"no {deployed_path.name} in .chalice/deployed: "
                                f"chalice deploy --stage {stage} first")  # fmt: skip
    resources = json.loads(deployed_path.read_text())["resources"]
    [api] = [r for r in resources if r["resource_type"] == "rest_api"]
    return ApiKeyPlan(key_name=f"{name}-client", plan_name=name,
                      rest_api_id=api["rest_api_id"],
                      api_stage=stage_setting(stage, "api_gateway_stage", config_path))  # fmt: skip


def ensure_api_key(apigateway: Any, plan: ApiKeyPlan) -> tuple[str, str]:
    """Create or reconcile the key, the plan and the binding; returns (key id, plan id)."""
    keys = apigateway.get_api_keys(nameQuery=plan.key_name, limit=500)["items"]
    key = next((k for k in keys if k["name"] == plan.key_name), None)
    if key is None:
        key = apigateway.create_api_key(name=plan.key_name, enabled=True)
    throttle = {"rateLimit": plan.rate_limit, "burstLimit": plan.burst_limit}
    quota = {"limit": plan.daily_quota, "period": "DAY"}
    api_stage = {"apiId": plan.rest_api_id, "stage": plan.api_stage}
    plans = apigateway.get_usage_plans(limit=500)["items"]
    usage_plan = next((p for p in plans if p["name"] == plan.plan_name), None)
    if usage_plan is None:
        usage_plan = apigateway.create_usage_plan(
            name=plan.plan_name, apiStages=[api_stage], throttle=throttle, quota=quota)  # fmt: skip
    else:
        operations = [
            {"op": "replace", "path": "/throttle/rateLimit", "value": str(plan.rate_limit)},
            {"op": "replace", "path": "/throttle/burstLimit", "value": str(plan.burst_limit)},
            {"op": "replace", "path": "/quota/limit", "value": str(plan.daily_quota)},
        ]
        stages = [(s["apiId"], s["stage"]) for s in usage_plan.get("apiStages", [])]
        if (plan.rest_api_id, plan.api_stage) not in stages:  # a redeployed API
            operations.append({"op": "add", "path": "/apiStages",
                               "value": f"{plan.rest_api_id}:{plan.api_stage}"})  # fmt: skip
        apigateway.update_usage_plan(usagePlanId=usage_plan["id"], patchOperations=operations)
    bound = apigateway.get_usage_plan_keys(usagePlanId=usage_plan["id"], limit=500)["items"]
    if not any(k["id"] == key["id"] for k in bound):
        apigateway.create_usage_plan_key(usagePlanId=usage_plan["id"], keyId=key["id"],
                                         keyType="API_KEY")  # fmt: skip
    return key["id"], usage_plan["id"]


def main(argv: list[str] | None = None) -> int:
    args = stage_parser("python -m deployment.api_keys", __doc__).parse_args(argv)
    try:
        plan = deployed_plan(args.project_dir, args.stage)
        session = aws_session(args.stage)
        with aws_errors(f"API key of {args.stage}"):
            key_id, plan_id = ensure_api_key(session.client("apigateway"), plan)
    except (UnknownStage, NotAChaliceProject, FileNotFoundError, UserMistake) as exc:
        return fail(str(exc))
    except AwsFailure as exc:
        return fail(str(exc), OTHER_FAILURE_EXIT)
    print(f"API key {plan.key_name} ({key_id}) in usage plan {plan.plan_name} ({plan_id}): "
          f"{plan.rate_limit:g} req/s, burst {plan.burst_limit}, {plan.daily_quota}/day; "
          f"value: aws apigateway get-api-key --api-key {key_id} --include-value")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
