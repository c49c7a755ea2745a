"""`mattecli train <family>`: parse flags into a recipe, hand it to the engine, report.

The flags every family shares (run folder, schedule overrides, devices, precision, resume,
--set, --init-from, ...) are declared once in ``_COMMON``; each family's command declares only
its own (data, recipe, stages, backbone files, ...) and is registered with
:func:`family_command`, which appends the shared ones to its signature for Typer.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Optional, get_type_hints

import typer

from mattecli.cli.options import apply_max_pixels, examples, max_pixels_option, refuse_unless

train_app = typer.Typer(help="Train a matting network (checkpoints, resume, validation, multi-GPU with torchrun).",
                        no_args_is_help=True, epilog=examples(
                            "mattecli train dim --data demo-out/dataset --out runs/dim --recipe dim-quick --device cpu",
                            "# several GPUs or machines: torchrun (docs/scale.md)",
                            "# torchrun --nproc-per-node 4 -m mattecli train dim --data comp1k_train --out runs/dim "
                            "--device cuda"))

#: the shared flags: (name, type, typer option); names not in the recipe are handled by TrainRun
_COMMON: tuple[tuple[str, Any, Any], ...] = (
    ("out", Path, typer.Option(..., "--out", "-o", help="Run folder: per-stage checkpoints, logs, loss curves, best.pt.")),
    ("iters", Optional[int], typer.Option(None, "--iters", help="Steps per stage (overrides the recipe).")),
    ("batch_size", Optional[int], typer.Option(None, "--batch-size", help="Samples per step per process.")),
    ("device", str, typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N.")),
    ("amp", Optional[Literal["bf16", "fp16", "none"]],
     typer.Option(None, "--amp", help="Mixed precision: bf16, fp16 (needs CUDA) or none \\[default: the recipe's].")),
    ("resume", bool, typer.Option(False, "--resume", help="Continue the run in --out exactly where it stopped.")),
    ("seed", Optional[int], typer.Option(None, "--seed", help="Seed for initialisation, data order and augmentation.")),
    ("workers", Optional[int], typer.Option(None, "--workers", min=0,
                                            help="Processes that load and augment data, per training process (0: in "
                                                 "the training process itself) \\[default: the recipe's]. Unlike "
                                                 "compose and eval there is no 'all cores' default: loader processes "
                                                 "compete with the training threads.")),
    ("compile_", Optional[bool], typer.Option(None, "--compile/--no-compile", help="torch.compile the network.")),
    ("channels_last", Optional[bool], typer.Option(None, "--channels-last/--no-channels-last",
                                                   help="Channels-last memory format (default: on for CUDA).")),
    ("assignments", list[str], typer.Option([], "--set", help="Override any recipe key: --set lr=1e-4 (repeatable).")),
    ("init_from", Optional[Path], typer.Option(None, "--init-from",
                                               help="A checkpoint of this family (trained or `weights import`ed): the "
                                                    "first stage starts from its weights (not its optimiser).")),
    ("progress", bool, typer.Option(True, "--progress/--no-progress",
                                    help="Show the live progress display; without it, plain loss lines (--print-every).")),
    ("print_every", Optional[int], typer.Option(None, "--print-every", min=1,
                                      help="With --no-progress: print a loss line every N steps (and at each stage's "
                                           "end), for logs of batch jobs. The JSONL log's frequency is the recipe key "
                                           "log_every. \\[default: 50]")),
    ("from_scratch", bool, typer.Option(False, "--from-scratch",
                                        help="Start from the network's own initialisation, not the ImageNet backbone "
                                             "the recipe names (recorded in the checkpoint).")),
    ("max_pixels", Optional[int], max_pixels_option()),
)
#: shared flags whose help differs for one family: (family, name) -> option
_FAMILY_OPTIONS = {("click", "seed"): typer.Option(None, "--seed", help="Seed for initialisation, data order, "
                                                                        "augmentation and the simulated clicks.")}
#: shared flags that map one-to-one onto recipe keys (flag name -> recipe key)
_RECIPE_FLAGS = {"iters": "iters", "batch_size": "batch_size", "seed": "seed", "workers": "workers", "amp": "amp",
                 "compile_": "compile", "channels_last": "channels_last"}


@dataclass
class TrainRun:
    """The shared flags of one `train` call, checked; a family command adds its own and calls :meth:`start`."""

    family: str
    out: Path
    device: str
    resume: bool
    assignments: list[str]
    progress: bool
    init_from: Optional[Path]
    flags: dict[str, Any]
    print_every: int = 50

    def start(self, data: Path, recipe: str, stage: str, val: Optional[Path], extra_flags: dict[str, Any] | None = None,
              extra_assignments: list[str] | None = None) -> None:
        """Build the recipe (file, then --set, then flags), run the engine, print what each stage made."""
        from mattecli.console import console
        from mattecli.errors import BadInput
        from mattecli.train.engine import train
        from mattecli.train.recipe import build_recipe

        for path, what in ((data, "--data"), (val, "--val")):
            if path is not None and not Path(path).is_dir():
                raise BadInput(path, f"{what} must be a dataset folder")
        flags = {**self.flags, **(extra_flags or {})}
        from mattecli.families.registry import get_family

        notes: list[str] = []
        family = get_family(self.family)
        full = build_recipe(recipe, [*self.assignments, *(extra_assignments or [])], flags, family, notes)
        for note in notes:
            console.print(f"[yellow]note[/]: {note}")
        if full.get("family", self.family) != self.family:
            raise BadInput(recipe, f"is a recipe for '{full['family']}', not '{self.family}'")
        result = train(family, full, data, self.out, stage=stage, val_dir=val, resume=self.resume,
                       device=self.device, show_progress=self.progress, init_from=self.init_from,
                       print_every=self.print_every)
        for s in result.stages:
            rate = f", {s.samples_per_s:.2f} samples/s" if s.samples_per_s else ""
            best = f", best SAD {s.best_sad:.2f}" if s.best_sad is not None else ""
            console.print(f"{self.family} / {s.stage}: {s.steps} steps{rate}{best} -> {s.best_path or s.last_path}")
        if result.best_path.is_file():
            console.print(f"[green]done[/]: {result.best_path} (use it with mattecli matte --weights)")


def _train_run(family: str, shared: dict[str, Any]) -> TrainRun:
    apply_max_pixels(shared["max_pixels"])
    refuse_unless(not shared["progress"], "--no-progress (the live display shows the loss)",
                  print_every=shared["print_every"])
    return TrainRun(family, shared["out"], shared["device"], shared["resume"], list(shared["assignments"]),
                    shared["progress"], shared["init_from"],
                    {**{key: shared[name] for name, key in _RECIPE_FLAGS.items()},
                     "from_scratch": True if shared["from_scratch"] else None}, shared["print_every"] or 50)


def family_command(family: str, epilog: str | None = None) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register ``fn(own flags..., run: TrainRun)`` as `mattecli train FAMILY` with the shared flags appended."""
    def wrap(fn: Callable[..., None]) -> Callable[..., None]:
        own = [p for p in inspect.signature(fn).parameters.values() if p.name != "run"]
        hints = {k: v for k, v in get_type_hints(fn).items() if k not in ("run", "return")}
        shared = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=kind,
                                    default=_FAMILY_OPTIONS.get((family, name), option))
                  for name, kind, option in _COMMON]

        def command(**kwargs: Any) -> None:
            run = _train_run(family, {name: kwargs.pop(name) for name, _, _ in _COMMON})
            fn(**kwargs, run=run)

        command.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + shared)
        command.__annotations__ = {**hints, **{name: kind for name, kind, _ in _COMMON}}
        command.__doc__, command.__name__ = fn.__doc__, fn.__name__
        train_app.command(family, epilog=epilog)(command)
        return fn
    return wrap


def _path_flag(path: Optional[Path]) -> Optional[str]:
    return str(path) if path else None


@family_command("dim", epilog=examples(
    "mattecli train dim --data demo-out/dataset --out runs/dim --recipe dim-quick --device cpu",
    "mattecli train dim --data demo-out/dataset --out runs/dim-encoder --recipe dim-quick --stage encoder --no-progress",
    "# the paper's recipe on a GPU, from ImageNet weights (your data set):",
    "# mattecli train dim --data comp1k_train --val comp1k_test --out runs/dim --backbone-weights vgg16.pth --device cuda"))
def dim(
    data: Path = typer.Option(..., "--data", help="Training dataset: a `mattecli compose` folder (manifest.json)."),
    recipe: str = typer.Option("dim", "--recipe",
                               help="Recipe name in recipes/ or a TOML path: dim (the paper's schedule, for a GPU) "
                                    "or dim-quick (learns on a CPU in minutes)."),
    stage: Literal["encoder", "refine", "joint", "all"] = typer.Option("all", "--stage",
                              help="One stage, or all in order."),
    val: Optional[Path] = typer.Option(None, "--val", help="Validation dataset (fixed trimaps); best.pt by its SAD."),
    backbone_weights: Optional[Path] = typer.Option(None, "--backbone-weights",
                                                    help="ImageNet VGG16 state dict (torchvision format) to start from."),
    *, run: TrainRun,
) -> None:
    """Deep Image Matting (Xu et al. 2017): encoder-decoder, refinement, then joint fine-tuning."""
    run.start(data, recipe, stage, val, {"backbone_weights": _path_flag(backbone_weights)})


@family_command("shm", epilog=examples(
    "mattecli train shm --data demo-out/dataset --out runs/shm --recipe shm-quick --device cpu",
    "# on people (a human-matting data set) with ImageNet backbones, on a GPU:",
    "# mattecli train shm --data humans/ --val humans_val/ --out runs/shm --backbone-weights resnet50.pth --device cuda"))
def shm(
    data: Path = typer.Option(..., "--data", help="Human foregrounds: a `mattecli compose` folder, or fg/ + alpha/ "
                                                  "(+ bg/, or --set backgrounds=DIR)."),
    recipe: str = typer.Option("shm", "--recipe",
                               help="Recipe name in recipes/ or a TOML path: shm (the paper's schedule, for a GPU) "
                                    "or shm-quick (learns on a CPU in minutes)."),
    stage: Literal["tnet", "mnet", "e2e", "all"] = typer.Option("all", "--stage",
                              help="One stage, or all in order."),
    val: Optional[Path] = typer.Option(None, "--val", help="Validation dataset; best.pt by its whole-image SAD."),
    backbone_weights: Optional[Path] = typer.Option(None, "--backbone-weights",
                                                    help="ImageNet ResNet-50 state dict (torchvision format) for the T-Net."),
    mnet_backbone_weights: Optional[Path] = typer.Option(None, "--mnet-backbone-weights",
                                                         help="ImageNet VGG16 state dict (torchvision format) for the M-Net."),
    *, run: TrainRun,
) -> None:
    """Semantic Human Matting (Chen et al. 2018): T-Net, M-Net, then end to end; mattes people without a trimap."""
    run.start(data, recipe, stage, val, {"backbone_weights": _path_flag(backbone_weights),
                                         "mnet_backbone_weights": _path_flag(mnet_backbone_weights)})


@family_command("bgm", epilog=examples(
    "mattecli train bgm --data demo-out/dataset --out runs/bgm --recipe bgm-quick --device cpu",
    "# then stage real on your captures (clips/<clip>/frames/, clips/<clip>/background.png, targets/):",
    "# mattecli train bgm --data captures/ --stage real --out runs/bgm --recipe bgm-quick"))
def bgm(
    data: Path = typer.Option(..., "--data", help="Stage adobe: a `compose` dataset (or fg/ alpha/ bg/ folders). "
                                                   "Stage real: a captures folder (clips/<clip>/frames/, "
                                                   "clips/<clip>/background.png, targets/); with --stage all give "
                                                   "it as --captures."),
    recipe: str = typer.Option("bgm", "--recipe",
                               help="Recipe name in recipes/ or a TOML path: bgm (the paper's schedule, for a GPU) "
                                    "or bgm-quick (learns on a CPU in minutes)."),
    stage: Literal["adobe", "real", "all"] = typer.Option("adobe", "--stage",
                              help="One stage, or all in order (real needs captures)."),
    captures: Optional[Path] = typer.Option(None, "--captures", help="Captures folder for stage real "
                                                                     "(default: --data when --stage real)."),
    teacher: Optional[Path] = typer.Option(None, "--teacher", help="Stage real: the adobe checkpoint "
                                                                   "(default OUT/adobe/best.pt)."),
    val: Optional[Path] = typer.Option(None, "--val", help="Validation compose dataset; best.pt by its SAD."),
    names: Optional[Path] = typer.Option(None, "--names", help="Train only on the foregrounds listed in this file "
                                                               "(e.g. the paper's 269 humans)."),
    *, run: TrainRun,
) -> None:
    """Background Matting (Sengupta et al. 2020): supervised on composites, then adversarial on captures."""
    from mattecli.errors import BadInput

    if stage == "all" and captures is None:
        raise BadInput(data, "--stage all trains adobe on --data and real on --captures: give --captures")
    if captures is not None and not captures.is_dir():
        raise BadInput(captures, "--captures must be a captures folder")
    if names is not None and not names.is_file():
        raise BadInput(names, "no such name list")
    if stage in ("real", "all"):  # the captures layout is checked before anything trains
        from mattecli.families.bgm.data import find_captures

        find_captures(captures or data)
    set_teacher = any("teacher" in a for a in run.assignments)
    if stage == "real" and teacher is None and not set_teacher and not (run.out / "adobe" / "best.pt").is_file():
        raise BadInput(run.out / "adobe" / "best.pt",
                       "no adobe-stage teacher: train --stage adobe first or give --teacher")
    sets = []
    if stage in ("real", "all") and (teacher is not None or not set_teacher):
        sets.append(f"stages.real.teacher={_toml_str(teacher or run.out / 'adobe' / 'best.pt')}")
        if captures is not None:
            sets.append(f"stages.real.captures={_toml_str(captures)}")
    run.start(data, recipe, stage, val, {"names": _path_flag(names)}, sets)


def _toml_str(path: Path) -> str:
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


@family_command("click", epilog=examples(
    "mattecli train click --data demo-out/dataset --out runs/click --recipe click-quick --device cpu"))
def click(
    data: Path = typer.Option(..., "--data", help="Training dataset: a `mattecli compose` folder or fg/ + alpha/ (+ bg/)."),
    recipe: str = typer.Option("click", "--recipe",
                               help="Recipe name in recipes/ or a TOML path: click (the paper's schedule, for a GPU) "
                                    "or click-quick (learns on a CPU in minutes)."),
    stage: Literal["matting", "uncertainty", "refine", "all"] = typer.Option("all", "--stage",
                              help="One stage, or all in order."),
    val: Optional[Path] = typer.Option(None, "--val", help="Validation dataset (fixed clicks); best.pt by its SAD."),
    backbone_weights: Optional[Path] = typer.Option(None, "--backbone-weights",
                                                    help="ImageNet ResNet state dict (torchvision format) to start from."),
    *, run: TrainRun,
) -> None:
    """Click matting with uncertainty (Wei et al. 2021): matting net, uncertainty decoder, local refinement."""
    run.start(data, recipe, stage, val, {"backbone_weights": _path_flag(backbone_weights)})


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
