"""What the deploy commands check before they call AWS, so each mistake is one line.

A missing region, missing credentials or a missing model bucket would otherwise
surface as botocore's NoRegionError or NoCredentialsError traceback, or halfway
through a deploy. `aws_session` and `check_bucket` raise UserMistake saying what to do;
`aws_errors` turns what botocore raises later into the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

from modelops.cli_errors import UserMistake, s3_mistake

CREDENTIALS_HINT = (
    "set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (see `aws configure`)"
)


def aws_session(stage: str) -> Any:
    """A boto3 session with a region and credentials, else UserMistake."""
    session = boto3.session.Session()
    if not session.region_name:
        raise UserMistake(
            "no AWS region: set AWS_DEFAULT_REGION, e.g. make deploy STAGE="
            f"{stage} AWS_DEFAULT_REGION=eu-west-1 (or a region in your AWS profile)"
        )
    if session.get_credentials() is None:
        raise UserMistake(f"no AWS credentials found: {CREDENTIALS_HINT}")
    return session


def check_bucket(session: Any, bucket: str, stage: str) -> None:
    """The stage's model bucket exists and these credentials reach it."""
    try:
        session.client("s3").head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchBucket"):
            raise UserMistake(
                f"bucket {bucket} (MODEL_BUCKET of stage {stage}) does not exist: create it "
                f"(aws s3 mb s3://{bucket}), or point the stage at yours: python -m "
                f"deployment.configure --bucket B --model NAME --stage {stage}"
            ) from None
        raise UserMistake(s3_mistake(exc, bucket) or f"bucket {bucket}: {exc}") from None
    except BotoCoreError as exc:
        raise UserMistake(s3_mistake(exc, bucket) or f"bucket {bucket}: {exc}") from None


class AwsFailure(Exception):
    """AWS failed in a way the user's configuration does not explain (exit 1, one line)."""


_CREDENTIAL_CODES = ("InvalidClientTokenId", "UnrecognizedClientException", "ExpiredToken",
                     "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied",
                     "AccessDeniedException")  # fmt: skip


@contextmanager
def aws_errors(what: str) -> Iterator[None]:
    """botocore's errors inside the block as one line naming `what`: UserMistake for what
    the user can fix (region, credentials, endpoint), AwsFailure for the rest."""
    try:
        yield
    except NoRegionError:
        raise UserMistake(f"{what}: no AWS region: set AWS_DEFAULT_REGION") from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "error"))
        line = f"{what}: {code}: {error.get('Message', exc)}"
        if code in _CREDENTIAL_CODES:
            raise UserMistake(f"{line} ({CREDENTIALS_HINT})") from None
        raise AwsFailure(line) from None
    except (NoCredentialsError, PartialCredentialsError):
        raise UserMistake(f"{what}: no AWS credentials found: {CREDENTIALS_HINT}") from None
    except (EndpointConnectionError, ConnectTimeoutError) as exc:
        raise UserMistake(f"{what}: cannot reach AWS ({exc}): check the network and "
                          "AWS_DEFAULT_REGION") from None  # fmt: skip
    except BotoCoreError as exc:
        raise AwsFailure(f"{what}: {exc}") from None
