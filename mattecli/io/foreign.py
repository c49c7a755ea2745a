"""Foreign checkpoints (mmagic, mmediting, official repos): read without executing them.

Those files are full pickles: beside the tensors they carry ``meta`` objects (mmengine
configs and message hubs, NumPy scalars, ...), so ``torch.load(weights_only=True)`` refuses
them and plain ``torch.load`` would run whatever they name. :func:`read_foreign_checkpoint`
unpickles through a restricted unpickler instead: tensors, storages, ``OrderedDict`` and
plain containers and values are rebuilt; any other global a pickle names (``os.system``,
``mmengine.config.ConfigDict``, ``numpy.dtype`` ...) is replaced by an inert placeholder
that cannot run anything, and is reported as dropped. torch's own loader still reads the
container (zip or legacy format) and the storages; only the unpickler is ours.

:class:`StateMapper` is what a family's converter (``families/<name>/weights.py``) uses to
rename a foreign state dict into its own network, failing with the keys it could not place.
"""
from __future__ import annotations

import collections
import hashlib
import io
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch
from torch import nn

from mattecli.errors import BadInput, MatteError, first_line
from mattecli.io.checkpoint import require_file
from mattecli.io.checkpoint_guard import check_container, check_structure, first_weight_problem

#: (module, name) pairs a checkpoint may name; every one only builds data.
_ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset({
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_tensor_v3"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch._utils", "_rebuild_qtensor"),
    ("torch._utils", "_rebuild_sparse_tensor"),
    ("torch.nn.parameter", "Parameter"),
    ("torch", "Size"),
    ("torch", "device"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "slice"),
    ("builtins", "complex"),
    ("builtins", "bytearray"),
})
_DTYPE_NAMES = frozenset(name for name in dir(torch) if isinstance(getattr(torch, name, None), torch.dtype))


class Dropped:
    """Stands in for an object of a class the restricted unpickler does not rebuild.

    Calling it, constructing it or setting its state does nothing, so a pickle that names
    ``os.system`` gets a harmless placeholder where the call would have been.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, *args: Any, **kwargs: Any) -> "Dropped":
        return Dropped(self.name)

    def __setstate__(self, state: Any) -> None:  # BUILD on a placeholder: ignore the state
        pass

    def __setitem__(self, key: Any, value: Any) -> None:  # SETITEM(S) on a dropped mapping
        pass

    def append(self, value: Any) -> None:  # APPEND(S) on a dropped list
        pass

    def extend(self, values: Iterable[Any]) -> None:
        pass

    def __repr__(self) -> str:
        return f"<dropped {self.name}>"


def _placeholder_class(full: str) -> type:
    """What ``find_class`` returns for a refused global: calling it (REDUCE), ``__new__``
    (NEWOBJ) and ``__setstate__`` (BUILD) all just make an inert :class:`Dropped`."""

    class Placeholder(Dropped):
        def __new__(cls, *args: Any, **kwargs: Any) -> "Placeholder":
            return object.__new__(cls)

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.name = full

    Placeholder.__name__ = Placeholder.__qualname__ = f"Dropped[{full}]"
    return Placeholder


class _RestrictedUnpickler(pickle.Unpickler):
    dropped: list[str]

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS or (module == "torch" and name in _DTYPE_NAMES):
            return super().find_class(module, name)
        full = f"{module}.{name}"
        self.dropped.append(full)
        return _placeholder_class(full)


class _RestrictedPickleModule:
    """The ``pickle_module`` handed to ``torch.load``: its ``Unpickler`` and ``load`` refuse globals.

    torch derives its own unpickler from ``pickle_module.Unpickler`` (to resolve storages
    and renamed modules) and calls ``pickle_module.load`` for the legacy format's header;
    both end in :meth:`_RestrictedUnpickler.find_class`.
    """

    def __init__(self) -> None:
        self.dropped: list[str] = []
        log = self.dropped

        class Unpickler(_RestrictedUnpickler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self.dropped = log

        self.Unpickler = Unpickler
        self.UnpicklingError = pickle.UnpicklingError
        self.__name__ = "mattecli_restricted_pickle"

    def load(self, file: Any, **kwargs: Any) -> Any:
        return self.Unpickler(file, **kwargs).load()

    def loads(self, data: bytes, **kwargs: Any) -> Any:
        return self.load(io.BytesIO(data), **kwargs)


@dataclass
class ForeignCheckpoint:
    """What was read: the whole object (placeholders replaced by ``None``) and the notes."""

    path: Path
    payload: Any
    dropped: list[str] = field(default_factory=list)  # globals that were not rebuilt, in order
    sha256: str = ""

    def notes(self) -> list[str]:
        names = list(dict.fromkeys(self.dropped))
        if not names:
            return []
        shown = ", ".join(names[:6]) + (f", ... ({len(names) - 6} more)" if len(names) > 6 else "")
        return [f"dropped {len(names)} kind(s) of non-tensor object(s) the file names: {shown}"]


def _scrub(obj: Any, memo: dict[int, Any], depth: int = 0) -> Any:
    """Replace placeholders by None, Parameters by plain tensors, all the way down.

    ``memo`` maps each container already scrubbed to its copy, so shared references stay
    shared (and are walked once) and a cycle ends (:func:`check_structure` bounds the rest).
    """
    if depth > 64:
        return None
    if isinstance(obj, (Dropped, type)):
        return None
    if isinstance(obj, nn.Parameter):
        return obj.detach()
    if not isinstance(obj, (dict, list, tuple, set, frozenset)):
        return obj
    if id(obj) in memo:
        return memo[id(obj)]
    if isinstance(obj, dict):
        out: Any = collections.OrderedDict() if isinstance(obj, collections.OrderedDict) else {}
        memo[id(obj)] = out
        for k, v in obj.items():
            if isinstance(k, (Dropped, type)):
                continue
            out[k] = _scrub(v, memo, depth + 1)
    elif isinstance(obj, list):
        out = []
        memo[id(obj)] = out
        out.extend(_scrub(v, memo, depth + 1) for v in obj)
    elif isinstance(obj, tuple):
        out = tuple(_scrub(v, memo, depth + 1) for v in obj)
    else:
        out = type(obj)(v for v in obj if not isinstance(v, (Dropped, type)))
    memo[id(obj)] = out
    return out


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_foreign_checkpoint(path: str | os.PathLike) -> ForeignCheckpoint:
    """Unpickle a foreign torch checkpoint without executing it (see the module docstring)."""
    path = Path(path)
    require_file(path, "checkpoint")
    check_container(path)
    module = _RestrictedPickleModule()
    try:
        payload = torch.load(path, map_location="cpu", pickle_module=module, weights_only=False, mmap=False)
    except Exception as exc:  # noqa: BLE001 - any failure of a foreign file reads as one line
        first = first_line(exc)
        dropped = list(dict.fromkeys(module.dropped))
        extra = f"; it names {', '.join(dropped[:3])}, which were not run" if dropped else ""
        raise BadInput(path, f"not a readable torch checkpoint ({first}){extra}") from None
    check_structure(path, payload)
    return ForeignCheckpoint(path, _scrub(payload, {}), list(module.dropped), file_sha256(path))


def _is_state_dict(obj: Any) -> bool:
    return (isinstance(obj, dict) and bool(obj) and all(isinstance(k, str) for k in obj)
            and all(isinstance(v, torch.Tensor) for v in obj.values()))


#: where the common training frameworks put the network's weights inside their checkpoint
STATE_DICT_KEYS = ("state_dict", "model", "model_state_dict", "net", "params")


def extract_state_dict(ckpt: ForeignCheckpoint) -> dict[str, torch.Tensor]:
    """The network's state dict: the payload itself, or under one of :data:`STATE_DICT_KEYS`.

    A leading ``module.`` (DataParallel) is stripped from every key. Non-tensor entries of an
    otherwise tensor-valued mapping (e.g. a dropped object) make the file unusable.
    """
    obj = ckpt.payload
    candidates = [obj] + [obj.get(k) for k in STATE_DICT_KEYS if isinstance(obj, dict)]
    for candidate in candidates:
        if _is_state_dict(candidate):
            return {k.removeprefix("module."): v for k, v in candidate.items()}
    found = ", ".join(sorted(str(k) for k in obj)[:8]) if isinstance(obj, dict) else type(obj).__name__
    raise BadInput(ckpt.path, f"holds no state dict of tensors (found: {found or 'nothing'})")


def _abbreviate(keys: list[str], limit: int = 6) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


class StateMapper:
    """Renames a foreign state dict into a network's, and checks that nothing was left over.

    ``take(key)`` returns a source tensor and marks it used; ``put(target, tensor)`` places
    it. ``finish(model)`` fails with one :class:`MatteError` naming every source key never
    taken, every target key never filled, and every shape that does not fit; on success it
    returns the complete target state dict (loads with ``strict=True``).
    """

    def __init__(self, source: Mapping[str, torch.Tensor], fmt: str) -> None:
        self.source = dict(source)
        self.fmt = fmt
        self.used: set[str] = set()
        self.target: dict[str, torch.Tensor] = {}

    def has(self, key: str) -> bool:
        return key in self.source

    def take(self, key: str) -> torch.Tensor:
        if key not in self.source:
            raise MatteError(f"{self.fmt}: the checkpoint lacks {key}")
        self.used.add(key)
        return self.source[key]

    def put(self, key: str, value: torch.Tensor) -> None:
        self.target[key] = value

    def move(self, source_key: str, target_key: str) -> None:
        self.put(target_key, self.take(source_key))

    def move_prefix(self, source_prefix: str, target_prefix: str, names: Iterable[str]) -> None:
        for name in names:
            self.move(source_prefix + name, target_prefix + name)

    def skip(self, key: str) -> None:
        """A source key that is deliberately not needed (say why where it is called)."""
        self.used.add(key)

    def finish(self, model: nn.Module) -> dict[str, torch.Tensor]:
        expected = model.state_dict()
        unused = [k for k in self.source if k not in self.used]
        unfilled = [k for k in expected if k not in self.target]
        unknown = [k for k in self.target if k not in expected]
        shapes = [f"{k} {tuple(v.shape)} (network: {tuple(expected[k].shape)})"
                  for k, v in self.target.items() if k in expected and v.shape != expected[k].shape]
        problems = []
        if unused:
            problems.append(f"{len(unused)} source key(s) unused: {_abbreviate(unused)}")
        if unfilled:
            problems.append(f"{len(unfilled)} network key(s) not filled: {_abbreviate(unfilled)}")
        if unknown:
            problems.append(f"{len(unknown)} mapped key(s) not in the network: {_abbreviate(unknown)}")
        if shapes:
            problems.append(f"shape mismatch: {_abbreviate(shapes, 3)}")
        else:
            weight = first_weight_problem(self.target, expected)
            if weight:
                problems.append(weight)
        if problems:
            raise MatteError(f"{self.fmt}: the checkpoint does not map onto the network; " + "; ".join(problems))
        return {k: self.target[k].to(dtype=expected[k].dtype).contiguous() for k in expected}
