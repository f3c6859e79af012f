"""Our SigV4 signer against botocore's ``SigV4Auth`` (the oracle): identical Authorization."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from concurrency_observer.extension.config import Credentials
from concurrency_observer.extension.sigv4 import amz_date, sign, uri_encode

FIXED = datetime.datetime(2026, 11, 27, 17, 45, 9, tzinfo=datetime.timezone.utc)


@dataclass(frozen=True)
class Case:
    """One request to sign."""

    method: str
    base: str
    path: str
    query: list[tuple[str, str]]
    body: bytes
    token: str | None
    region: str


CASES = [
    pytest.param(
        Case(
            "POST",
            "https://monitoring.eu-west-1.amazonaws.com",
            "/",
            [],
            b"Action=PutMetricData&Version=2010-08-01&Namespace=ConcurrencyObserver",
            None,
            "eu-west-1",
        ),
        id="put-metric-data",
    ),
    pytest.param(
        Case(
            "POST",
            "https://monitoring.us-east-1.amazonaws.com",
            "/",
            [],
            b"Action=PutMetricData&MetricData.member.1.Value=1",
            "FwoGZXIvYXdzEJr//////////wEaDKLong+Session/Token==",
            "us-east-1",
        ),
        id="session-token",
    ),
    pytest.param(
        Case(
            "GET",
            "http://127.0.0.1:5000",
            "/a b/c~d",
            [("Name", "x y/z=1"), ("Action", "List"), ("ü", "é")],
            b"",
            "token",
            "cn-north-1",
        ),
        id="query-and-port",
    ),
    pytest.param(
        Case(
            "POST",
            "https://monitoring.ap-southeast-2.amazonaws.com",
            "/",
            [],
            b"Namespace=caf%C3%A9&x=  spaced  ",
            None,
            "ap-southeast-2",
        ),
        id="odd-body",
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_authorization_matches_botocore(monkeypatch: pytest.MonkeyPatch, case: Case) -> None:
    """Same credentials, clock and request: our headers equal botocore's, byte for byte."""
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: FIXED)
    headers = [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")]
    request = AWSRequest(
        method=case.method,
        url=f"{case.base}{case.path}",
        params=dict(case.query),
        data=case.body,
        headers=dict(headers),
    )
    boto_credentials = BotoCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG", case.token)
    SigV4Auth(boto_credentials, "monitoring", case.region).add_auth(request)
    ours = dict(
        sign(
            method=case.method,
            host=case.base.split("://", 1)[1],
            path=case.path,
            query=case.query,
            headers=headers,
            body=case.body,
            credentials=Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG", case.token),
            region=case.region,
            service="monitoring",
            timestamp=FIXED.timestamp(),
        )
    )
    assert ours["Authorization"] == request.headers["Authorization"]
    assert ours["X-Amz-Date"] == request.headers["X-Amz-Date"]
    assert ours.get("X-Amz-Security-Token") == request.headers.get("X-Amz-Security-Token")


def test_signature_changes_with_the_clock() -> None:
    """A second later, a different signature (the date is signed)."""
    credentials = Credentials("AK", "SK")
    first, second = (
        dict(
            sign(
                method="POST",
                host="h",
                path="/",
                credentials=credentials,
                region="us-east-1",
                service="s",
                timestamp=t,
            )
        )
        for t in (1700000000, 1700000001)
    )
    assert first["Authorization"] != second["Authorization"]


def test_helpers() -> None:
    """amz_date is UTC basic ISO 8601; uri_encode keeps unreserved characters only."""
    assert amz_date(0) == "19700101T000000Z"
    assert uri_encode("a-_.~ /é") == "a-_.~%20%2F%C3%A9"
    assert uri_encode("/a b", safe="/") == "/a%20b"
