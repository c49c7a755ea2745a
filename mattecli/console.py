"""The one rich console and progress bar style every subcommand uses."""
from __future__ import annotations

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, SpinnerColumn,
                           Task, TextColumn, TimeElapsedColumn, TimeRemainingColumn)
from rich.text import Text

console = Console(stderr=True, highlight=False)


class RateColumn(ProgressColumn):
    """Items per second (or seconds per item when slower than one a second).

    The mean since the start, not rich's short-window speed: results of a process pool
    arrive in bursts, which make a windowed rate jump to nonsense.
    """

    def __init__(self, unit: str = "it") -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        elapsed = task.finished_time if task.finished else task.elapsed
        speed = task.completed / elapsed if elapsed and task.completed else None
        if not speed:
            return Text(f"-- {self.unit}/s", style="cyan")
        if speed >= 1:
            return Text(f"{speed:.1f} {self.unit}/s", style="cyan")
        return Text(f"{1 / speed:.1f} s/{self.unit}", style="cyan")


def print_failures(failures: list[tuple[str, str]]) -> None:
    """The batch commands' table of failed inputs, names made printable (see :func:`printable`)."""
    from rich.table import Table

    table = Table("input", "problem", title="failed", title_style="bold red")
    for name, problem in failures:
        table.add_row(printable(name), printable(problem))
    console.print(table)


def printable(text: str) -> str:
    """A file name fit for a table: bytes that are not UTF-8 (kept by Python as lone surrogates,
    which a terminal cannot show and rich cannot measure) become U+FFFD, one column each."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a surrogate that no undecodable byte made
        return text.encode("utf-8", "replace").decode("utf-8")


def progress(unit: str = "it", transient: bool = False, disable: bool = False) -> Progress:
    """Bar with count, rate and ETA: ``with progress("img") as p: t = p.add_task("matte", total=n)``."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(unit),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
        disable=disable,
    )
