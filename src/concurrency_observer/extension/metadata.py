"""The environment's Availability Zone, from Lambda's metadata endpoint.

``GET $AWS_LAMBDA_METADATA_API/2026-01-15/metadata/execution-environment`` with
``Authorization: Bearer $AWS_LAMBDA_METADATA_TOKEN`` answers ``{"AvailabilityZoneID": ...}``.
Asked at SHUTDOWN, within a small bound, never during init: under SnapStart the zone of the
snapshot is not the restored environment's, and nothing here may delay an init. Skipped when
either variable is missing; any failure is ``None``, the record then has no zone. The zone goes
in the record only, never in a metric dimension (one more series per zone and function).
"""

from __future__ import annotations

import json

from concurrency_observer import environment_record as fields
from concurrency_observer.extension.http11 import Connection, HttpError, parse_url

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

METADATA_PATH = "/2026-01-15/metadata/execution-environment"
API_VARIABLE = "AWS_LAMBDA_METADATA_API"
TOKEN_VARIABLE = "AWS_LAMBDA_METADATA_TOKEN"  # noqa: S105 (a variable's name, no secret)
MAX_ZONE_ID = 64  # use1-az1 is 8 characters; anything longer is cut


def availability_zone_id(environ: Mapping[str, str], timeout: float) -> str | None:
    """The AvailabilityZoneID the endpoint gives, or ``None`` (no endpoint, or no answer)."""
    api, token = environ.get(API_VARIABLE, "").strip(), environ.get(TOKEN_VARIABLE, "").strip()
    if not api or not token or timeout <= 0 or "\r" in token or "\n" in token:
        return None
    try:
        endpoint = parse_url(api if "://" in api else f"http://{api}")
        connection = Connection(endpoint, connect_timeout=timeout, read_timeout=timeout)
        try:
            response = connection.request(
                "GET", METADATA_PATH, (("Authorization", f"Bearer {token}"),)
            )
        finally:
            connection.close()
        if response.status != 200:
            return None
        zone = json.loads(response.body).get("AvailabilityZoneID")
    except (ValueError, HttpError, AttributeError):
        return None
    if not isinstance(zone, str) or not zone:
        return None
    return zone[:MAX_ZONE_ID]


def zone_facts(environ: Mapping[str, str], timeout: float) -> dict[str, object]:
    """``{availabilityZoneId: ...}`` when known, else empty."""
    zone = availability_zone_id(environ, timeout)
    return {fields.AVAILABILITY_ZONE_ID: zone} if zone is not None else {}
