"""`mattecli trimap INPUT --weights CKPT --out OUT`: predicted trimaps only, for `matte --trimap`."""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

import typer

from mattecli.cli.options import examples


def register(app: typer.Typer) -> None:
    @app.command("trimap", epilog=examples(
        "mattecli trimap demo-out/dataset/merged --weights runs/shm/best.pt --out predicted-trimaps   "
        "# after the `train shm` example",
        "mattecli matte demo-out/dataset/merged --trimap predicted-trimaps --out mattes-from-predicted"))
    def trimap(
        input: Path = typer.Argument(..., help="An image, or a folder searched recursively."),
        weights: Path = typer.Option(..., "--weights", help="A checkpoint of a network that predicts trimaps (shm)."),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder: OUT/<relative path>/<stem>.png, "
                                                            "0/128/255, paired by name as `matte --trimap OUT` expects."),
        infer_size: Optional[int] = typer.Option(None, "--infer-size", min=8,
                                                 help="Side of the square the trimap network sees "
                                                      "(default: the size it was trained at)."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
        precision: Literal["fp32", "fp16", "bf16"] = typer.Option("fp32", "--precision", help="fp32, fp16 (CUDA) or bf16."),
        batch_size: int = typer.Option(4, "--batch-size", min=1, help="Images of equal size per batch."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Redo images whose trimap already exists."),
        shard: str = typer.Option("1/1", "--shard", help="I/N: process only block I of N (1-based)."),
    ) -> None:
        """Predict trimaps (background 0, unknown 128, foreground 255) with a trimap-free network."""
        from mattecli.console import console, print_failures, progress
        from mattecli.errors import MatteError
        from mattecli.inference.batch import MatteOptions, plan_matte, run_matte
        from mattecli.inference.methods import build_method
        from mattecli.shards import parse_shard

        options = MatteOptions(input=input, out=out, outputs=("trimap",), overwrite=overwrite,
                               shard=parse_shard(shard), kind_folders=False)
        runner = build_method(weights, "classical", device, batch_size, precision, infer_size=infer_size)
        if "trimap" not in runner.extra_outputs:
            raise MatteError(f"{weights}: a '{runner.family}' network predicts no trimap (shm checkpoints do)")
        plan = plan_matte(options, runner)
        console.print(runner.describe())
        with progress("img") as bar:
            task = bar.add_task("trimap", total=len(plan.items))
            summary = run_matte(options, runner, on_item=lambda item, status: bar.advance(task), plan=plan)
        console.print(f"{summary.done} trimaps written, {summary.skipped} skipped (exist; --overwrite to redo), "
                      f"{len(summary.failures)} failed of {summary.total} in {out}")
        if summary.failures:
            print_failures(summary.failures)
            raise typer.Exit(1)
