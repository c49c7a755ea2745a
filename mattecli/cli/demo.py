"""`mattecli demo --out DIR`: the whole loop on the built-in samples, in about a minute."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mattecli.cli.options import examples


def register(app: typer.Typer) -> None:
    @app.command("demo", epilog=examples("mattecli demo --out demo-out"))
    def demo(
        out: Path = typer.Option(Path("demo-out"), "--out", "-o", help="Folder for everything the demo writes."),
        seed: int = typer.Option(0, "--seed", help="Seed for the samples and the dataset."),
        workers: Optional[int] = typer.Option(None, "--workers", "-j", min=1, help="Processes (default: all cores)."),
    ) -> None:
        """Write samples, compose a dataset with trimaps and plates, matte it, evaluate it,
        matte a rendered video against its plate, and draw a contact sheet."""
        from rich.table import Table

        from mattecli.cli.eval import render_report
        from mattecli.console import console
        from mattecli.demo import run_demo

        result = run_demo(out, seed=seed, workers=workers, say=console.print)
        render_report(result.report, worst=3)
        table = Table(title="demo outputs", show_header=False)
        table.add_row("dataset (manifest.json, merged/, trimap/, plate/)", str(result.dataset))
        table.add_row("predicted alphas (classical closed form)", str(result.predictions))
        for path in result.video_outputs:
            table.add_row("video output", str(path))
        table.add_row("contact sheet", str(result.sheet))
        console.print(table)
        steps = ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items())
        video = (f"video matted at {result.video_fps:.1f} fps end to end" if result.video_fps
                 else "video outputs already there (skipped)")
        console.print(f"time: {steps}; {video}")
