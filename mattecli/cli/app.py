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

SUBCOMMAND_MODULES = ("samples", "compose", "eval", "matte", "video", "demo", "train", "weights", "export")

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
    """Console entry point: user errors become one red line and exit code 2, never a traceback.

    Click's standalone mode handles usage errors (exit 2), ``--help`` and Ctrl-C itself;
    a :class:`MatteError` raised by the core passes through it and is printed here.
    """
    try:
        app()
    except MatteError as exc:
        from rich.text import Text

        from mattecli.console import console

        console.print(Text.assemble(("error: ", "bold red"), str(exc)), soft_wrap=True)
        sys.exit(2)
