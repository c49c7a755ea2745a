"""How a family's network and training object are found, built and run, whoever asks.

Contract for a family's network (an ``nn.Module``):

- class attribute ``family``: the family name ("dim", "shm", "bgm", "click", ...);
- class attribute ``guidance``: what it needs beside the image: "trimap", "background",
  "clicks" or "none";
- ``predict(image, guidance) -> dict`` in eval mode, where ``image`` is Bx3xHxW float RGB
  in [0, 1] on the model's device and ``guidance`` is a Bx1xHxW trimap in {0, 0.5, 1}, a
  Bx3xHxW background plate in [0, 1], a Bx2xHxW click map (positive, negative) or None.
  It returns ``{"alpha": Bx1xHxW in [0, 1]}`` and optionally ``"fg"`` (Bx3xHxW in [0, 1]).
  ``predict`` does its own normalisation and padding (:mod:`mattecli.tensors`); the
  caller clamps known trimap regions;
- optional class attribute ``size_multiple`` (default 1): the H and W multiple the network
  needs inside ``predict``'s padding, which exported graphs require of their inputs;
- optional ``export_forward(image, guidance) -> dict``: ``predict`` for such sizes with only
  traceable operations, for ``mattecli export`` (docs/families.md, section 6).

A family's ``model.py`` registers a builder with ``@register_family("name")``; the builder
takes the checkpoint's ``model_config`` dict as keyword arguments. Its ``family.py`` defines
``FAMILY``, the :class:`mattecli.train.family.TrainingFamily` object. Both are imported on
first use from ``mattecli/families/<name>/``, so neither the registry nor ``--help`` needs a
list of families: a new folder is a new family.
"""
from __future__ import annotations

import importlib
import os
import pkgutil
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from mattecli.errors import BadInput, MatteError, first_line
from mattecli.io.checkpoint_guard import check_parameters, first_weight_problem, state_dict_problem

GUIDANCE_KINDS = ("trimap", "background", "clicks", "none")

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}
_TRAINING: dict[str, Any] = {}


def family_folders() -> list[str]:
    """Names of the sub-packages of ``mattecli/families`` (each one a family)."""
    here = Path(__file__).resolve().parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.ispkg)


def register_family(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator for a family's model builder (``model_config`` keys as keyword arguments)."""
    def wrap(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _BUILDERS[name] = builder
        return builder
    return wrap


def registered_families() -> list[str]:
    return sorted(set(_BUILDERS) | set(family_folders()))


def _import_part(family: str, part: str) -> None:
    if family in family_folders():
        importlib.import_module(f"mattecli.families.{family}.{part}")


def build_model(family: str, config: dict[str, Any] | None = None) -> nn.Module:
    if not isinstance(family, str) or not family:
        raise MatteError(f"no model family named (got {family!r}; known: {', '.join(registered_families())})")
    if family not in _BUILDERS:
        _import_part(family, "model")
    if family not in _BUILDERS:
        raise MatteError(f"unknown model family '{family}' (known: {', '.join(registered_families())})")
    if config is not None and not isinstance(config, dict):
        raise MatteError(f"model_config of family '{family}' is not a mapping (got {type(config).__name__})")
    try:
        with torch.device("meta"):  # sized first on the meta device: nothing allocated
            model = _BUILDERS[family](**(config or {}))
        problem = check_parameters(family, sum(p.numel() for p in model.parameters()))
        if problem:
            raise MatteError(problem)
        if torch.get_default_device().type != "meta":
            model = _BUILDERS[family](**(config or {}))
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
        raise MatteError(f"model_config does not fit family '{family}': {first_line(exc)}") from None
    if getattr(model, "guidance", None) not in GUIDANCE_KINDS:
        raise MatteError(f"family '{family}' declares no valid guidance kind")
    return model


class RegisteredNetwork:
    """What a training family gives the engine to build its network: the builder registered
    under the family's name (``register_family``), with the registry's size checks."""

    name: str

    def build_model(self, config: dict[str, Any]) -> nn.Module:
        return build_model(self.name, config)


def register_training_family(family: Any) -> None:
    """Register a training-family object directly (tests and plug-ins)."""
    _TRAINING[family.name] = family


def known_families() -> list[str]:
    return sorted(set(_TRAINING) | set(family_folders()))


def get_family(name: str) -> Any:
    """The :class:`mattecli.train.family.TrainingFamily` object of family ``name``."""
    if name in _TRAINING:
        return _TRAINING[name]
    if name not in family_folders():
        raise MatteError(f"unknown training family '{name}' (known: {', '.join(known_families())})")
    module = importlib.import_module(f"mattecli.families.{name}.family")
    family = getattr(module, "FAMILY", None)
    if family is None:
        raise MatteError(f"mattecli.families.{name}.family defines no FAMILY object")
    _TRAINING[name] = family
    return family


def fit_problem(model: nn.Module, state: Any) -> str | None:
    """Why ``state`` cannot load into ``model`` (keys, shapes, dtypes, non-finite values), or None.

    Checked before ``load_state_dict``, whose copy would cast int64, bool or float8 values
    silently (or fail with an attribute error) and load NaN weights that matte garbage.
    """
    if not isinstance(state, dict):
        return f"the weights are a {type(state).__name__}, not a state dict"
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing, e.g. {missing[0]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected, e.g. {str(unexpected[0])[:80]}")
        return "keys do not match: " + "; ".join(parts)
    for name, want in expected.items():
        value = state[name]
        if isinstance(value, torch.Tensor) and tuple(value.shape) != tuple(want.shape):
            return f"size mismatch for {name}: {tuple(value.shape)} in the file, {tuple(want.shape)} in the network"
    return first_weight_problem(state, expected)


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a network from a checkpoint file alone; returns (model in eval mode, checkpoint)."""
    from mattecli.io.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path, map_location="cpu")
    try:
        model = build_model(ckpt["family"], ckpt["model_config"])
    except MatteError as exc:
        raise BadInput(path, str(exc)) from None
    problem = fit_problem(model, ckpt["model"])
    if problem:
        raise BadInput(path, f"weights do not fit the '{ckpt['family']}' network ({problem})")
    try:
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise BadInput(path, f"weights do not fit the '{ckpt['family']}' network ({state_dict_problem(exc)})") from None
    return model.to(device).eval(), ckpt
