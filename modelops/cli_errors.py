"""User mistakes in the offline tools: one `error: ...` line, exit code 2, no traceback.

    UserMistake            something the user can fix; the message says what to do
      +- PublishError      (modelops.publish) the model cannot be published as asked
      +- BundleAdminError  (modelops.bundle_admin) a listing or promotion refused
    S3Failure              S3 failed for another reason (exit 1; also one line)

`s3_errors(bucket)` turns botocore's exceptions into these, so a missing credential,
bucket or endpoint reads as what to do rather than as a stack trace. `OneLineParser` makes
argparse's usage errors the same one line. When the command came through `make`, its
recipe exports MAKE_VARIABLES (`--model=MODEL --labels=LABELS ...`) and every error line
names the make variables instead of the options (`TASK=regression`, not `--task regression`),
so messages write an option with its value as `--task=regression`.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

#: argparse's own exit code for usage errors; the tools use it for every user mistake.
USER_MISTAKE_EXIT = 2
OTHER_FAILURE_EXIT = 1

_CREDENTIALS_HINT = (
    "set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (see `aws configure`)"
)


class UserMistake(Exception):
    """Something the user asked for cannot be done; the message says what to do."""


class S3Failure(Exception):
    """S3 failed in a way that is not the user's mistake (e.g. a 500); nothing to fix here."""


def fail(message: str, code: int = USER_MISTAKE_EXIT) -> int:
    """Print the one `error: ...` line to stderr (in make's words when run by make);
    return the exit code."""
    print(f"error: {for_make_users(message)}", file=sys.stderr)
    return code


def make_variables() -> dict[str, str]:
    """Option -> make variable of the command running now, from the recipe's
    MAKE_VARIABLES (`--model=MODEL ...`); empty outside make."""
    pairs = (item.partition("=") for item in os.environ.get("MAKE_VARIABLES", "").split())
    return {option: variable for option, _, variable in pairs if option.startswith("--")}


def for_make_users(message: str) -> str:
    """`message` with each option make sets written as its variable: `--task=x` and
    `--task` both read `TASK=x` / `TASK=`; options make does not set stay as they are."""
    for option, variable in sorted(make_variables().items(), key=lambda kv: -len(kv[0])):
        message = re.sub(rf"(?<![\w-]){re.escape(option)}(?![\w-])=?", f"{variable}=", message)
    return message


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one `error: ...` line (no usage block), exit 2,
    naming make's variable when the command came through make."""

    def error(self, message: str) -> NoReturn:
        via_make = bool(make_variables())
        hint = "make help lists the variables" if via_make else "--help lists the options"
        print(f"error: {for_make_users(_plain(message))} ({hint})", file=sys.stderr)
        self.exit(USER_MISTAKE_EXIT)


def _plain(message: str) -> str:
    """argparse's wording for a bad value, as what to give instead."""
    bad = re.fullmatch(r"argument ([^:]+): invalid (\w+) value: '(.*)'", message)
    if bad:
        option, kind, value = bad.groups()
        wanted = {"int": "a whole number", "float": "a number"}.get(kind, f"a valid {kind}")
        return f"{_option(option)}={value} is not {wanted}"
    choice = re.fullmatch(r"argument ([^:]+): invalid choice: '(.*)' \(choose from (.*)\)",
                          message)  # fmt: skip
    if choice:
        option, value, choices = choice.groups()
        return f"{_option(option)}={value} is not one of {choices.replace(chr(39), '')}"
    return message


def _option(spelling: str) -> str:
    """`--s3-port` from argparse's `--s3-port` or `-p/--s3-port`."""
    return spelling.split("/")[-1]


@contextmanager
def s3_errors(bucket: str) -> Iterator[None]:
    """Re-raise botocore's errors inside the block as UserMistake or S3Failure."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        mistake = s3_mistake(exc, bucket)
        if mistake is not None:
            raise UserMistake(mistake) from exc
        raise S3Failure(f"S3 request to bucket {bucket} failed: {exc}") from exc


def s3_mistake(exc: Exception, bucket: str) -> str | None:
    """What to do about a botocore error the user can fix, or None if it is not one."""
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return f"no AWS credentials found: {_CREDENTIALS_HINT}"
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError):
        return (
            f"cannot reach S3 ({exc}): check the network, AWS_DEFAULT_REGION and, "
            "for a local S3, AWS_ENDPOINT_URL_S3 and that the server is running"
        )
    if not isinstance(exc, ClientError):
        return None
    code = str(exc.response.get("Error", {}).get("Code", ""))
    if code in ("NoSuchBucket",):
        return (
            f"bucket {bucket} does not exist: create it (aws s3 mb s3://{bucket}) "
            "or choose another --bucket or --stage"
        )
    if code in ("AccessDenied", "403", "AllAccessDisabled"):
        return (
            f"access to bucket {bucket} denied: check the bucket name and that your "
            "credentials may read and write it"
        )
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"):
        return f"S3 rejected your AWS credentials ({code}): {_CREDENTIALS_HINT}"
    if code in ("PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraint"):
        return f"bucket {bucket} is in another region ({code}): set AWS_DEFAULT_REGION to it"
    return None
