"""Seeds derived from names, so a result depends on what it is, not on which worker made it."""
from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(seed: int, *keys: object) -> int:
    """A stable 63-bit seed from a base seed and any keys (file names, indices, epochs).

    Uses a cryptographic hash rather than ``hash()`` so it is identical across processes,
    Python versions and machines.
    """
    text = "\x1f".join([str(int(seed))] + [str(k) for k in keys])
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little") >> 1


def rng_for(seed: int, *keys: object) -> np.random.Generator:
    """A NumPy generator private to (seed, keys)."""
    return np.random.Generator(np.random.PCG64(derive_seed(seed, *keys)))
