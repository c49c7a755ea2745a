"""The training loop shared by every family.

The family (``mattecli.train.family.TrainingFamily``) supplies networks, losses, stages and
data; this module does the rest: devices, optimiser and schedule, mixed precision,
DistributedDataParallel, seeded data loading, checkpoints and exact resume, validation,
the JSONL log, the progress display and the loss-curve picture.

Layout of a run folder::

    RUN/<stage>/last.pt   every ``checkpoint_every`` steps and at the end of the stage
    RUN/<stage>/best.pt   lowest validation SAD (the final weights when there is no --val)
    RUN/<stage>/log.jsonl one line per logged step and per validation
    RUN/<stage>/loss.png  the loss curve, written at the end of the stage
    RUN/<stage>/summary.json
    RUN/best.pt           a copy of the last stage's best.pt (what ``matte --weights`` takes)
"""
from __future__ import annotations

import math
import os
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from mattecli.backbones.imagenet import check_slot, resolve_backbones
from mattecli.console import console
from mattecli.devices import device_name
from mattecli.errors import BadInput, MatteError
from mattecli.io import atomic
from mattecli.io.checkpoint_guard import state_dict_problem
from mattecli.seeding import derive_seed
from mattecli.train import checkpoints as ckpts
from mattecli.train import distributed
from mattecli.train.family import TrainingFamily
from mattecli.train.logging import LOG_NAME, JsonlLog
from mattecli.train.recipe import resume_differences, stage_recipe
from mattecli.train.validation import to_device, validate


@dataclass
class StageResult:
    stage: str
    steps: int
    best_path: Path | None
    last_path: Path | None
    best_sad: float | None
    samples_per_s: float | None
    seconds: float


@dataclass
class TrainResult:
    run_dir: Path
    stages: list[StageResult] = field(default_factory=list)

    @property
    def best_path(self) -> Path:
        return self.run_dir / ckpts.BEST


# ----------------------------------------------------------------------------- helpers

def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def seed_worker(seed: int, epoch: int, rank: int, worker_id: int) -> None:
    """Per-worker, per-epoch seeds for NumPy and ``random`` (torch's is set by the loader's
    generator). Datasets should still draw from (seed, epoch, index), not from these."""
    s = derive_seed(seed, "worker", epoch, rank, worker_id)
    np.random.seed(s % 2**32)
    random.seed(s)
    torch.manual_seed(s)


def make_scheduler(optimizer: torch.optim.Optimizer, flat: Mapping[str, Any]) -> torch.optim.lr_scheduler.LambdaLR:
    iters, kind = int(flat["iters"]), flat["lr_schedule"]
    if kind == "poly":
        power = float(flat["lr_power"])
        fn: Callable[[int], float] = lambda s: max(0.0, 1.0 - s / iters) ** power  # noqa: E731
    elif kind == "cosine":
        fn = lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, iters) / iters))  # noqa: E731
    else:
        fn = lambda s: 1.0  # noqa: E731
    return torch.optim.lr_scheduler.LambdaLR(optimizer, fn)


def make_optimizer(params: list[torch.nn.Parameter], flat: Mapping[str, Any]) -> torch.optim.Optimizer:
    lr, wd = float(flat["lr"]), float(flat["weight_decay"])
    if not params:
        raise MatteError(f"stage '{flat['stage']}' has no trainable parameters")
    if flat["optimizer"] == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=float(flat["momentum"]), weight_decay=wd)
    cls = torch.optim.AdamW if flat["optimizer"] == "adamw" else torch.optim.Adam
    return cls(params, lr=lr, betas=tuple(float(b) for b in flat["betas"]), weight_decay=wd)


def _precision(flat: Mapping[str, Any], device: torch.device) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, use a GradScaler)."""
    amp = flat["amp"]
    if amp == "none":
        return None, False
    if amp == "fp16":
        if device.type != "cuda":
            raise MatteError("--amp fp16 needs a CUDA device (use bf16 on CPU, or no --amp)")
        return torch.float16, True
    return torch.bfloat16, False


def _channels_last(flat: Mapping[str, Any], device: torch.device) -> bool:
    value = flat["channels_last"]
    return device.type == "cuda" if value == "auto" else bool(value)


def load_weights_into(model: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Weights from the previous stage or ``--init-from``; keys the new stage adds may be missing (reported)."""
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches: a different architecture
        raise MatteError(f"{source}: weights do not fit this network ({state_dict_problem(exc)})") from None
    if result.unexpected_keys:
        raise MatteError(f"{source}: {len(result.unexpected_keys)} weight(s) do not belong to this network "
                         f"(e.g. {result.unexpected_keys[0]})")
    if result.missing_keys:
        console.print(f"[yellow]{source}[/]: {len(result.missing_keys)} weight(s) not in the file keep "
                      f"their initial values (e.g. {result.missing_keys[0]})")


def _restore(path: Path, what: str, load: Any) -> None:
    """Load one part of a resume state; a part that does not fit is one line naming the file."""
    try:
        load()
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise BadInput(path, f"its {what} do not fit this run ({state_dict_problem(exc)}); "
                             "choose another --out to start afresh") from None


def loss_line(family: str, stage: str, step: int, iters: int, values: Mapping[str, float], lr: float,
              rate: float) -> str:
    """One plain line of training progress, for logs of batch jobs (``--no-progress``)."""
    parts = " ".join(f"{k} {v:.4f}" for k, v in values.items() if k != "loss")
    return (f"{family} {stage} step {step}/{iters} loss {values['loss']:.4f}" + (f" ({parts})" if parts else "")
            + f" lr {lr:.3g} {rate:.2f} samples/s")


def _progress(disable: bool):
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    return Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("loss [magenta]{task.fields[loss]}"), TextColumn("[cyan]{task.fields[rate]}"),
                    TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                    console=console, disable=disable)


# ----------------------------------------------------------------------------- one stage

def check_run_family(run_dir: Path, family: Any) -> None:
    """A run folder holds one family's run: training another family into it (even with
    --resume) would replace its ``best.pt``; refused, as a stage mismatch is."""
    if not run_dir.is_dir():
        return
    others = sorted(d.name for d in run_dir.iterdir()
                    if d.name not in family.stages and (d / ckpts.LAST).is_file())
    if others:
        raise MatteError(f"{run_dir}: holds a training run of stage(s) {', '.join(others)}, not {family.name}'s "
                         f"({', '.join(family.stages)}); train {family.name} into another --out")
    best = run_dir / ckpts.BEST
    if best.is_file():
        held = ckpts.load_training_checkpoint(best).get("family")
        if held != family.name:
            raise MatteError(f"{run_dir}: holds a '{held}' run (its best.pt); training '{family.name}' there "
                             "would replace it: choose another --out")


def run_stage(family: Any, recipe: Mapping[str, Any], stage: str, data_dir: str | os.PathLike,
              val_dir: str | os.PathLike | None, run_dir: str | os.PathLike, ctx: distributed.DistContext,
              resume: bool = False, init_from: Path | None = None, show_progress: bool = True,
              stop_after: int | None = None, print_every: int = 0,
              backbones: Mapping[str, str] | None = None) -> StageResult:
    """Train one stage into RUN/<stage>/; ``stop_after`` ends early at that step (tests use
    it to simulate an interruption: the checkpoint it leaves is the one a kill would).
    ``print_every``: without the progress display, print a loss line every N steps (batch logs).
    ``backbones``: ImageNet files found by :func:`resolve_backbones`, given to a fresh model."""
    flat = stage_recipe(recipe, stage)
    seed = int(flat["seed"])
    sdir = ckpts.stage_dir(run_dir, stage)
    last_path, best_path = sdir / ckpts.LAST, sdir / ckpts.BEST
    device = ctx.device

    # the model, fresh or resumed
    _seed_everything(derive_seed(seed, "init", stage))
    model_config = family.model_config(flat)
    model = family.build_model(model_config)
    state = None
    if resume and last_path.is_file():
        state = ckpts.load_training_checkpoint(last_path)
        ckpts.check_resume_state(last_path, state, family.name, stage)
        changed = resume_differences(stage_recipe(state["recipe"], stage), flat)
        if changed:
            raise MatteError(f"{last_path}: --resume with a different recipe ({'; '.join(changed)}); "
                             "resume with the original values, or start a new --out")
        _restore(last_path, "weights", lambda: model.load_state_dict(state["model"]))
    elif init_from is not None:
        source = ckpts.load_training_checkpoint(init_from)
        theirs = source.get("model_config") or {}
        differ = [f"{k}={theirs.get(k)!r}" for k in sorted(set(model_config) | set(theirs))
                  if k in theirs and theirs[k] != model_config.get(k)]
        if differ and ctx.is_main:
            console.print(f"[yellow]{init_from}[/]: its model config differs ({', '.join(differ)}); this run "
                          "builds the network from the recipe's values")
        load_weights_into(model, source["model"], str(init_from))
    else:
        family.prepare_model(model, {**flat, **(backbones or {})}, stage)
    start_step = int(state["step"]) if state else 0
    iters = int(flat["iters"])

    trainable = list(family.trainable_parameters(model, stage))
    trainable_ids = {id(p) for p in trainable}
    for p in model.parameters():
        p.requires_grad_(id(p) in trainable_ids)
    channels_last = _channels_last(flat, device)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(trainable, flat)
    scheduler = make_scheduler(optimizer, flat)
    amp_dtype, use_scaler = _precision(flat, device)
    scaler = torch.amp.GradScaler("cuda") if use_scaler else None
    best_sad: float | None = None
    if state:
        _restore(last_path, "optimiser state", lambda: optimizer.load_state_dict(state["optimizer"]))
        _restore(last_path, "scheduler state", lambda: scheduler.load_state_dict(state["scheduler"]))
        if scaler is not None and state.get("scaler"):
            _restore(last_path, "grad-scaler state", lambda: scaler.load_state_dict(state["scaler"]))
        best_sad = state.get("best_sad")
    train_model = distributed.wrap(model, ctx)
    if flat["compile"]:
        train_model = torch.compile(train_model)

    # data
    # Each stage draws its own crops and backgrounds; validation stays fixed across stages.
    train_set = family.train_dataset(flat, str(data_dir), derive_seed(seed, "data", stage))
    val_set = family.val_dataset(flat, str(val_dir), seed) if val_dir is not None else None
    batch = int(flat["batch_size"])
    sampler = DistributedSampler(train_set, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True,
                                 seed=derive_seed(seed, "order", stage) % 2**31, drop_last=True)
    steps_per_epoch = len(sampler) // batch
    if steps_per_epoch == 0:
        raise MatteError(f"{data_dir}: {len(train_set)} training sample(s) cannot fill one batch of {batch} "
                         f"on each of {ctx.world_size} process(es)")

    precision = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[amp_dtype]
    if ctx.is_main:
        console.print(f"[bold]{family.name} / {stage}[/]: {device_name(device)}, {precision}"
                      f"{', channels-last' if channels_last else ''}{', compiled' if flat['compile'] else ''}, "
                      f"{ctx.world_size} process(es) x batch {batch}, {len(train_set)} training sample(s)"
                      f"{f', {len(val_set)} validation' if val_set is not None else ', no validation set'}; "
                      f"steps {start_step}/{iters}")
        sdir.mkdir(parents=True, exist_ok=True)
        atomic.remove_stale_temps(sdir)
    log = JsonlLog(sdir / LOG_NAME, resume_step=start_step if state else None) if ctx.is_main else None

    def save_last(step: int, epoch: int) -> None:
        if ctx.is_main:
            ckpts.save_training_checkpoint(
                last_path, family=family.name, model_config=model_config, model=model, optimizer=optimizer,
                scheduler=scheduler, scaler=scaler, step=step, epoch=epoch, stage=stage, recipe=dict(recipe),
                best_sad=best_sad)

    paused = 0.0  # seconds spent validating: not training, so left out of the throughput

    def run_validation(step: int, epoch: int) -> None:
        nonlocal best_sad, paused, window_t
        t0 = time.perf_counter()
        if ctx.is_main and val_set is not None:
            scores = validate(family, model, val_set, stage, device)
            log.write({"kind": "val", "step": step, "epoch": epoch, **scores})
            console.print(f"  validation at step {step}: SAD {scores['sad']:.2f}  MSE {scores['mse']:.4f}  "
                          f"Grad {scores['grad']:.2f}  Conn {scores['conn']:.2f}")
            if best_sad is None or scores["sad"] < best_sad:
                best_sad = scores["sad"]
                ckpts.save_training_checkpoint(
                    best_path, family=family.name, model_config=model_config, model=model, optimizer=optimizer,
                    scheduler=scheduler, scaler=scaler, step=step, epoch=epoch, stage=stage,
                    recipe=dict(recipe), best_sad=best_sad, metrics=scores)
        distributed.barrier(ctx)
        spent = time.perf_counter() - t0
        paused += spent
        window_t += spent

    # the loop
    if state:
        _restore(last_path, "random-generator states", lambda: ckpts.restore_rng(state["rng"]))
    model.train()
    step, end = start_step, iters if stop_after is None else min(iters, stop_after)
    val_every, ckpt_every, log_every = int(flat["val_every"]), int(flat["checkpoint_every"]), int(flat["log_every"])
    clip = float(flat["grad_clip"])
    samples_per_step = batch * ctx.world_size
    t_start = time.perf_counter()
    window_t, window_steps = t_start, 0
    with _progress(disable=not (show_progress and ctx.is_main)) as bar:
        task = bar.add_task(f"{family.name} {stage}", total=iters, completed=step, loss="--", rate="-- samples/s")
        while step < end:
            epoch = step // steps_per_epoch
            sampler.set_epoch(epoch)
            if hasattr(train_set, "set_epoch"):
                train_set.set_epoch(epoch)
            indices = list(sampler)[(step % steps_per_epoch) * batch: steps_per_epoch * batch]
            loader = DataLoader(
                train_set, batch_size=batch, sampler=indices, drop_last=True, num_workers=int(flat["workers"]),
                worker_init_fn=partial(seed_worker, seed, epoch, ctx.rank),
                generator=torch.Generator().manual_seed(derive_seed(seed, "loader", stage, epoch, ctx.rank)),
                pin_memory=device.type == "cuda")
            for item in loader:
                item = to_device(item, device)
                if channels_last:
                    item = {k: v.contiguous(memory_format=torch.channels_last)
                            if torch.is_tensor(v) and v.dim() == 4 and v.is_floating_point() else v
                            for k, v in item.items()}
                with (torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()):
                    try:
                        parts = family.losses(train_model, item, stage)
                    except ValueError as exc:
                        if "more than 1 value per channel" not in str(exc):
                            raise
                        raise MatteError(f"{family.name} {stage}: batch_size {batch} is too small for this network "
                                         "in training (a batch-norm layer sees one value per channel: the pooled "
                                         "1x1 features); give --batch-size 2 or more") from None
                loss = parts["loss"]
                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    if clip > 0:
                        scaler.unscale_(optimizer)
                        torch.nn.utils.clip_grad_norm_(trainable, clip)
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    if not torch.isfinite(loss.detach()).all():
                        raise MatteError(f"{family.name} {stage}: the loss became {loss.item()} at step {step + 1}; "
                                         f"lower lr or resume from {last_path}")
                    loss.backward()
                    if clip > 0:
                        torch.nn.utils.clip_grad_norm_(trainable, clip)
                    optimizer.step()
                scheduler.step()
                step += 1
                window_steps += 1

                log_due = bool(log_every) and (step % log_every == 0 or step == end)
                # the same on every rank, so the all-reduce below runs everywhere or nowhere
                print_due = bool(print_every) and not show_progress and (step % print_every == 0 or step == end)
                if log_due or print_due:
                    values = {k: distributed.all_reduce_mean(v.detach().float(), ctx).item()
                              for k, v in parts.items() if torch.is_tensor(v) and v.numel() == 1}
                    now = time.perf_counter()
                    rate = window_steps * samples_per_step / max(now - window_t, 1e-9)
                    window_t, window_steps = now, 0
                    if log is not None and log_due:
                        log.write({"kind": "train", "step": step, "epoch": epoch, **values,
                                   "lr": optimizer.param_groups[0]["lr"], "samples_per_s": rate})
                    bar.update(task, loss=f"{values['loss']:.4f}", rate=f"{rate:.2f} samples/s")
                    if print_due and ctx.is_main:
                        console.print(loss_line(family.name, stage, step, iters, values,
                                                optimizer.param_groups[0]["lr"], rate), soft_wrap=True, highlight=False)
                bar.update(task, completed=step)
                if val_every and step % val_every == 0 and step < iters:
                    run_validation(step, epoch)
                    model.train()
                if step == iters:
                    run_validation(step, epoch)
                if (ckpt_every and step % ckpt_every == 0) or step == end:
                    save_last(step, step // steps_per_epoch)
                if step >= end:
                    break
    seconds = time.perf_counter() - t_start
    done = step - start_step
    training_seconds = seconds - paused
    samples_per_s = done * samples_per_step / training_seconds if done and training_seconds > 0 else None

    if ctx.is_main:
        if step == iters and val_set is None:
            ckpts.publish_best(last_path, best_path)  # no validation set: the final weights are the best we know
        log.close()
        from mattecli.train.plots import plot_loss_curve

        plot_loss_curve(sdir / LOG_NAME, sdir / "loss.png", title=f"{family.name} / {stage}")
        atomic.write_json(sdir / "summary.json", {
            "family": family.name, "stage": stage, "step": step, "iters": iters, "device": str(device),
            "precision": precision, "world_size": ctx.world_size, "batch_size": batch,
            "seconds_this_run": seconds, "validation_seconds": paused, "samples_per_s": samples_per_s, "best_sad": best_sad})
    distributed.barrier(ctx)
    return StageResult(stage, step, best_path if best_path.is_file() else None,
                       last_path if last_path.is_file() else None, best_sad, samples_per_s, seconds)


# ----------------------------------------------------------------------------- the run

def stage_complete(run_dir: Path, stage: str, recipe: Mapping[str, Any], family_name: str) -> bool:
    last = ckpts.stage_dir(run_dir, stage) / ckpts.LAST
    if not last.is_file():
        return False
    state = ckpts.load_training_checkpoint(last)
    ckpts.check_resume_state(last, state, family_name, stage)
    return int(state["step"]) >= int(stage_recipe(recipe, stage)["iters"])


def imagenet_start(family: Any, recipe: Mapping[str, Any], first: str, run_dir: Path, resume: bool,
                   init_from: Path | None, show_progress: bool = True) -> dict[str, str]:
    """The ImageNet files the first stage starts from when it starts fresh (``{recipe key: path}``),
    found in torch's hub cache or downloaded there, before anything trains; one line when they
    can be neither, or when ``from_scratch`` contradicts another start."""
    flat = stage_recipe(recipe, first)
    slots = tuple(getattr(family, "imagenet_slots", ()))
    for slot in slots:
        check_slot(flat, slot)
    given = [s.flag for s in slots if flat.get(s.weights_key)]
    if flat["from_scratch"] and (given or init_from is not None):
        raise MatteError(f"--from-scratch (recipe key from_scratch) and {' and '.join(given or ['--init-from'])} "
                         "contradict each other: keep one")
    position = family.stages.index(first)
    previous_best = ckpts.stage_dir(run_dir, family.stages[position - 1]) / ckpts.BEST if position else None
    fresh = (init_from is None and not (resume and (ckpts.stage_dir(run_dir, first) / ckpts.LAST).is_file())
             and not (previous_best is not None and previous_best.is_file()))
    return resolve_backbones(flat, slots, progress=show_progress) if fresh and slots else {}


def train(family: TrainingFamily, recipe: Mapping[str, Any], data_dir: str | os.PathLike, run_dir: str | os.PathLike,
          stage: str = "all", val_dir: str | os.PathLike | None = None, resume: bool = False,
          device: str = "auto", show_progress: bool = True, stop_after: int | None = None,
          init_from: str | os.PathLike | None = None, print_every: int = 0) -> TrainResult:
    """Train one stage or all of a family's stages in order, each from the previous one's best.

    ``family`` is the family object itself (``mattecli.families.registry.get_family(name)``
    finds a bundled one): the engine looks nothing up above it. ``init_from``: a mattecli checkpoint of the same family (trained or imported) whose
    weights the first trained stage starts from (not its optimiser state)."""
    if init_from is not None:
        init_from = Path(init_from)
        held = ckpts.load_training_checkpoint(init_from).get("family")
        if held != family.name:
            raise MatteError(f"{init_from}: a '{held}' checkpoint; --init-from needs a '{family.name}' one")
    if stage != "all" and stage not in family.stages:
        raise MatteError(f"--stage {stage}: {family.name} has stages {', '.join(family.stages)} (or all)")
    run_dir = Path(run_dir)
    stages = list(family.stages) if stage == "all" else [stage]
    for name in stages:  # every stage's recipe is checked before the first one trains
        family.model_config(stage_recipe(recipe, name))
    check_run_family(run_dir, family)
    existing = [s for s in family.stages if (ckpts.stage_dir(run_dir, s) / ckpts.LAST).is_file()]
    if not resume and any(s in existing for s in stages):
        raise MatteError(f"{run_dir}: already holds a training run ({', '.join(existing)}); "
                         "add --resume to continue it, or choose another --out")
    backbones = imagenet_start(family, recipe, stages[0], run_dir, resume, init_from, show_progress)
    atomic.ensure_folder(run_dir)  # a file or a read-only folder: one line, before any work
    ctx = distributed.setup(device)
    result = TrainResult(run_dir)
    try:
        for name in stages:
            position = family.stages.index(name)
            previous = family.stages[position - 1] if position > 0 else None
            stage_init = None
            if init_from is not None and name == stages[0]:
                stage_init = init_from
                if resume and (ckpts.stage_dir(run_dir, name) / ckpts.LAST).is_file() and ctx.is_main:
                    console.print(f"[yellow]--init-from {init_from}[/]: stage {name} resumes from its last.pt instead")
            elif previous is not None:
                candidate = ckpts.stage_dir(run_dir, previous) / ckpts.BEST
                if candidate.is_file():
                    stage_init = candidate
                elif ctx.is_main:
                    console.print(f"[yellow]no {candidate}[/]: stage {name} starts from fresh weights")
            if resume and stage_complete(run_dir, name, recipe, family.name):
                if ctx.is_main:
                    console.print(f"{family.name} / {name}: already complete, skipped")
                sdir = ckpts.stage_dir(run_dir, name)
                result.stages.append(StageResult(name, int(stage_recipe(recipe, name)["iters"]),
                                                 sdir / ckpts.BEST if (sdir / ckpts.BEST).is_file() else None,
                                                 sdir / ckpts.LAST, None, None, 0.0))
                continue
            res = run_stage(family, recipe, name, data_dir, val_dir, run_dir, ctx, resume=resume,
                            init_from=stage_init, show_progress=show_progress, stop_after=stop_after,
                            print_every=print_every, backbones=backbones)
            result.stages.append(res)
            if res.steps < int(stage_recipe(recipe, name)["iters"]):
                break  # stopped early (stop_after): later stages wait for a resume
        final = result.stages[-1] if result.stages else None
        if ctx.is_main and final is not None and final.best_path is not None \
                and final.steps >= int(stage_recipe(recipe, final.stage)["iters"]):
            ckpts.publish_best(final.best_path, run_dir / ckpts.BEST)
        distributed.barrier(ctx)
    finally:
        distributed.teardown(ctx)
    return result
