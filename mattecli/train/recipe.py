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
import difflib
import math
import os
import tomllib
from pathlib import Path
from typing import Any, Iterable, Mapping

from mattecli.errors import BadInput, MatteError
from mattecli.io.images import max_pixels

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


def _nested(dotted: str) -> dict[str, Any]:
    """``stages.e2e.lr`` -> ``{"stages": {"e2e": {"lr": None}}}``: an assignment's key as a recipe, for checking."""
    parts = dotted.split(".")
    node: dict[str, Any] = {parts[-1]: None}
    for part in reversed(parts[:-1]):
        node = {part: node}
    return node


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
    if not _number(flat["lr"]) or not flat["lr"] > 0:
        raise MatteError(f"recipe key lr = {flat['lr']!r}: expected a positive finite number")
    for key in ("weight_decay", "grad_clip", "momentum", "lr_power"):
        if not _number(flat[key]) or not flat[key] >= 0:
            raise MatteError(f"recipe key {key} = {flat[key]!r}: expected a finite number >= 0")
    check_sizes(flat)
    if not isinstance(flat["from_scratch"], bool):
        raise MatteError(f"recipe key from_scratch = {flat['from_scratch']!r}: expected true or false")
    betas = flat["betas"]
    if (not isinstance(betas, (list, tuple)) or len(betas) != 2
            or not all(_number(b) and 0 <= b < 1 for b in betas)):
        raise MatteError(f"recipe key betas = {betas!r}: expected [beta1, beta2], each in [0, 1)")


def _number(value: Any) -> bool:
    """A finite int or float (NaN and infinities would train silently into NaN weights)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


#: image-size keys end so (``input_size``, ``tnet_crop``, ``crop_sizes`` ...); ``batch_size`` is a count
_SIZE_SUFFIXES = ("_size", "_sizes", "_crop", "_crops")


def check_sizes(flat: Mapping[str, Any]) -> None:
    """A sample side whose square passes the pixel limit is refused before a loader worker tries
    to allocate it (``--set input_size=100000`` asked for 30 GB in a worker)."""
    limit = max_pixels()
    for key, value in flat.items():
        if key == "batch_size" or not key.endswith(_SIZE_SUFFIXES):
            continue
        for side in value if isinstance(value, (list, tuple)) else [value]:
            if _number(side) and side * side > limit:
                raise MatteError(f"recipe key {key} = {value!r}: a {side}x{side} sample is "
                                 f"{side * side / 1e6:,.0f} megapixels, above --max-pixels {limit}; give a smaller size")


#: keys every recipe may hold beside the engine's (data options the families share, and bookkeeping)
SHARED_KEYS = frozenset({"family", "stage", "stages", "backgrounds", "check_files", "names", "backbone_weights"})


def known_keys(family: Any) -> frozenset[str]:
    """Keys a recipe of ``family`` may set: the engine's, the shared ones, every key of the family's
    bundled recipes (recipes/<family>*.toml, stage tables included) and its ``recipe_keys``."""
    keys = set(ENGINE_DEFAULTS) | SHARED_KEYS | set(getattr(family, "recipe_keys", ()))
    for path in RECIPES_DIR.glob(f"{family.name}*.toml"):
        try:
            bundled = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue
        if bundled.get("family", family.name) != family.name:
            continue
        keys |= set(bundled)
        keys |= {k for table in (bundled.get("stages") or {}).values() if isinstance(table, dict) for k in table}
    return frozenset(keys)


def _nearest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def check_keys(recipe: Mapping[str, Any], family: Any, source: str) -> None:
    """Refuse an unknown key or stage, naming where it came from and the nearest valid one."""
    keys = known_keys(family)
    for key in recipe:
        if key not in keys:
            raise MatteError(f"{source}: unknown recipe key '{key}' for {family.name}{_nearest(key, keys)}")
    stages = recipe.get("stages") or {}
    if not isinstance(stages, dict):
        raise MatteError(f"{source}: 'stages' must be a table of [stages.<name>] tables")
    for stage, table in stages.items():
        if stage not in family.stages:
            raise MatteError(f"{source}: unknown stage 'stages.{stage}' for {family.name} (stages: "
                             f"{', '.join(family.stages)}){_nearest(stage, family.stages)}")
        if not isinstance(table, dict):
            raise MatteError(f"{source}: 'stages.{stage}' must be a table")
        for key in table:
            if key not in keys:
                raise MatteError(f"{source}: unknown recipe key 'stages.{stage}.{key}' for {family.name}"
                                 f"{_nearest(key, keys)}")


#: Keys a resumed run may change without changing the weights it reaches (bookkeeping and
#: speed). ``iters`` may grow only under a constant learning rate: other schedules depend on it.
RESUME_FREE_KEYS = frozenset({"iters", "val_every", "checkpoint_every", "log_every", "workers", "compile",
                              "channels_last"})


def resume_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """``key: old -> new`` for every setting a resumed stage changes that matters to its result."""
    free = RESUME_FREE_KEYS if current.get("lr_schedule") == "constant" else RESUME_FREE_KEYS - {"iters"}
    return [f"{key}: {saved.get(key)!r} -> {current.get(key)!r}" for key in sorted(set(saved) | set(current))
            if key not in free and saved.get(key) != current.get(key)]


def build_recipe(recipe_name: str, assignments: list[str], flags: Mapping[str, Any], family: Any = None,
                 notes: list[str] | None = None) -> dict[str, Any]:
    """The recipe file, then ``key=value`` assignments, then named settings (which win, in every
    stage table too): what ``mattecli train`` runs with, for library callers as well.

    With ``family`` (a training-family object), every key of the file and of the assignments
    must be one the family knows (:func:`check_keys`), and a top-level assignment of a key
    that stage tables set too applies to those stages as well (a line saying so goes to
    ``notes``): a global ``--set lr=...`` is never silently overridden by a stage's own value.
    """
    base = load_recipe(recipe_name)
    if family is not None:
        check_keys(base, family, str(find_recipe(recipe_name)))
    recipe = copy.deepcopy(dict(base))
    for item in assignments:  # in order: a later stages.<stage>.key=... wins over an earlier global key=...
        recipe = apply_overrides(recipe, [item])
        key = item.partition("=")[0].strip()
        if family is not None:
            check_keys(_nested(key), family, f"--set {item}")
        if "." in key:
            continue
        overridden = [name for name, table in (recipe.get("stages") or {}).items()
                      if isinstance(table, dict) and key in table]
        for name in overridden:
            recipe["stages"][name][key] = recipe[key]
        if overridden and notes is not None:
            notes.append(f"--set {item} also replaces the {key} of stage(s) {', '.join(overridden)} "
                         f"(use --set stages.<stage>.{key}=... for one stage)")
    for key, value in flags.items():
        if value is None:
            continue
        recipe[key] = value
        for table in (recipe.get("stages") or {}).values():
            if isinstance(table, dict) and key in table:
                table[key] = value
    flat_top = dict(ENGINE_DEFAULTS)
    flat_top.update({k: v for k, v in recipe.items() if k != "stages"})
    check_recipe(flat_top)  # top-level values too, even where every stage overrides them
    return recipe
