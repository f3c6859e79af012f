"""The function's own environment turned against the layer, under the real RIE, on both engines.

Each case gives hostile variables to the extension alone (``hostile.hostile_layer``: the RIE and
the function's runtime keep their ordinary environment), in an environment whose ``/bin/sh`` is
bash, as on Amazon Linux. Shell start-up variables, exported functions, a PATH without /bin, a
python3 that is broken or hangs, values carrying code or line breaks or 3,900 characters,
endpoints that echo the signed request back. Each runs with ``CONCURRENCY_OBSERVER_ENGINE``
``python`` and ``bash``, and every time:

- every invoke succeeds, on one runtime (no Extension.Crash, no reset), and the shutdown is clean;
- exactly one init and one shutdown record (none where CloudWatch or the credentials endpoint
  refuses them: then one log line says so), and from the engine expected;
- nothing in the output but the platform's lines, the records and a few of the extension's lines
  (no trace, no environment dump, no forged record);
- no secret anywhere in the output, and no file created by a payload.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from concurrency_observer.local.environment import LambdaEnvironment
from concurrency_observer.local.environment_settings import EnvironmentSettings
from tests.faults.helpers import unique_name
from tests.faults.hostile import Output, hostile_layer
from tests.unit.extension.fakes import EchoingServer

pytestmark = pytest.mark.e2e

MARK = "payload-ran"  # the file any payload of these cases would create in the case's directory
INVOCATIONS = 3
MAX_EXTENSION_LINES = 6  # init and shutdown lines, a warning or two, the refusals: no trace
LONG = 3900  # characters: Lambda allows 4 KB of variables in all
CONTAINER_TOKEN = "Ct0kHostile5e1f7a3c9b2d4e6f8a0c"  # made-up secrets, masked or absent
FILE_TOKEN = "Ft0kHostile0a2b4c6d8e1f3a5b7c9d"  # made-up secrets, masked or absent
URI_PASSWORD = "uR1pAssw0rdHostile"  # made-up secrets, masked or absent
URI_QUERY_TOKEN = "qT0kHostile77aa55"  # made-up secrets, masked or absent

Environ = dict[str, str | None]


@dataclass(frozen=True)
class Servers:
    """Endpoints that echo each request back: ``status`` and the style of the echo."""

    cloudwatch_403: str
    credentials_403: str
    credentials_500: str


@dataclass(frozen=True)
class Case:
    """One hostile environment: ``environ`` makes its variables (payload files in ``directory``).

    ``lambda_python``: the environment has /var/lang/bin/python3, as Lambda's Python runtimes do
    (without it the launcher probes the python3 on PATH, as on the other runtimes).
    ``python_falls_back``: the Python engine cannot run there, the bash fallback records instead.
    ``python_refused``: the Python engine's records are refused by the (echoing) endpoint.
    """

    name: str
    environ: Callable[[Path, Servers], Environ]
    lambda_python: bool = True
    python_falls_back: bool = False
    python_refused: bool = False
    secrets: tuple[str, ...] = ()


def touch(directory: Path) -> str:
    """The payload: a command that creates the mark file (its presence fails the test)."""
    return f"/usr/bin/touch {directory / MARK}"


def script(directory: Path, name: str, text: str) -> str:
    """An executable file ``name`` in ``directory`` holding ``text``; its path."""
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


def bash_env_exit(d: Path, _s: Servers) -> Environ:
    """BASH_ENV: a script that runs the payload and exits 1."""
    return {"BASH_ENV": script(d, "exit.sh", f"{touch(d)}\nexit 1\n")}


def bash_env_functions(d: Path, _s: Servers) -> Environ:
    """BASH_ENV: builtins redefined as functions and aliases that run the payload and hang."""
    body = "".join(
        f"{name}() {{ {touch(d)}; /usr/bin/sleep 600; }}\n"
        for name in ("printf", "read", "command", "exec", "unset", "set", "shopt", "trap")
    )
    aliases = f"shopt -s expand_aliases\nalias printf='{touch(d)}; printf'\n"
    return {"BASH_ENV": script(d, "functions.sh", body + aliases)}


def env_file(d: Path, _s: Servers) -> Environ:
    """ENV (read by interactive POSIX shells): a script that runs the payload and exits 1."""
    return {"ENV": script(d, "env.sh", f"{touch(d)}\nexit 1\n")}


def exported_functions(d: Path, _s: Servers) -> Environ:
    """Builtins exported as functions (BASH_FUNC_name%%) that run the payload."""
    names = ("printf", "read", "command", "exec", "unset", "set", "[", "echo", "local")
    return {f"BASH_FUNC_{name}%%": f"() {{ {touch(d)}; }}" for name in names}


def python_that(behaviour: str) -> Callable[[Path, Servers], Environ]:
    """A ``python3`` first on PATH that behaves as told (a shell script, as a broken one may be)."""

    def environ(d: Path, _s: Servers) -> Environ:
        """PATH with the fake python3 first."""
        script(d, "bin/python3", f"#!/bin/sh\n{behaviour}\n")
        return {"PATH": f"{d / 'bin'}:/usr/local/bin:/usr/bin:/bin"}

    return environ


def python_variables(d: Path, _s: Servers) -> Environ:
    """PYTHON* variables: modules on PYTHONPATH that run the payload, a wrong PYTHONHOME."""
    evil = d / "evil"
    for module in ("json", "os", "sitecustomize", "socket"):
        script(evil, f"{module}.py", f"import subprocess\nsubprocess.run({touch(d).split()!r})\n")
    return {
        "PYTHONPATH": str(evil),
        "PYTHONHOME": "/nonexistent",
        "PYTHONSTARTUP": str(evil / "json.py"),
        "PYTHONINSPECT": "1",
        "PYTHONWARNINGS": "error",
    }


def forged_record(_d: Path, _s: Servers) -> Environ:
    """A function name whose line breaks would start forged EMF init records."""
    forged = (
        '{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"ConcurrencyObserver",'
        '"Dimensions":[["FunctionName"]],"Metrics":[{"Name":"EnvironmentInit","Unit":"Count"}]}]},'
        '"FunctionName":"forged","EnvironmentInit":1}'
    )
    return {"AWS_LAMBDA_FUNCTION_NAME": f"orders\n{forged}\r\n{forged}"}


def code_in_values(d: Path, _s: Servers) -> Environ:
    """Command substitutions and arithmetic subscripts in every value the engines read."""
    code = f"$({touch(d)})`{touch(d)}`"
    return {
        "AWS_LAMBDA_FUNCTION_NAME": f"orders{code}",
        "AWS_LAMBDA_FUNCTION_VERSION": f"${{PATH}}$((1/0)){code}",
        "AWS_LAMBDA_INITIALIZATION_TYPE": f"x[{code}]",
        "CONCURRENCY_OBSERVER_NAMESPACE": f"a[{code}]",
        "CONCURRENCY_OBSERVER_LOG_LEVEL": f"a[{code}]",
        "CONCURRENCY_OBSERVER_EVENTS": f"a[{code}]",
        "EPOCHREALTIME": f"0+a[{code}]",
    }


def cloudwatch_echo(_d: Path, s: Servers) -> Environ:
    """The cloudwatch sink, against an endpoint that echoes the signed request in a 403."""
    return {
        "CONCURRENCY_OBSERVER_SINK": "cloudwatch",
        "AWS_ENDPOINT_URL_CLOUDWATCH": f"http://{s.cloudwatch_403}",
    }


def credentials_echo(d: Path, s: Servers, address: str, *, token_file: bool) -> Environ:
    """Container credentials only, from ``address`` (echoing), with a password and a query token
    in the URI, the token in the variable or in a file."""
    uri = f"http://user:{URI_PASSWORD}@{address}/creds?token={URI_QUERY_TOKEN}"
    environ: Environ = {
        "CONCURRENCY_OBSERVER_SINK": "cloudwatch",
        "AWS_ENDPOINT_URL_CLOUDWATCH": f"http://{s.cloudwatch_403}",
        "AWS_ACCESS_KEY_ID": None,
        "AWS_SECRET_ACCESS_KEY": None,
        "AWS_SESSION_TOKEN": None,
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": uri,
        "AWS_CONTAINER_AUTHORIZATION_TOKEN": CONTAINER_TOKEN,
    }
    if token_file:
        path = d / "token"
        path.write_text(FILE_TOKEN)
        environ["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = str(path)
    return environ


ECHO_SECRETS = (CONTAINER_TOKEN, FILE_TOKEN, URI_PASSWORD, URI_QUERY_TOKEN)

CASES = [
    Case("bash-env-exits", bash_env_exit),
    Case("bash-env-defines-printf-read", bash_env_functions),
    Case("env-file-exits", env_file),
    Case("shellopts-keyword", lambda d, s: {"SHELLOPTS": "keyword"}),
    Case("shellopts-noexec", lambda d, s: {"SHELLOPTS": "noexec"}),
    Case(
        "shellopts-xtrace-verbose",
        lambda d, s: {"SHELLOPTS": "xtrace:verbose", "PS4": f"+$({touch(d)})"},
    ),
    Case("shellopts-errexit-nounset", lambda d, s: {"SHELLOPTS": "errexit:nounset:pipefail"}),
    Case("bashopts-extdebug", lambda d, s: {"BASHOPTS": "extdebug:failglob:nullglob"}),
    Case("posixly-correct", lambda d, s: {"POSIXLY_CORRECT": "1"}),
    Case("exported-functions", exported_functions),
    Case(
        "ifs-cdpath-globignore",
        lambda d, s: {"IFS": "/x:", "CDPATH": str(d), "GLOBIGNORE": "*:.*"},
    ),
    Case("funcnest-tmout", lambda d, s: {"FUNCNEST": "1", "TMOUT": "1"}),
    Case("execignore-bash-compat", lambda d, s: {"EXECIGNORE": "*", "BASH_COMPAT": "31"}),
    Case("path-without-bin", lambda d, s: {"PATH": "/nonexistent"}),
    Case("path-unset", lambda d, s: {"PATH": None}),
    Case(
        "python3-prints-junk-and-fails",
        python_that('echo "junk {\\"_aws\\":1}"; echo junk >&2; exit 1'),
        lambda_python=False,
        python_falls_back=True,
    ),
    Case(
        "python3-exits-42",  # the probe's answer is the launcher's to choose, not a constant
        python_that("exit 42"),
        lambda_python=False,
        python_falls_back=True,
    ),
    Case(
        "python3-hangs",
        python_that("exec /usr/bin/sleep 600"),
        lambda_python=False,
        python_falls_back=True,
    ),
    Case("python3-variables", python_variables),
    Case("newline-in-function-name", forged_record),
    Case("code-in-values", code_in_values),
    Case("long-namespace", lambda d, s: {"CONCURRENCY_OBSERVER_NAMESPACE": " a!" * (LONG // 3)}),
    Case("long-init-type", lambda d, s: {"AWS_LAMBDA_INITIALIZATION_TYPE": "a!" * (LONG // 2)}),
    Case("long-function-name", lambda d, s: {"AWS_LAMBDA_FUNCTION_NAME": "\t\x01" * (LONG // 2)}),
    Case("cloudwatch-echoes-request", cloudwatch_echo, python_refused=True),
    Case(
        "credentials-endpoint-403-echoes-token",
        lambda d, s: credentials_echo(d, s, s.credentials_403, token_file=False),
        python_refused=True,
        secrets=ECHO_SECRETS,
    ),
    Case(
        "credentials-endpoint-500-echoes-token-file",
        lambda d, s: credentials_echo(d, s, s.credentials_500, token_file=True),
        python_refused=True,
        secrets=ECHO_SECRETS,
    ),
    Case(
        "credentials-uri-with-userinfo-refused",
        lambda d, s: credentials_echo(d, s, "169.254.170.9", token_file=False),
        python_refused=True,
        secrets=ECHO_SECRETS,
    ),
]


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    """The echoing endpoints, shared by the cases."""
    cloudwatch = EchoingServer(403, "aws-xml")  # the token and signature in <Message>
    forbidden, failing = EchoingServer(403, "plain"), EchoingServer(500, "json")
    with cloudwatch.running(), forbidden.running(), failing.running():
        yield Servers(cloudwatch.address, forbidden.address, failing.address)


@pytest.mark.parametrize("engine", ["python", "bash"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_environment(
    rie_path: Path, layer_dir: Path, tmp_path: Path, servers: Servers, *, case: Case, engine: str
) -> None:
    """Every invoke succeeds; one init and one shutdown record; no trace, secret or payload."""
    directory = tmp_path / "case"
    directory.mkdir()
    environ: Environ = {
        "CONCURRENCY_OBSERVER_ENGINE": engine,
        "CONCURRENCY_OBSERVER_SINK": "emf",
        "CONCURRENCY_OBSERVER_METRICS": "full",  # the six metrics, counted per record below
        **case.environ(directory, servers),
    }
    layer = hostile_layer(layer_dir, tmp_path / "opt", environ)
    settings = EnvironmentSettings(function_name=unique_name("hostile"), sh_is_bash=True)
    if not case.lambda_python:
        settings = EnvironmentSettings(
            function_name=settings.function_name, sh_is_bash=True, lambda_python=None
        )
    with LambdaEnvironment(layer, settings, name="hostile", rie_path=rie_path) as environment:
        results = [environment.invoke({"sleep_ms": 1}) for _ in range(INVOCATIONS)]
        stopped = environment.shutdown()
    output = Output.of(environment.output)
    assert [r.status for r in results] == [200] * INVOCATIONS, environment.output
    assert [r.function_error for r in results] == [None] * INVOCATIONS, environment.output
    assert len({r.payload["pid"] for r in results}) == 1  # one runtime: no reset
    assert "Extension.Crash" not in output.text
    assert stopped.forced is False, environment.output
    python = engine == "python" and not case.python_falls_back
    if python and case.python_refused:
        assert (output.inits, output.shutdowns) == (0, 0), environment.output
        assert any("HTTP 403" in line or "credentials" in line for line in output.lines)
    else:
        assert (output.inits, output.shutdowns) == (1, 1), environment.output
    fallback = [line for line in output.lines if "bash engine" in line]
    assert bool(fallback) == (not python), environment.output
    assert output.foreign == [], environment.output
    assert len(output.lines) <= MAX_EXTENSION_LINES, environment.output
    assert output.secrets_shown(case.secrets) == []
    assert not (directory / MARK).exists(), "a payload ran"
