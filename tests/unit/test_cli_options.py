"""Shared options are spelled once: every command's --namespace, --endpoint-url and --region."""

from __future__ import annotations

import click
import pytest

from concurrency_observer.cli import cli


def commands(group: click.Group, path: str = "") -> dict[str, click.Command]:
    """Every leaf command of ``group`` by its path, e.g. ``layer publish``."""
    found: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found.update(commands(command, f"{path}{name} "))
        else:
            found[f"{path}{name}"] = command
    return found


def option(command: click.Command, flag: str) -> click.Option | None:
    """The option of ``command`` spelled ``flag``, if it has one."""
    for param in command.params:
        if isinstance(param, click.Option) and flag in param.opts:
            return param
    return None


COMMANDS = commands(cli)


def test_the_commands_that_read_cloudwatch_share_namespace_and_endpoint() -> None:
    """report, dashboard, simulate and experiment all take the shared two options."""
    for name in ("report", "dashboard", "simulate", "experiment"):
        assert option(COMMANDS[name], "--namespace") is not None, name
        assert option(COMMANDS[name], "--endpoint-url") is not None, name


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_namespace_reads_the_extensions_variable(name: str) -> None:
    """Wherever --namespace exists, CONCURRENCY_OBSERVER_NAMESPACE sets it too."""
    namespace = option(COMMANDS[name], "--namespace")
    if namespace is not None:
        assert namespace.envvar == "CONCURRENCY_OBSERVER_NAMESPACE"
        assert namespace.help is not None
        assert namespace.help.startswith("The metrics' namespace (env:")


@pytest.mark.parametrize("flag", ["--endpoint-url", "--region"])
def test_shared_options_read_the_same_everywhere(flag: str) -> None:
    """One help text and one default for each shared option, in every command that has it."""
    spellings = {
        (found.help, found.default, found.envvar)
        for command in COMMANDS.values()
        if (found := option(command, flag)) is not None
    }
    assert len(spellings) == 1, spellings


@pytest.mark.parametrize(
    ("name", "args", "unset"),
    [("experiment", ["--levels", "1"], None), ("simulate", [], "ConcurrencyObserver")],
)
def test_namespace_from_the_environment(
    name: str, args: list[str], unset: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The variable sets --namespace; without it, simulate uses the default, experiment None."""
    command = COMMANDS[name]
    monkeypatch.delenv("CONCURRENCY_OBSERVER_NAMESPACE", raising=False)
    assert command.make_context(name, list(args)).params["namespace"] == unset
    monkeypatch.setenv("CONCURRENCY_OBSERVER_NAMESPACE", "Team/Env")
    assert command.make_context(name, list(args)).params["namespace"] == "Team/Env"
