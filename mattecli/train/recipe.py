"""Training recipes: TOML files whose every key can be overridden from the command line.

A recipe is flat: engine keys (``lr``, ``batch_size``, ``iters``, ``val_every`` ...) and the
family's keys (``conv6``, ``crop_sizes`` ...) live side by side at the top level, and a
``[stages.<name>]`` table overrides any of them for one stage (e.g. a different ``iters``).
Overrides use dotted keys, so ``--set lr=1e-4`` and ``--set stages.refine.iters=500`` both
work; values are parsed as TOML (``1e-4``, ``[320, 480]``, ``true``), and anything that is
not valid TOML is taken as a string (``--set conv6=3x3``).
"""
from __future__ import annotations

import copy
import os
import tomllib
from pathlib import Path
from typing import Any, Iterable, Mapping

from mattecli.errors import BadInput, MatteError

#: where bundled recipes live (the repository's ``recipes/`` folder)
RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"

#: engine keys and their defaults; a recipe may leave any of them out
ENGINE_DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "optimizer": "adam",          # adam | adamw | sgd
    "lr": 1e-5,
    "betas": [0.9, 0.999],
    "momentum": 0.9,              # sgd only
    "weight_decay": 0.0,
    "lr_schedule": "constant",    # constant | poly | cosine
    "lr_power": 0.9,              # poly only
    "grad_clip": 0.0,             # max gradient norm; 0 = off
    "batch_size": 1,
    "workers": 0,
    "iters": 1000,
    "val_every": 0,               # 0 = validate only at the end of the stage
    "checkpoint_every": 1000,
    "log_every": 1,
    "amp": "none",                # none | bf16 | fp16 (CUDA; bf16 also on CPU)
    "channels_last": "auto",      # auto = on for CUDA
    "compile": False,
    "from_scratch": False,        # true: no ImageNet start even where the recipe names one (--from-scratch)
}

_OPTIONS = {
    "optimizer": ("adam", "adamw", "sgd"),
    "lr_schedule": ("constant", "poly", "cosine"),
    "amp": ("none", "bf16", "fp16"),
}


def find_recipe(name_or_path: str | os.PathLike) -> Path:
    """A path as given, or a bundled recipe by name (``dim`` -> recipes/dim.toml)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    bundled = RECIPES_DIR / f"{name_or_path}.toml"
    if bundled.is_file():
        return bundled
    raise BadInput(name_or_path, "recipe not found (give a TOML path or a name from recipes/: "
                   + ", ".join(sorted(p.stem for p in RECIPES_DIR.glob("*.toml"))) + ")")


def load_recipe(name_or_path: str | os.PathLike) -> dict[str, Any]:
    path = find_recipe(name_or_path)
    try:
        recipe = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BadInput(path, f"not a valid TOML recipe ({exc})") from None
    return recipe


def parse_value(text: str) -> Any:
    """A TOML value (number, bool, array, quoted string); otherwise the text itself."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(recipe: Mapping[str, Any], assignments: Iterable[str]) -> dict[str, Any]:
    """A copy of ``recipe`` with each ``dotted.key=value`` applied in order."""
    out = copy.deepcopy(dict(recipe))
    for item in assignments:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise MatteError(f"--set expects key=value, got '{item}'")
        set_key(out, key, parse_value(value.strip()))
    return out


def set_key(recipe: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = recipe
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise MatteError(f"cannot set '{dotted}': '{part}' is a value, not a table")
        node = child
    node[parts[-1]] = value


def stage_recipe(recipe: Mapping[str, Any], stage: str) -> dict[str, Any]:
    """The flat recipe one stage runs with: defaults < top level < ``[stages.<stage>]``.

    The result carries ``stage`` so the family can read it (e.g. in ``model_config``).
    """
    flat = dict(ENGINE_DEFAULTS)
    flat.update({k: v for k, v in recipe.items() if k != "stages"})
    flat.update(dict((recipe.get("stages") or {}).get(stage) or {}))
    flat["stage"] = stage
    check_recipe(flat)
    return flat


def check_recipe(flat: Mapping[str, Any]) -> None:
    """Reject values the engine cannot run, with the key named."""
    for key, allowed in _OPTIONS.items():
        if flat[key] not in allowed:
            raise MatteError(f"recipe key {key} = {flat[key]!r}: expected one of {', '.join(allowed)}")
    for key in ("batch_size", "iters"):
        if not isinstance(flat[key], int) or isinstance(flat[key], bool) or flat[key] < 1:
            raise MatteError(f"recipe key {key} = {flat[key]!r}: expected a positive integer")
    for key in ("workers", "val_every", "checkpoint_every", "log_every"):
        if not isinstance(flat[key], int) or isinstance(flat[key], bool) or flat[key] < 0:
            raise MatteError(f"recipe key {key} = {flat[key]!r}: expected an integer >= 0")
    if not _number(flat["lr"]) or flat["lr"] <= 0:
        raise MatteError(f"recipe key lr = {flat['lr']!r}: expected a positive number")
    for key in ("weight_decay", "grad_clip", "momentum", "lr_power"):
        if not _number(flat[key]) or flat[key] < 0:
            raise MatteError(f"recipe key {key} = {flat[key]!r}: expected a number >= 0")
    if not isinstance(flat["from_scratch"], bool):
        raise MatteError(f"recipe key from_scratch = {flat['from_scratch']!r}: expected true or false")
    betas = flat["betas"]
    if (not isinstance(betas, (list, tuple)) or len(betas) != 2
            or not all(_number(b) and 0 <= b < 1 for b in betas)):
        raise MatteError(f"recipe key betas = {betas!r}: expected [beta1, beta2], each in [0, 1)")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


#: Keys a resumed run may change without changing the weights it reaches (bookkeeping and
#: speed). ``iters`` may grow only under a constant learning rate: other schedules depend on it.
RESUME_FREE_KEYS = frozenset({"iters", "val_every", "checkpoint_every", "log_every", "workers", "compile",
                              "channels_last"})


def resume_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """``key: old -> new`` for every setting a resumed stage changes that matters to its result."""
    free = RESUME_FREE_KEYS if current.get("lr_schedule") == "constant" else RESUME_FREE_KEYS - {"iters"}
    return [f"{key}: {saved.get(key)!r} -> {current.get(key)!r}" for key in sorted(set(saved) | set(current))
            if key not in free and saved.get(key) != current.get(key)]


def build_recipe(recipe_name: str, assignments: list[str], flags: Mapping[str, Any]) -> dict[str, Any]:
    """The recipe file, then ``key=value`` assignments, then named settings (which win, in every
    stage table too): what ``mattecli train`` runs with, for library callers as well."""
    recipe = apply_overrides(load_recipe(recipe_name), assignments)
    for key, value in flags.items():
        if value is None:
            continue
        recipe[key] = value
        for table in (recipe.get("stages") or {}).values():
            if isinstance(table, dict) and key in table:
                table[key] = value
    return recipe
