"""Checkpoint files: written atomically, read without pickle's code execution.

A checkpoint is a dict of tensors and plain Python values (str, int, float, bool, None,
lists, tuples, dicts). It always has ``family`` (e.g. "dim"), ``model_config`` (the
keyword arguments that rebuild the network) and ``model`` (its state dict), so
``mattecli matte --weights`` can rebuild the network from the file alone.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch

from mattecli.errors import BadInput
from mattecli.io import atomic

REQUIRED_KEYS = ("family", "model_config", "model")


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    missing = [k for k in REQUIRED_KEYS if k not in payload]
    if missing:
        raise ValueError(f"checkpoint payload lacks {missing}")
    with atomic.atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load with ``weights_only=True``: a file that needs arbitrary code is refused."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(path, "checkpoint not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadInput(path, f"not a loadable mattecli checkpoint ({first[:160]})") from None
    if not isinstance(payload, dict) or any(k not in payload for k in REQUIRED_KEYS):
        raise BadInput(path, f"not a mattecli checkpoint (needs keys {', '.join(REQUIRED_KEYS)})")
    return payload
