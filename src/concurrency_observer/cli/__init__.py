"""The ``concurrency-observer`` command. Each sub-command lives in its own module of this package.

Heavy imports (boto3, matplotlib, moto) happen inside the commands, so ``--help`` stays instant.
"""

from __future__ import annotations

import sys

import click

from concurrency_observer import __version__
from concurrency_observer.cli.dashboard import dashboard
from concurrency_observer.cli.experiment import experiment
from concurrency_observer.cli.layer import layer
from concurrency_observer.cli.report import report
from concurrency_observer.cli.simulate import simulate
from concurrency_observer.errors import UserError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="concurrency-observer")
def cli() -> None:
    """Count the execution environments AWS Lambda really creates for your functions.

    A stdlib-only Lambda extension (shipped as a layer) records every environment's init and
    shutdown as CloudWatch metrics; these commands build and publish it, read the numbers back,
    run the provisioned-concurrency study, and simulate all of it locally without an AWS account.
    """


cli.add_command(layer)
cli.add_command(report)
cli.add_command(dashboard)
cli.add_command(simulate)
cli.add_command(experiment)


def main() -> None:
    """Console entry point: run the CLI, showing ``UserError`` as one line and an exit code."""
    try:
        cli.main(standalone_mode=False)
    except UserError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        # One line, like every other error, with where to look instead of the usage block.
        where = exc.ctx.command_path if exc.ctx is not None else "concurrency-observer"
        click.secho(f"error: {exc.format_message()} (see '{where} --help')", fg="red", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
