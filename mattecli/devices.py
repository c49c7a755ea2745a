"""Which torch device a ``--device`` flag means, and how to name it in a run's summary line.

One place for every command (matte, predict, train), so ``auto``/``cpu``/``cuda``/``cuda:N``
mean the same everywhere and a missing GPU is one clear line, not a CUDA traceback.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from mattecli.errors import MatteError

if TYPE_CHECKING:  # imported on use: `matte` with the classical method never needs torch
    import torch

#: specs that resolve without asking torch whether CUDA exists only once a device is used
LAZY_SPECS = ("auto", "cpu", "")


def resolve_device(spec: str, local_rank: int = 0) -> torch.device:
    """``cpu``, ``cuda``, ``cuda:N`` or ``auto``; a clear error when CUDA is asked for and absent.

    Plain ``cuda`` picks the GPU of this torchrun process (``local_rank`` modulo the count).
    """
    import torch

    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise MatteError(f"--device {spec}: CUDA is not available on this machine (use --device cpu)")
        if spec == "cuda":
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        try:
            index = int(spec.split(":", 1)[1])
        except (IndexError, ValueError):
            raise MatteError(f"--device {spec}: expected cpu, cuda or cuda:N") from None
        if not 0 <= index < torch.cuda.device_count():
            raise MatteError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) present")
        return torch.device("cuda", index)
    if spec == "cpu":
        return torch.device("cpu")
    raise MatteError(f"--device {spec}: expected cpu, cuda, cuda:N or auto")


def device_name(device: torch.device) -> str:
    """``cuda:0 (NVIDIA H100 ...)`` or ``cpu (N threads)``: what a run's summary line shows."""
    import torch

    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"
