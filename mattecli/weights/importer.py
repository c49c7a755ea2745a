"""Converting foreign checkpoints into mattecli checkpoints (``mattecli weights import``).

A family adds formats in ``mattecli/families/<name>/weights.py``::

    IMPORT_FORMATS: dict[str, Converter] = {"mmagic-dim": convert_mmagic_dim}

A converter takes the foreign network's state dict (``dict[str, Tensor]``; a leading
``module.`` already stripped from every key) and returns ``(model_config, model_state)``:
the keyword arguments that build the family's network and a state dict that loads into it
with ``strict=True``. It raises :class:`mattecli.errors.MatteError` naming the source keys
it did not use and the network keys it could not fill (:class:`mattecli.io.foreign.StateMapper`
does the bookkeeping). This module finds the formats, reads the file without executing it
(:mod:`mattecli.io.foreign`), checks the result and writes the checkpoint atomically.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from mattecli.errors import BadInput, MatteError
from mattecli.families.registry import build_model, family_folders
from mattecli.io.atomic import refuse_existing
from mattecli.io.checkpoint import save_checkpoint
from mattecli.io.foreign import extract_state_dict, read_foreign_checkpoint

Converter = Callable[[dict[str, torch.Tensor]], tuple[dict[str, Any], dict[str, torch.Tensor]]]
#: the ``stage`` an imported checkpoint records (it was not trained here)
IMPORTED_STAGE = "imported"


@dataclass(frozen=True)
class ImportFormat:
    name: str
    family: str
    convert: Converter
    description: str


def import_formats() -> dict[str, ImportFormat]:
    """Every format of every family folder that has a ``weights.py``, by format name."""
    found: dict[str, ImportFormat] = {}
    for family in family_folders():
        module_name = f"mattecli.families.{family}.weights"
        if importlib.util.find_spec(module_name) is None:
            continue
        module = importlib.import_module(module_name)
        for name, convert in getattr(module, "IMPORT_FORMATS", {}).items():
            if name in found:
                raise MatteError(f"import format '{name}' is defined by both {found[name].family} and {family}")
            doc = (convert.__doc__ or "").strip().splitlines()
            found[name] = ImportFormat(name, family, convert, doc[0] if doc else "")
    return found


@dataclass
class ImportResult:
    out: Path
    family: str
    model_config: dict[str, Any]
    tensors: int
    parameters: int
    notes: list[str]
    sha256: str


def import_weights(fmt: str, source: str | os.PathLike, out: str | os.PathLike, overwrite: bool = False) -> ImportResult:
    """Read ``source`` in format ``fmt``, convert, verify and write the mattecli checkpoint ``out``."""
    formats = import_formats()
    if fmt not in formats:
        known = ", ".join(sorted(formats)) or "none"
        raise MatteError(f"unknown import format '{fmt}' (known: {known})")
    spec = formats[fmt]
    source, out = Path(source), Path(out)
    if out.resolve() == source.resolve():
        raise BadInput(out, "--out would replace the file being imported; choose another path")
    refuse_existing(out, overwrite)
    foreign = read_foreign_checkpoint(source)
    state = extract_state_dict(foreign)
    try:
        model_config, model_state = spec.convert(state)
    except MatteError as exc:
        raise BadInput(source, str(exc)) from None
    with torch.device("meta"):  # shapes only: no time spent initialising weights that are replaced
        model = build_model(spec.family, model_config)
    try:
        model.load_state_dict(model_state, strict=True, assign=True)
    except RuntimeError as exc:  # a converter bug, but still the user's one line
        raise BadInput(source, f"{fmt}: converted weights do not fit the network "
                               f"({str(exc).splitlines()[0][:160]})") from None
    payload = {
        "family": spec.family,
        "model_config": dict(model_config),
        "model": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "stage": IMPORTED_STAGE,
        "source": {"format": fmt, "file": source.name, "sha256": foreign.sha256},
        "import_notes": foreign.notes(),
    }
    save_checkpoint(out, payload)
    return ImportResult(out, spec.family, dict(model_config), len(payload["model"]),
                        sum(p.numel() for p in model.parameters()), foreign.notes(), foreign.sha256)
