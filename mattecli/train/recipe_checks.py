"""Checks every training family shares: its network inside a wrapper, its stage names, and
recipe values rejected with a one-line :class:`MatteError` naming the key."""
from __future__ import annotations

from typing import Any, Iterable, Mapping, TypeVar

from torch import nn

from mattecli.errors import MatteError
from mattecli.train.checkpoints import unwrap

N = TypeVar("N", bound=nn.Module)


def network(model: nn.Module, cls: type[N], what: str) -> N:
    """The ``cls`` network inside a DistributedDataParallel (or compile) wrapper; ``what``
    names it in the error (e.g. "a DIM network")."""
    net = unwrap(model)
    if not isinstance(net, cls):
        raise TypeError(f"expected {what}, got {type(net).__name__}")
    return net


def check_stage(stage: str, stages: tuple[str, ...], family: str) -> None:
    """ValueError unless ``stage`` is one of the family's ``stages``."""
    if stage not in stages:
        raise ValueError(f"{family} stage must be one of {', '.join(stages)}, not {stage!r}")


def bad(key: str, value: Any, expected: str) -> MatteError:
    """The error for recipe key ``key`` holding ``value`` where ``expected`` was wanted."""
    return MatteError(f"recipe key {key} = {value!r}: expected {expected}")


def is_int(value: Any, low: int = 1) -> bool:
    """An integer (not a bool) >= ``low``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def is_number(value: Any) -> bool:
    """An int or float, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def int_pair(recipe: Mapping[str, Any], key: str, default: tuple[int, int]) -> tuple[int, int]:
    """An inclusive integer range ``[lo, hi]`` (or one integer) from the recipe."""
    value = recipe.get(key, default)
    if is_int(value):
        return (value, value)
    if (not isinstance(value, (list, tuple)) or len(value) != 2 or not all(is_int(v) for v in value)
            or value[0] > value[1]):
        raise bad(key, value, "[lo, hi] with 1 <= lo <= hi")
    return (int(value[0]), int(value[1]))


def check_bools(recipe: Mapping[str, Any], keys: Iterable[str]) -> None:
    """Each of ``keys`` the recipe sets is true or false."""
    for key in keys:
        if key in recipe and not isinstance(recipe[key], bool):
            raise bad(key, recipe[key], "true or false")


def check_paths(recipe: Mapping[str, Any], keys: Iterable[str]) -> None:
    """Each of ``keys`` is unset, null or a path string."""
    for key in keys:
        if recipe.get(key) is not None and not isinstance(recipe[key], str):
            raise bad(key, recipe[key], "a path")


def check_sizes(key: str, value: Any) -> None:
    """``value`` (recipe key ``key``, e.g. ``crop_sizes``) is a non-empty list of positive integers."""
    if not isinstance(value, (list, tuple)) or not value or not all(is_int(c) for c in value):
        raise bad(key, value, "a list of positive integers")
