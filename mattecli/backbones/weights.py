"""Reading ImageNet state dicts for the backbones, and the report of what was loaded."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

from mattecli.errors import BadInput
from mattecli.io.checkpoint import load_torch_file


@dataclass
class LoadReport:
    """What :func:`load_imagenet_vgg16` did, for the user to read."""

    loaded: list[str] = field(default_factory=list)       # file keys copied into the encoder
    skipped: list[str] = field(default_factory=list)      # file keys with no place in the encoder
    not_in_file: list[str] = field(default_factory=list)  # encoder tensors left at their init

    def summary(self) -> str:
        parts = [f"loaded {len(self.loaded)} tensors"]
        if self.skipped:
            parts.append(f"skipped {len(self.skipped)} ({_abbreviate(self.skipped)})")
        if self.not_in_file:
            parts.append(f"kept initialised: {_abbreviate(self.not_in_file)}")
        return "; ".join(parts)


def _abbreviate(keys: list[str], limit: int = 4) -> str:
    layers = list(dict.fromkeys(k.rsplit(".", 1)[0] for k in keys))
    shown = ", ".join(layers[:limit])
    return shown + (f", ... ({len(layers) - limit} more)" if len(layers) > limit else "")


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict from a file, loaded without pickle code execution (``weights_only=True``).

    Accepts a bare state dict or one nested under ``state_dict``/``model``, with an
    optional ``module.`` prefix (DataParallel saves).
    """
    obj = load_torch_file(path, "backbone weights file")
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise BadInput(path, "not a state dict (expected a mapping of names to tensors)")
    return {k.removeprefix("module."): v for k, v in obj.items()}
