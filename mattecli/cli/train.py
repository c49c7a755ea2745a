"""`mattecli train <family>`: parse flags into a recipe, hand it to the engine, report."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from mattecli.cli.options import apply_max_pixels, max_pixels_option

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
    max_pixels: Optional[int] = max_pixels_option(),
) -> None:
    """Deep Image Matting (Xu et al. 2017): encoder-decoder, refinement, then joint fine-tuning."""
    apply_max_pixels(max_pixels)
    if amp is not None and amp not in ("bf16", "fp16", "none"):
        raise typer.BadParameter("expected bf16, fp16 or none", param_hint="--amp")
    flags = {"iters": iters, "batch_size": batch_size, "seed": seed, "workers": workers, "amp": amp,
             "compile": compile_, "channels_last": channels_last,
             "backbone_weights": str(backbone_weights) if backbone_weights else None}
    _train("dim", data, out, recipe, stage, val, resume, device, list(assignments), flags, progress, init_from)


@train_app.command("shm")
def shm(
    data: Path = typer.Option(..., "--data", help="Human foregrounds: a `mattecli compose` folder, or fg/ + alpha/ "
                                                  "(+ bg/, or --set backgrounds=DIR)."),
    out: Path = typer.Option(..., "--out", help="Run folder: per-stage checkpoints, logs, loss curves, best.pt."),
    recipe: str = typer.Option("shm", "--recipe", help="Recipe name in recipes/ (shm, shm-quick) or a TOML path."),
    stage: str = typer.Option("all", "--stage", help="tnet, mnet, e2e, or all (in order)."),
    val: Optional[Path] = typer.Option(None, "--val", help="Validation dataset; best.pt by its whole-image SAD."),
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
                                                    help="ImageNet ResNet-50 state dict (torchvision format) for the T-Net."),
    mnet_backbone_weights: Optional[Path] = typer.Option(None, "--mnet-backbone-weights",
                                                         help="ImageNet VGG16 state dict (torchvision format) for the M-Net."),
    assignments: list[str] = typer.Option([], "--set", help="Override any recipe key: --set lr=1e-4 (repeatable)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the live progress display."),
    init_from: Optional[Path] = typer.Option(None, "--init-from",
                                             help="An SHM checkpoint: the first stage starts from its weights "
                                                  "(not its optimiser), e.g. --stage e2e from a run's mnet/best.pt."),
) -> None:
    """Semantic Human Matting (Chen et al. 2018): T-Net, M-Net, then end to end; mattes people without a trimap."""
    if amp is not None and amp not in ("bf16", "fp16", "none"):
        raise typer.BadParameter("expected bf16, fp16 or none", param_hint="--amp")
    flags = {"iters": iters, "batch_size": batch_size, "seed": seed, "workers": workers, "amp": amp,
             "compile": compile_, "channels_last": channels_last,
             "backbone_weights": str(backbone_weights) if backbone_weights else None,
             "mnet_backbone_weights": str(mnet_backbone_weights) if mnet_backbone_weights else None}
    _train("shm", data, out, recipe, stage, val, resume, device, list(assignments), flags, progress, init_from)



@train_app.command("bgm")
def bgm(
    data: Path = typer.Option(..., "--data", help="Stage adobe: a `compose` dataset (or fg/ alpha/ bg/ folders). "
                                                   "Stage real: a captures folder (clips/<clip>/frames/, "
                                                   "clips/<clip>/background.png, targets/); with --stage all give "
                                                   "it as --captures."),
    out: Path = typer.Option(..., "--out", help="Run folder: per-stage checkpoints, logs, loss curves, best.pt."),
    recipe: str = typer.Option("bgm", "--recipe", help="Recipe name in recipes/ (bgm, bgm-quick) or a TOML path."),
    stage: str = typer.Option("adobe", "--stage", help="adobe, real, or all (real needs captures)."),
    captures: Optional[Path] = typer.Option(None, "--captures", help="Captures folder for stage real "
                                                                     "(default: --data when --stage real)."),
    teacher: Optional[Path] = typer.Option(None, "--teacher", help="Stage real: the adobe checkpoint "
                                                                   "(default OUT/adobe/best.pt)."),
    val: Optional[Path] = typer.Option(None, "--val", help="Validation compose dataset; best.pt by its SAD."),
    iters: Optional[int] = typer.Option(None, "--iters", help="Steps per stage (overrides the recipe)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Samples per step per process."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    amp: Optional[str] = typer.Option(None, "--amp", help="Mixed precision: bf16 or fp16 (fp16 needs CUDA)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out exactly where it stopped."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed for initialisation, data order and augmentation."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Data-loading worker processes."),
    names: Optional[Path] = typer.Option(None, "--names", help="Train only on the foregrounds listed in this file "
                                                               "(e.g. the paper's 269 humans)."),
    assignments: list[str] = typer.Option([], "--set", help="Override any recipe key: --set lr=1e-4 (repeatable)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the live progress display."),
) -> None:
    """Background Matting (Sengupta et al. 2020): supervised on composites, then adversarial on captures."""
    from mattecli.errors import BadInput

    if amp is not None and amp not in ("bf16", "fp16", "none"):
        raise typer.BadParameter("expected bf16, fp16 or none", param_hint="--amp")
    if stage == "all" and captures is None:
        raise BadInput(data, "--stage all trains adobe on --data and real on --captures: give --captures")
    if captures is not None and not captures.is_dir():
        raise BadInput(captures, "--captures must be a captures folder")
    if names is not None and not names.is_file():
        raise BadInput(names, "no such name list")
    if stage in ("real", "all"):  # the captures layout is checked before anything trains
        from mattecli.families.bgm.data import find_captures

        find_captures(captures or data)
    if stage == "real" and teacher is None and not any("teacher" in a for a in assignments) \
            and not (out / "adobe" / "best.pt").is_file():
        raise BadInput(out / "adobe" / "best.pt", "no adobe-stage teacher: train --stage adobe first or give --teacher")
    flags = {"iters": iters, "batch_size": batch_size, "seed": seed, "workers": workers, "amp": amp,
             "names": str(names) if names else None}
    sets = list(assignments)
    if stage in ("real", "all") and (teacher is not None or not any("teacher" in a for a in assignments)):
        sets.append(f"stages.real.teacher={_toml_str(teacher or out / 'adobe' / 'best.pt')}")
        if captures is not None:
            sets.append(f"stages.real.captures={_toml_str(captures)}")
    _train("bgm", data, out, recipe, stage, val, resume, device, sets, flags, progress)


def _toml_str(path: Path) -> str:
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


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
