"""Training families by name, imported on first use (``mattecli --help`` stays fast).

``FAMILY_MODULES`` maps a name to the module whose ``FAMILY`` attribute is the
:class:`mattecli.train.family.TrainingFamily` object; tests and plug-ins may also
register an object directly with :func:`register_training_family`.
"""
from __future__ import annotations

import importlib

from mattecli.errors import MatteError
from mattecli.train.family import TrainingFamily

FAMILY_MODULES: dict[str, str] = {
    "dim": "mattecli.train.families.dim",
}

_REGISTERED: dict[str, TrainingFamily] = {}


def register_training_family(family: TrainingFamily) -> None:
    _REGISTERED[family.name] = family


def known_families() -> list[str]:
    return sorted(set(FAMILY_MODULES) | set(_REGISTERED))


def get_family(name: str) -> TrainingFamily:
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name not in FAMILY_MODULES:
        raise MatteError(f"unknown training family '{name}' (known: {', '.join(known_families())})")
    module = importlib.import_module(FAMILY_MODULES[name])
    family = getattr(module, "FAMILY", None)
    if family is None:
        raise MatteError(f"{FAMILY_MODULES[name]} defines no FAMILY object")
    _REGISTERED[name] = family
    return family
