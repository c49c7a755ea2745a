"""Training checkpoints: everything ``--resume`` needs to continue bit for bit.

A training checkpoint is a regular mattecli checkpoint (``family``, ``model_config``,
``model``: enough for ``mattecli matte --weights``) plus the optimiser, scheduler and
grad-scaler states, the step and epoch, the recipe, the stage, and the RNG states of
torch, NumPy and Python's ``random``. NumPy's and Python's states are stored as plain
ints and lists so the file loads with ``weights_only=True``.
"""
from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mattecli.errors import BadInput
from mattecli.io import atomic
from mattecli.io.checkpoint import load_checkpoint, save_checkpoint

LAST, BEST = "last.pt", "best.pt"


def capture_rng() -> dict[str, Any]:
    """The state of every random generator the loop touches, as tensors and plain values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": [int(k) for k in keys], "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": [int(py_version), [int(v) for v in py_state], py_gauss],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], np.array(n["keys"], dtype=np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    version, values, gauss = state["python"]
    random.setstate((version, tuple(values), gauss))
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module under DistributedDataParallel and torch.compile wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def save_training_checkpoint(path: str | os.PathLike, *, family: str, model_config: dict[str, Any],
                             model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                             scheduler: Any, scaler: Any, step: int, epoch: int, stage: str,
                             recipe: dict[str, Any], best_sad: float | None,
                             metrics: dict[str, float] | None = None) -> None:
    payload = {
        "family": family,
        "model_config": model_config,
        "model": {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "step": int(step),
        "epoch": int(epoch),
        "stage": stage,
        "recipe": recipe,
        "best_sad": best_sad,
        "metrics": metrics,
        "rng": capture_rng(),
    }
    save_checkpoint(path, payload)


def load_training_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint loaded with ``weights_only=True`` (see mattecli.io.checkpoint)."""
    return load_checkpoint(path, map_location="cpu")


RESUME_KEYS = {"step": int, "epoch": int, "stage": str, "recipe": dict, "optimizer": dict, "scheduler": dict,
               "rng": dict}


def check_resume_state(path: str | os.PathLike, state: dict[str, Any], family: str, stage: str) -> None:
    """Refuse, in one line naming the file, a ``last.pt`` that ``--resume`` cannot continue:
    another family's or stage's run, or a state with missing or malformed parts."""
    if state.get("family") != family or state.get("stage") != stage:
        raise BadInput(path, f"holds a '{state.get('family')}' run of stage '{state.get('stage')}', not "
                             f"'{family}' stage '{stage}'; resume it with its own command, or choose another --out")
    for key, kind in RESUME_KEYS.items():
        if not isinstance(state.get(key), kind) or kind is int and isinstance(state.get(key), bool):
            got = "missing" if key not in state else f"a {type(state[key]).__name__}"
            raise BadInput(path, f"not a resumable training checkpoint: '{key}' is {got}, expected a {kind.__name__}")
    if state["step"] < 0:
        raise BadInput(path, f"not a resumable training checkpoint: step {state['step']} is negative")
    optimizer = state["optimizer"]
    if not isinstance(optimizer.get("state"), dict) or not isinstance(optimizer.get("param_groups"), list) \
            or not optimizer["param_groups"]:
        raise BadInput(path, "not a resumable training checkpoint: the optimiser state is empty or malformed")
    rng = state["rng"]
    if not isinstance(rng.get("torch"), torch.Tensor) or not isinstance(rng.get("numpy"), dict) \
            or not isinstance(rng.get("python"), (list, tuple)):
        raise BadInput(path, "not a resumable training checkpoint: its random-generator states are missing "
                             "or malformed (needed to continue bit for bit)")


def publish_best(stage_best: str | os.PathLike, run_best: str | os.PathLike) -> None:
    """Copy a stage's best checkpoint to RUN/best.pt (a copy, not a link: runs get moved)."""
    with atomic.atomic_path(run_best) as tmp:
        shutil.copyfile(stage_best, tmp)


def stage_dir(run_dir: str | os.PathLike, stage: str) -> Path:
    return Path(run_dir) / stage
