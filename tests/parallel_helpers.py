"""A task for spawned workers, in a module that imports nothing heavy (each worker imports it)."""
from __future__ import annotations

import os


def square_or_die(x: int) -> tuple[int, int]:
    """x squared and the worker's pid; dies on 3, as a worker killed for memory does."""
    if x == 3:
        os._exit(9)
    return x * x, os.getpid()


def die_late(x: int) -> int:
    """x squared; 1 dies after a moment, once the task before it has long been returned."""
    import time

    if x == 1:
        time.sleep(0.5)
        os._exit(9)
    return x * x
