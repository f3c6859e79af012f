"""boto3 clients: the region from AWS_REGION too, and AWS errors as one line."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, NoCredentialsError

from concurrency_observer.aws.session import aws_errors, client
from concurrency_observer.errors import AwsError


def test_region_falls_back_to_aws_region(monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS_REGION (what Lambda sets) works where botocore only reads AWS_DEFAULT_REGION."""
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    assert client("cloudwatch").meta.region_name == "eu-west-3"
    assert client("cloudwatch", region="ap-south-1").meta.region_name == "ap-south-1"


def test_client_error_is_one_line_with_a_hint() -> None:
    """AccessDenied names the action, the code, AWS's message and what to check."""
    error = ClientError({"Error": {"Code": "AccessDenied", "Message": "not you"}}, "ListMetrics")
    with pytest.raises(AwsError) as raised, aws_errors("reading metrics"):
        raise error
    message = str(raised.value)
    assert message == (
        "reading metrics: AccessDenied: not you "
        "(check the IAM permissions of the credentials in use)"
    )
    assert "\n" not in message


def test_missing_credentials_say_what_to_do() -> None:
    """No credentials: one line telling how to provide them."""
    with pytest.raises(AwsError, match="no AWS credentials found"), aws_errors("publishing"):
        raise NoCredentialsError()


def test_error_code_is_the_client_errors() -> None:
    """error_code() reads AWS's code from the ClientError behind an AwsError, else None."""
    from botocore.exceptions import ClientError

    from concurrency_observer.aws.session import aws_errors, error_code
    from concurrency_observer.errors import AwsError

    failure = ClientError({"Error": {"Code": "ResourceNotFoundException"}}, "DescribeLogStreams")
    with pytest.raises(AwsError) as raised, aws_errors("logs:DescribeLogStreams"):
        raise failure
    assert error_code(raised.value) == "ResourceNotFoundException"
    assert error_code(AwsError("no cause")) is None
