"""SnapStart credentials against the real RIE's endpoint (``--enable-init-caching``).

The RIE run with ``--enable-init-caching`` gives its environments
``AWS_CONTAINER_CREDENTIALS_FULL_URI`` and ``AWS_CONTAINER_AUTHORIZATION_TOKEN``, as Lambda does
for SnapStart functions, and serves credentials there. botocore's ``ContainerProvider`` is the
oracle: the extension's fetch must get what botocore gets from the same endpoint and token.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from botocore.credentials import ContainerProvider

from concurrency_observer import schema
from concurrency_observer.extension.config import Config, ContainerCredentialsSource, Credentials
from concurrency_observer.extension.credentials import ContainerCredentials, CredentialsError
from concurrency_observer.local.environment import LambdaEnvironment
from concurrency_observer.local.environment_settings import (
    DUMMY_ACCESS_KEY_ID,
    DUMMY_SECRET_ACCESS_KEY,
    DUMMY_SESSION_TOKEN,
    EnvironmentSettings,
)
from tests.faults.cued_api import CuedExtensionsApi, invoke_event, shutdown_event
from tests.faults.faulty_cloudwatch import ACCEPT, FaultyCloudWatch
from tests.faults.helpers import (
    PROCESS_FUNCTION_NAME,
    data_of,
    expected_data_count,
    extension_environ,
    finish,
    start_extension,
)

pytestmark = pytest.mark.e2e

FULL_URI = "AWS_CONTAINER_CREDENTIALS_FULL_URI"
TOKEN = "AWS_CONTAINER_AUTHORIZATION_TOKEN"


def container_variables(environment: LambdaEnvironment) -> dict[str, str]:
    """The container credential variables the RIE gave the function (echoed by the handler)."""
    payload = environment.invoke({"echo_env": [FULL_URI, TOKEN]}).payload
    variables = {name: payload["env"][name] for name in (FULL_URI, TOKEN)}
    assert all(variables.values()), variables
    return variables


def botocore_fetch(environ: dict[str, str]) -> Credentials:
    """What botocore's ContainerProvider fetches with ``environ``."""
    fetched = ContainerProvider(environ=environ)._create_fetcher(environ[FULL_URI])()
    return Credentials(fetched["access_key"], fetched["secret_key"], fetched["token"])


def test_init_caching_environment_gets_container_credentials(rie_path: Path) -> None:
    """Our fetch from the RIE's endpoint equals botocore's, and a wrong token gets nothing."""
    settings = EnvironmentSettings(init_caching=True)
    with LambdaEnvironment(None, settings, name="snapstart", rie_path=rie_path) as environment:
        variables = container_variables(environment)
        config, warnings = Config.from_environ({**variables, "AWS_REGION": "us-east-1"})
        assert config.container_credentials is not None
        assert warnings == []
        ours = ContainerCredentials(config.container_credentials).get(time.monotonic() + 5)
        oracle = botocore_fetch(variables)
        wrong = ContainerCredentialsSource(variables[FULL_URI], "not-the-token")
        with pytest.raises(CredentialsError, match="HTTP 404"):
            ContainerCredentials(wrong).get(time.monotonic() + 5)
    assert ours == oracle
    assert ours == Credentials(DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY, DUMMY_SESSION_TOKEN)


def test_extension_signs_with_the_rie_container_credentials(
    rie_path: Path, layer_dir: Path
) -> None:
    """No AWS_ACCESS_KEY_ID: the extension from the layer signs with the RIE endpoint's keys."""
    settings = EnvironmentSettings(init_caching=True)
    with (
        LambdaEnvironment(None, settings, name="snapstart", rie_path=rie_path) as environment,
        FaultyCloudWatch(then=ACCEPT).running() as cloudwatch,
        CuedExtensionsApi([invoke_event()]).running() as api,
    ):
        variables = container_variables(environment)
        environ = extension_environ(api.address, cloudwatch.url)
        del environ["AWS_ACCESS_KEY_ID"], environ["AWS_SECRET_ACCESS_KEY"]
        process = start_extension(layer_dir, {**environ, **variables})
        assert api.wait_polling(2), "the extension never blocked on /event/next"
        api.cue(shutdown_event(seconds=2))
        ended = finish(process)
    assert ended.code == 0, ended.stderr
    assert "cannot sign" not in ended.stderr
    requests = cloudwatch.snapshot()
    (request,) = requests  # on-demand: the init and shutdown records in one, at shutdown
    assert len(request.data) == expected_data_count()
    for request in requests:
        assert request.accepted
        assert f"Credential={DUMMY_ACCESS_KEY_ID}/" in request.headers["Authorization"]
        assert request.headers["X-Amz-Security-Token"] == DUMMY_SESSION_TOKEN
    data = cloudwatch.accepted_data()
    assert len(data_of(data, schema.ENVIRONMENT_INIT, PROCESS_FUNCTION_NAME)) == 1
    assert len(data_of(data, schema.ENVIRONMENT_SHUTDOWN, PROCESS_FUNCTION_NAME)) == 1
