"""`mattecli train <family>`: parse flags into a recipe, hand it to the engine, report."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

train_app = typer.Typer(help="Train a matting network (checkpoints, resume, validation, multi-GPU with torchrun).",
                        no_args_is_help=True)

#: flags that map one-to-one onto recipe keys
_FLAG_KEYS = ("iters", "batch_size", "seed", "workers", "amp", "compile", "channels_last", "backbone_weights")


def _train(family: str, data: Path, out: Path, recipe: str, stage: str, val: Optional[Path], resume: bool,
           device: str, assignments: list[str], flags: dict[str, Any], progress: bool,
           init_from: Optional[Path] = None) -> None:
    from mattecli.console import console
    from mattecli.errors import BadInput
    from mattecli.train.engine import train
    from mattecli.train.recipe import build_recipe

    for path, what in ((data, "--data"), (val, "--val")):
        if path is not None and not Path(path).is_dir():
            raise BadInput(path, f"{what} must be a dataset folder")
    full = build_recipe(recipe, assignments, flags)
    if full.get("family", family) != family:
        raise BadInput(recipe, f"is a recipe for '{full['family']}', not '{family}'")
    result = train(family, full, data, out, stage=stage, val_dir=val, resume=resume, device=device,
                   show_progress=progress, init_from=init_from)
    for s in result.stages:
        rate = f", {s.samples_per_s:.2f} samples/s" if s.samples_per_s else ""
        best = f", best SAD {s.best_sad:.2f}" if s.best_sad is not None else ""
        console.print(f"{family} / {s.stage}: {s.steps} steps{rate}{best} -> {s.best_path or s.last_path}")
    if result.best_path.is_file():
        console.print(f"[green]done[/]: {result.best_path} (use it with mattecli matte --weights)")


@train_app.command("dim")
def dim(
    data: Path = typer.Option(..., "--data", help="Training dataset: a `mattecli compose` folder (manifest.json)."),
    out: Path = typer.Option(..., "--out", help="Run folder: per-stage checkpoints, logs, loss curves, best.pt."),
    recipe: str = typer.Option("dim", "--recipe", help="Recipe name in recipes/ (dim, dim-quick) or a TOML path."),
    stage: str = typer.Option("all", "--stage", help="encoder, refine, joint, or all (in order)."),
    val: Optional[Path] = typer.Option(None, "--val", help="Validation dataset (fixed trimaps); best.pt by its SAD."),
    iters: Optional[int] = typer.Option(None, "--iters", help="Steps per stage (overrides the recipe)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Samples per step per process."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    amp: Optional[str] = typer.Option(None, "--amp", help="Mixed precision: bf16 or fp16 (fp16 needs CUDA)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out exactly where it stopped."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed for initialisation, data order and augmentation."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Data-loading worker processes."),
    compile_: Optional[bool] = typer.Option(None, "--compile/--no-compile", help="torch.compile the network."),
    channels_last: Optional[bool] = typer.Option(None, "--channels-last/--no-channels-last",
                                                 help="Channels-last memory format (default: on for CUDA)."),
    backbone_weights: Optional[Path] = typer.Option(None, "--backbone-weights",
                                                    help="ImageNet VGG16 state dict (torchvision format) to start from."),
    assignments: list[str] = typer.Option([], "--set", help="Override any recipe key: --set lr=1e-4 (repeatable)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the live progress display."),
    init_from: Optional[Path] = typer.Option(None, "--init-from",
                                             help="A DIM checkpoint (trained or `weights import`ed): the first stage "
                                                  "starts from its weights (not its optimiser)."),
) -> None:
    """Deep Image Matting (Xu et al. 2017): encoder-decoder, refinement, then joint fine-tuning."""
    if amp is not None and amp not in ("bf16", "fp16", "none"):
        raise typer.BadParameter("expected bf16, fp16 or none", param_hint="--amp")
    flags = {"iters": iters, "batch_size": batch_size, "seed": seed, "workers": workers, "amp": amp,
             "compile": compile_, "channels_last": channels_last,
             "backbone_weights": str(backbone_weights) if backbone_weights else None}
    _train("dim", data, out, recipe, stage, val, resume, device, list(assignments), flags, progress, init_from)


@train_app.command("click")
def click(
    data: Path = typer.Option(..., "--data", help="Training dataset: a `mattecli compose` folder or fg/ + alpha/ (+ bg/)."),
    out: Path = typer.Option(..., "--out", help="Run folder: per-stage checkpoints, logs, loss curves, best.pt."),
    recipe: str = typer.Option("click", "--recipe", help="Recipe name in recipes/ (click, click-quick) or a TOML path."),
    stage: str = typer.Option("all", "--stage", help="matting, uncertainty, refine, or all (in order)."),
    val: Optional[Path] = typer.Option(None, "--val", help="Validation dataset (fixed clicks); best.pt by its SAD."),
    iters: Optional[int] = typer.Option(None, "--iters", help="Steps per stage (overrides the recipe)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Samples per step per process."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    amp: Optional[str] = typer.Option(None, "--amp", help="Mixed precision: bf16 or fp16 (fp16 needs CUDA)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out exactly where it stopped."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed for initialisation, data order, clicks and augmentation."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Data-loading worker processes."),
    compile_: Optional[bool] = typer.Option(None, "--compile/--no-compile", help="torch.compile the network."),
    channels_last: Optional[bool] = typer.Option(None, "--channels-last/--no-channels-last",
                                                 help="Channels-last memory format (default: on for CUDA)."),
    backbone_weights: Optional[Path] = typer.Option(None, "--backbone-weights",
                                                    help="ImageNet ResNet state dict (torchvision format) to start from."),
    assignments: list[str] = typer.Option([], "--set", help="Override any recipe key: --set error_clicks=0 (repeatable)."),
    init_from: Optional[Path] = typer.Option(None, "--init-from",
                                             help="A click checkpoint (trained or `weights import`ed): the first stage "
                                                  "starts from its weights (not its optimiser)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the live progress display."),
) -> None:
    """Click matting with uncertainty (Wei et al. 2021): matting net, uncertainty decoder, local refinement."""
    if amp is not None and amp not in ("bf16", "fp16", "none"):
        raise typer.BadParameter("expected bf16, fp16 or none", param_hint="--amp")
    flags = {"iters": iters, "batch_size": batch_size, "seed": seed, "workers": workers, "amp": amp,
             "compile": compile_, "channels_last": channels_last,
             "backbone_weights": str(backbone_weights) if backbone_weights else None}
    _train("click", data, out, recipe, stage, val, resume, device, list(assignments), flags, progress, init_from)


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
