"""Shards: splitting one batch over several runs or machines, the same way for every command.

Shard I of N (1-based, ``--shard I/N``) takes a contiguous block of the full, deterministic
work list, so the union of the N shards is exactly the unsharded run and each shard touches
few neighbouring inputs (few foregrounds to load in ``compose``).
"""
from __future__ import annotations

from mattecli.errors import MatteError


def check_shard(shard: tuple[int, int]) -> None:
    i, n = shard
    if n < 1 or not 1 <= i <= n:
        raise MatteError(f"--shard {i}/{n}: expected I/N with 1 <= I <= N")


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> (I, N), with a one-line error otherwise."""
    try:
        i_text, n_text = text.split("/")
        i, n = int(i_text), int(n_text)
    except ValueError:
        raise MatteError(f"--shard {text!r}: expected I/N, e.g. 1/4 (shard 1 of 4)") from None
    if n < 1 or not 1 <= i <= n:
        raise MatteError(f"--shard {text!r}: expected I/N with 1 <= I <= N, e.g. 1/4 .. 4/4")
    return i, n


def shard_range(total: int, shard: tuple[int, int]) -> range:
    """The indices of shard I of N among ``total`` items."""
    check_shard(shard)
    i, n = shard
    return range((i - 1) * total // n, i * total // n)
