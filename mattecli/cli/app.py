"""The ``mattecli`` Typer application and its error boundary.

Every subcommand lives in its own module exposing ``register(app)``. Heavy imports (torch,
the core) happen inside the commands so ``mattecli --help`` stays fast.
"""
from __future__ import annotations

import importlib
import sys

import typer

from mattecli import __version__
from mattecli.errors import MatteError

SUBCOMMAND_MODULES = ("samples", "compose", "eval", "matte", "video", "demo", "train")

app = typer.Typer(
    name="mattecli",
    help="Alpha matting toolkit: compose datasets, train, evaluate, matte images and videos.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mattecli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Alpha matting toolkit."""


for _name in SUBCOMMAND_MODULES:
    importlib.import_module(f"mattecli.cli.{_name}").register(app)


def main() -> None:
    """Console entry point: user errors become one red line and exit code 2, never a traceback."""
    from rich.text import Text

    from mattecli.console import console

    try:
        rc = app(standalone_mode=False)
    except MatteError as exc:
        console.print(Text.assemble(("error: ", "bold red"), str(exc)), soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]; rerun the same command to resume")
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # click's own usage errors arrive here in non-standalone mode
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(1)
        raise
    sys.exit(rc if isinstance(rc, int) else 0)
