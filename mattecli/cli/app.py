"""The ``mattecli`` Typer application and its error boundary.

Every subcommand lives in its own module exposing ``register(app)``. Heavy imports (torch,
the core) happen inside the commands so ``mattecli --help`` stays fast.
"""
from __future__ import annotations

import errno
import importlib
import os
import sys

import typer

from mattecli import __version__
from mattecli.cli.options import examples
from mattecli.errors import MatteError

SUBCOMMAND_MODULES = ("samples", "compose", "eval", "matte", "trimap", "video", "demo", "train", "weights",
                      "export", "studio")

app = typer.Typer(
    name="mattecli",
    help="Alpha matting toolkit: compose datasets, train, evaluate, matte images and videos.",
    epilog=examples("mattecli demo --out demo-out",
                    "mattecli matte demo-out/dataset/merged --trimap demo-out/dataset/trimap --out mattes",
                    "mattecli eval mattes/alpha --data demo-out/dataset",
                    "# every command's --help ends with examples like these"),
    no_args_is_help=True,
    add_completion=True,  # --install-completion: shells complete commands, flags and fixed choices
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
        _fail(str(exc))
    except OSError as exc:  # the environment: read-only or full file system, a file where a folder must be
        _fail(os_error_line(exc))


def os_error_line(exc: OSError) -> str:
    """One line for an OSError no command turned into a MatteError: the path and the cause."""
    from mattecli.errors import describe_os_error

    writing = exc.errno in _WRITE_ERRNOS
    if exc.filename is None:
        return f"{'cannot write: ' if writing else ''}{describe_os_error(exc)}"
    target = os.fsdecode(exc.filename2 if exc.filename2 is not None else exc.filename)
    return f"cannot write {target}: {describe_os_error(exc)}" if writing else f"{target}: {describe_os_error(exc)}"


# errors that only a write (or a folder made for writing) gives; EACCES/EPERM may be either
_WRITE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EFBIG, errno.EEXIST, errno.ENOTDIR, errno.EISDIR}


def _fail(message: str) -> None:
    from rich.text import Text

    from mattecli.console import console

    console.print(Text.assemble(("error: ", "bold red"), message), soft_wrap=True)
    sys.exit(2)
