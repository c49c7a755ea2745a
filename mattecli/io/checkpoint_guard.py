"""Bounds on what a checkpoint file may make mattecli read, walk or allocate (docs/limits.md).

A small file can ask for a lot: a deflated zip entry that expands to gigabytes, a pickle of
shared references (``x = [x, x]`` forty times: 2**40 paths through 40 objects), a tensor
whose zero strides make a few bytes on disk look like gigabytes, or a ``model_config``
whose widths make a network of billions of parameters. Every checkpoint reader
(:func:`mattecli.io.checkpoint.load_torch_file`, :func:`mattecli.io.foreign.read_foreign_checkpoint`,
:func:`mattecli.families.registry.build_model`) checks these before it allocates, and
refuses with one line naming the file. Damaged files (a zip entry failing its CRC) are
refused the same way, instead of loading whatever the zeroed bytes decode to.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import torch

from mattecli.errors import BadInput

#: a checkpoint may declare at most this many times its own size once unpacked (torch stores
#: its entries uncompressed, so a real checkpoint is near 1x)
MAX_EXPANSION = 16
#: slack added to the expansion bound, so tiny files with a few small tensors always pass
EXPANSION_SLACK = 64 << 20
#: objects a checkpoint's structure may hold, counting every path to a shared object again
MAX_NODES = 200_000
#: nesting depth of lists, tuples and dicts
MAX_DEPTH = 100
#: parameters of a network any model_config may build (1.2 GB of float32 weights;
#: the largest family default, shm, has 72 M)
MAX_PARAMETERS = 300_000_000
#: what a floating-point weight may be stored as
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def expansion_limit(path: Path) -> int:
    return path.stat().st_size * MAX_EXPANSION + EXPANSION_SLACK


def check_container(path: str | os.PathLike) -> None:
    """Before torch reads a zip checkpoint: declared sizes within bounds, every CRC right."""
    path = Path(path)
    if not zipfile.is_zipfile(path):
        return  # the legacy format is read in place, nothing expands
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            declared = sum(info.file_size for info in infos)
            limit = expansion_limit(path)
            if declared > limit:
                raise BadInput(path, f"its zip entries declare {declared / 1e9:.2f} GB unpacked from a "
                                     f"{path.stat().st_size / 1e6:.1f} MB file (more than {MAX_EXPANSION}x); "
                                     "refused as a decompression bomb")
            bad = archive.testzip()
    except BadInput:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError, ValueError) as exc:
        raise BadInput(path, f"damaged zip container ({exc})") from None
    if bad is not None:
        raise BadInput(path, f"damaged: zip entry {bad!r} fails its CRC check (a corrupted copy?); "
                             "copy or download the file again")


def check_structure(path: str | os.PathLike, obj: Any) -> None:
    """After unpickling, before anything walks the object: bounded size, depth and tensor bytes.

    Walks the object as a tree (a shared object counts once per path to it), stopping at
    :data:`MAX_NODES`; so a pickle of shared references is refused instead of hanging
    whoever walks it next (scrubbing, JSON, printing).
    """
    path = Path(path)
    nodes = 0
    tensor_bytes = 0
    seen_tensors: set[int] = set()
    stack: list[tuple[Any, int]] = [(obj, 0)]
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise BadInput(path, f"its structure holds more than {MAX_NODES:,} objects (counting shared "
                                 "references once per path): refused, a checkpoint is a few thousand")
        if depth > MAX_DEPTH:
            raise BadInput(path, f"its structure nests deeper than {MAX_DEPTH} levels: refused")
        if isinstance(item, torch.Tensor):
            if id(item) not in seen_tensors:
                seen_tensors.add(id(item))
                tensor_bytes += item.numel() * item.element_size()
            continue
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
            stack.extend((k, depth + 1) for k in item.keys() if isinstance(k, (tuple, frozenset)))
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend((v, depth + 1) for v in item)
    limit = expansion_limit(path)
    if tensor_bytes > limit:
        raise BadInput(path, f"its tensors hold {tensor_bytes / 1e9:.2f} GB once expanded from a "
                             f"{path.stat().st_size / 1e6:.1f} MB file (more than {MAX_EXPANSION}x): refused")


def check_parameters(family: str, count: int) -> str | None:
    """The problem with a network of ``count`` parameters, or None."""
    if count > MAX_PARAMETERS:
        return (f"its model_config builds a '{family}' network of {count / 1e6:,.0f} M parameters, above the "
                f"limit of {MAX_PARAMETERS / 1e6:,.0f} M; refused before allocating")
    return None


def weight_problem(name: str, value: Any, expected: torch.Tensor) -> str | None:
    """Why a stored weight cannot stand for the network's ``expected`` tensor, or None.

    Floating-point weights must be stored as float16/bfloat16/float32/float64 and be finite;
    integer buffers (batch-norm's counter) as integers. A silent cast of int64, bool, complex
    or float8 values, or NaN weights, would make a network that mattes garbage.
    """
    if not isinstance(value, torch.Tensor):
        return f"{name} is a {type(value).__name__}, not a tensor"
    if expected.is_floating_point():
        if value.dtype not in FLOAT_DTYPES:
            return f"{name} is stored as {value.dtype}; floating-point weights must be float16, bfloat16, float32 or float64"
        if value.numel() and not bool(torch.isfinite(value).all()):
            return f"{name} holds NaN or infinite values"
    elif value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
        return f"{name} is stored as {value.dtype}; the network keeps it as {expected.dtype}"
    return None


def first_weight_problem(state: dict, expected: dict) -> str | None:
    for name, want in expected.items():
        if name in state:
            problem = weight_problem(name, state[name], want)
            if problem:
                return problem
    return None


def state_dict_problem(exc: BaseException) -> str:
    """The first concrete line of a ``load_state_dict`` error (torch's first line is only a heading)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    detail = [ln for ln in lines if not ln.startswith("Error(s) in loading")]
    return ((detail or lines or [type(exc).__name__])[0])[:200]
