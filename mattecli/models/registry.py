"""How a family's network is found, built and run, whoever asks (training, matte, eval).

Contract for a family's network (an ``nn.Module``):

- class attribute ``family``: the family name ("dim", "shm", "bgm", "click", ...);
- class attribute ``guidance``: what it needs beside the image: "trimap", "background",
  "clicks" or "none";
- ``predict(image, guidance) -> dict`` in eval mode, where ``image`` is Bx3xHxW float RGB
  in [0, 1] on the model's device and ``guidance`` is a Bx1xHxW trimap in {0, 0.5, 1}, a
  Bx3xHxW background plate in [0, 1], a Bx2xHxW click map (positive, negative) or None.
  It returns ``{"alpha": Bx1xHxW in [0, 1]}`` and optionally ``"fg"`` (Bx3xHxW in [0, 1]).
  ``predict`` does its own normalisation and padding (``mattecli.inference.padding``); the
  caller clamps known trimap regions.

A family registers a builder with ``@register_family("name")``; the builder takes the
checkpoint's ``model_config`` dict as keyword arguments. ``build_model`` imports
``mattecli.models.<name>`` on first use, so the registry needs no list of families.
"""
from __future__ import annotations

import importlib
import os
from typing import Any, Callable

import torch
from torch import nn

from mattecli.errors import BadInput, MatteError
from mattecli.io.checkpoint import load_checkpoint

GUIDANCE_KINDS = ("trimap", "background", "clicks", "none")

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}


def register_family(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def wrap(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _BUILDERS[name] = builder
        return builder
    return wrap


def registered_families() -> list[str]:
    return sorted(_BUILDERS)


def build_model(family: str, config: dict[str, Any] | None = None) -> nn.Module:
    if family not in _BUILDERS:
        try:
            importlib.import_module(f"mattecli.models.{family}")
        except ModuleNotFoundError:
            pass
    if family not in _BUILDERS:
        raise MatteError(f"unknown model family '{family}' (known: {', '.join(registered_families()) or 'none'})")
    model = _BUILDERS[family](**(config or {}))
    if getattr(model, "guidance", None) not in GUIDANCE_KINDS:
        raise MatteError(f"family '{family}' declares no valid guidance kind")
    return model


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a network from a checkpoint file alone; returns (model in eval mode, checkpoint)."""
    ckpt = load_checkpoint(path, map_location="cpu")
    model = build_model(str(ckpt["family"]), dict(ckpt["model_config"]))
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise BadInput(path, f"weights do not fit the '{ckpt['family']}' network ({str(exc).splitlines()[0][:160]})") from None
    return model.to(device).eval(), ckpt
