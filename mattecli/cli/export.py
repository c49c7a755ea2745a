"""`mattecli export CKPT --format onnx|torchscript --out FILE` (flags -> core -> render)."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer

from mattecli.cli.options import examples


def register(app: typer.Typer) -> None:
    @app.command("export", epilog=examples(
        "mattecli export runs/dim/best.pt --format torchscript --out dim.ts   # after the `train dim` example",
        "# for onnxruntime (exporting DIM takes about half a minute on a CPU):",
        "# mattecli export runs/dim/best.pt --format onnx --out dim.onnx"))
    def export(
        ckpt: Path = typer.Argument(..., metavar="CKPT", help="A mattecli checkpoint (trained or imported)."),
        fmt: Literal["onnx", "torchscript"] = typer.Option(..., "--format", "-f", case_sensitive=False,
                                                           help="onnx or torchscript."),
        out: Path = typer.Option(..., "--out", "-o", help="The file to write (.onnx or .pt)."),
        exporter: Literal["auto", "dynamo", "legacy"] = typer.Option("auto", "--exporter", case_sensitive=False,
                                     help="ONNX only: auto (dynamo, then the TorchScript-based one), dynamo or legacy."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace --out if it exists."),
    ) -> None:
        """Export a network (fp32; dynamic batch, height and width in multiples of the family's size multiple),
        verified against the checkpoint on CPU before it is written. The input/output contract is stored in the file."""
        from mattecli.console import console
        from mattecli.export.run import export_checkpoint

        with console.status(f"exporting {ckpt} to {fmt}, then checking the file against the checkpoint") as status:
            result = export_checkpoint(ckpt, fmt.lower(), out, exporter=exporter.lower(),
                                       log=lambda msg: status.update(msg), overwrite=overwrite)
        for note in result.notes:
            console.print(f"[yellow]note[/]: {note}")
        c = result.contract
        ins = ", ".join(f"{i['name']} {i['shape']}" for i in c["inputs"])
        outs = ", ".join(f"{o['name']} {o['shape']}" for o in c["outputs"])
        console.print(f"[green]exported[/] {ckpt} -> {result.out} ({result.fmt} via {result.exporter}); "
                      f"inputs {ins}; outputs {outs}; H and W multiples of {c['size_multiple']}; "
                      f"max abs difference to the checkpoint {result.max_abs_diff:.2e}")
