"""deployment.batch_setup's bucket notification over an in-memory S3 (it adds the
stage's own, keeps every other notification, and a second run changes nothing), and the
deploy commands' refusal of an unknown stage."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from deployment import batch_setup, deploy
from deployment.batch_setup import notify_on_input
from deployment.batch_stack import batch_stack
from tests.batch_stages import with_batch

EVENTS_ARN = "arn:aws:sqs:eu-west-1:123456789012:keras-model-serving-dev-batch-input-events"


class NotificationsS3:
    """Just the two bucket-notification calls, per bucket."""

    def __init__(self, configs: dict[str, dict[str, Any]]) -> None:
        self.configs = configs

    def get_bucket_notification_configuration(self, Bucket: str) -> dict[str, Any]:
        return {**copy.deepcopy(self.configs.get(Bucket, {})), "ResponseMetadata": {}}

    def put_bucket_notification_configuration(
        self, Bucket: str, NotificationConfiguration: dict[str, Any]
    ) -> None:
        self.configs[Bucket] = copy.deepcopy(NotificationConfiguration)


def other_stage() -> dict[str, Any]:
    return {"Id": "keras-model-serving-dev-tensorflow-batch-input", "QueueArn": "arn:other",
            "Events": ["s3:ObjectCreated:*"]}  # fmt: skip


def test_the_stage_notification_is_added_beside_the_others_once(tmp_path: Path) -> None:
    stack = batch_stack("dev", with_batch(tmp_path, ("dev",)))
    topic = {"TopicArn": "arn:aws:sns:eu-west-1:1:t", "Events": ["s3:ObjectRemoved:*"]}
    s3 = NotificationsS3(
        {
            stack.bucket: {
                "TopicConfigurations": [topic],
                "QueueConfigurations": [other_stage()],
            }
        }
    )
    notify_on_input(s3, stack, EVENTS_ARN)
    first = copy.deepcopy(s3.configs)
    notify_on_input(s3, stack, EVENTS_ARN)
    assert s3.configs == first
    config = s3.configs[stack.bucket]
    assert config["TopicConfigurations"] == [topic]
    assert "ResponseMetadata" not in config
    other, ours = config["QueueConfigurations"]
    assert other == other_stage()
    assert ours == {
        "Id": "keras-model-serving-dev-batch-input", "QueueArn": EVENTS_ARN,
        "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "batch/dev/in/"}]}},
    }  # fmt: skip


@pytest.mark.parametrize("main", [batch_setup.main, deploy.main])
def test_an_unknown_stage_is_one_error_line_before_any_aws_call(
    main: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--stage", "staging"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "error: no stage 'staging' in .chalice/config.json; "
        "stages: dev, prod, prod-arm64, dev-tensorflow, prod-tensorflow\n"
    )
