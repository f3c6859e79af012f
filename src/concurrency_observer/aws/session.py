"""boto3 clients with the standard credential chain, and AWS errors turned into one clear line."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from concurrency_observer.errors import AwsError

# Error codes that deserve a hint beyond AWS's own message.
_HINTS = {
    "AccessDenied": "check the IAM permissions of the credentials in use",
    "AccessDeniedException": "check the IAM permissions of the credentials in use",
    "UnauthorizedOperation": "check the IAM permissions of the credentials in use",
    "ResourceNotFoundException": "check the name and the region",
    "Throttling": "AWS is throttling this account; retry later or slow down",
    "ThrottlingException": "AWS is throttling this account; retry later or slow down",
    "TooManyRequestsException": "AWS is throttling this account; retry later or slow down",
    "ExpiredToken": "the session token has expired; refresh your credentials",
    "ExpiredTokenException": "the session token has expired; refresh your credentials",
}


def client(service: str, region: str | None = None, endpoint_url: str | None = None) -> Any:
    """A boto3 client; region and endpoint fall back to the usual AWS_* variables and config files.

    boto3 is imported here, not at module load, so ``--help`` and the local commands stay fast.
    """
    import boto3  # noqa: PLC0415
    from botocore.config import Config  # noqa: PLC0415

    config = Config(retries={"mode": "standard", "max_attempts": 5})
    # botocore reads AWS_DEFAULT_REGION only; AWS_REGION is what Lambda sets and what the other
    # AWS SDKs and our own help text name, so honour it too.
    region = region or os.environ.get("AWS_REGION") or None
    try:
        return boto3.session.Session().client(
            service, region_name=region, endpoint_url=endpoint_url, config=config
        )
    except Exception as exc:  # NoRegionError and friends: one line, not a traceback
        raise AwsError(f"cannot create a {service} client: {exc}") from exc


@contextmanager
def aws_errors(action: str) -> Iterator[None]:
    """Turn botocore's exceptions raised inside the block into ``AwsError('<action>: ...')``."""
    from botocore.exceptions import (  # noqa: PLC0415
        BotoCoreError,
        ClientError,
        NoCredentialsError,
        NoRegionError,
    )

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        message = str(error.get("Message", "")).strip()
        hint = _HINTS.get(code)
        text = f"{action}: {code}" + (f": {message}" if message else "")
        raise AwsError(text + (f" ({hint})" if hint else "")) from exc
    except NoCredentialsError as exc:
        raise AwsError(
            f"{action}: no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID, "
            "or run 'aws configure')"
        ) from exc
    except NoRegionError as exc:
        raise AwsError(f"{action}: no region set (use --region or set AWS_REGION)") from exc
    except BotoCoreError as exc:
        raise AwsError(f"{action}: {exc}") from exc


def error_code(error: BaseException) -> str | None:
    """AWS's error code behind an ``AwsError`` raised by ``aws_errors`` (None if there is none)."""
    from botocore.exceptions import ClientError  # noqa: PLC0415

    cause = error.__cause__
    if isinstance(cause, ClientError):
        return str(cause.response.get("Error", {}).get("Code", "")) or None
    return None
