"""Checkpoint files: written atomically, read without pickle's code execution.

A checkpoint is a dict of tensors and plain Python values (str, int, float, bool, None,
lists, tuples, dicts). It always has ``family`` (e.g. "dim"), ``model_config`` (the
keyword arguments that rebuild the network) and ``model`` (its state dict), so
``mattecli matte --weights`` can rebuild the network from the file alone.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch

from mattecli.errors import BadInput, CannotWrite, first_line
from mattecli.io import atomic
from mattecli.io.checkpoint_guard import check_container, check_structure

REQUIRED_KEYS = ("family", "model_config", "model")


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    missing = [k for k in REQUIRED_KEYS if k not in payload]
    if missing:
        raise ValueError(f"checkpoint payload lacks {missing}")
    with atomic.atomic_path(path) as tmp:
        try:
            torch.save(payload, tmp)
        except RuntimeError as exc:  # torch's zip writer reports a full disk as an "enforce fail"
            raise CannotWrite(path, _save_failure(tmp, exc)) from None


def _save_failure(tmp: Path, exc: RuntimeError) -> str:
    try:
        if shutil.disk_usage(tmp.parent).free < (1 << 20):
            return "no space left on device"
    except OSError:
        pass
    return f"torch.save failed ({first_line(exc)})"


def load_torch_file(path: str | os.PathLike, what: str, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(weights_only=True)``; any file it cannot read is a one-line BadInput.

    Broad on purpose: a non-torch file fails inside the unpickler with KeyError, IndexError,
    struct.error ... as well as UnpicklingError/RuntimeError, and each should read the same.
    """
    path = Path(path)
    require_file(path, what)
    check_container(path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - see the docstring
        text = str(exc).strip()
        if "Weights only load failed" in text:
            raise BadInput(path, f"refused: loading this {what} would run code from the file "
                                 f"({_unpickler_reason(text)}); mattecli loads only tensors and plain values") from None
        raise BadInput(path, f"not a loadable {what} ({first_line(exc)})") from None
    check_structure(path, payload)
    return payload


def require_file(path: Path, what: str) -> None:
    """A folder or a missing path given where a checkpoint file belongs: one line that says which."""
    if path.is_dir():
        raise BadInput(path, f"is a folder, not a {what} file; give the .pt file inside it (e.g. {path / 'best.pt'})")
    if not path.is_file():
        raise BadInput(path, f"{what} not found")


def _unpickler_reason(text: str) -> str:
    """The one useful clause of torch's long weights-only refusal, e.g. "unsupported GLOBAL posix.system"."""
    for paragraph in text.split("\n\n"):
        line = " ".join(paragraph.split())
        if not line or line.startswith(("Weights only load failed", "Check the documentation")):
            continue
        line = line.split("WeightsUnpickler error:", 1)[-1].strip()
        line = line.removeprefix("Trying to load ").rstrip(".")
        return line[:160]
    return "an object that is not a tensor or a plain value"


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load with ``weights_only=True``: a file that needs arbitrary code is refused."""
    payload = load_torch_file(path, "checkpoint", map_location)
    if not isinstance(payload, dict) or any(k not in payload for k in REQUIRED_KEYS):
        raise BadInput(path, f"not a mattecli checkpoint (needs keys {', '.join(REQUIRED_KEYS)})")
    return payload
