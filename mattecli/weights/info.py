"""What a checkpoint is: ``mattecli weights info`` (family, stage, recipe, metrics, provenance)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from mattecli.errors import BadInput, MatteError
from mattecli.backbones.imagenet import file_name
from mattecli.families.registry import build_model, fit_problem, get_family
from mattecli.io.checkpoint import load_checkpoint
from mattecli.io.foreign import file_sha256


def training_start(family: str, recipe: dict[str, Any]) -> str:
    """What the run's first fresh stage started from: ImageNet files, or from scratch (--from-scratch)."""
    if recipe.get("from_scratch"):
        return "from scratch (--from-scratch): the network's own initialisation"
    try:
        slots = getattr(get_family(family), "imagenet_slots", ())
    except MatteError:
        slots = ()
    files = [str(recipe[s.weights_key]) if recipe.get(s.weights_key) else file_name(recipe[s.url_key])
             for s in slots if recipe.get(s.weights_key) or recipe.get(s.url_key)]
    if files:
        return "ImageNet: " + ", ".join(files)
    return "the network's own initialisation (the recipe names no ImageNet file)"


def checkpoint_info(path: str | os.PathLike) -> dict[str, Any]:
    """A JSON-ready summary of a mattecli checkpoint."""
    path = Path(path)
    ckpt = load_checkpoint(path)
    try:
        with torch.device("meta"):  # names and shapes only: nothing allocated
            model = build_model(ckpt["family"], ckpt["model_config"])
    except MatteError as exc:
        raise BadInput(path, str(exc)) from None
    problem = fit_problem(model, ckpt["model"])
    if problem:
        raise BadInput(path, f"weights do not fit the '{ckpt['family']}' network ({problem})")
    names = {name for name, _ in model.named_parameters()}
    parameters = sum(int(v.numel()) for k, v in ckpt["model"].items() if hasattr(v, "numel") and k in names)
    source = ckpt.get("source")
    if isinstance(source, dict):
        provenance = {"origin": "imported", **{k: source.get(k) for k in ("format", "file", "sha256")}}
    else:
        provenance = {"origin": "trained here" if ckpt.get("step") is not None else "unknown"}
    recipe = ckpt.get("recipe")
    return {
        "file": str(path),
        "sha256": file_sha256(path),
        "family": ckpt["family"],
        "stage": ckpt.get("stage"),
        "guidance": model.guidance,
        "size_multiple": int(getattr(model, "size_multiple", 1) or 1),
        "model_config": ckpt["model_config"],
        "steps_trained": ckpt.get("step"),
        "epoch": ckpt.get("epoch"),
        "validation": ckpt.get("metrics"),
        "best_sad": ckpt.get("best_sad"),
        "recipe": recipe if isinstance(recipe, dict) else None,
        "start": training_start(ckpt["family"], recipe) if isinstance(recipe, dict) else None,
        "parameters": parameters,
        "tensors": len(ckpt["model"]),
        "provenance": provenance,
        "notes": ckpt.get("import_notes") or [],
        "resumable": "optimizer" in ckpt,
    }
