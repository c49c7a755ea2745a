"""Worker processes for CPU-bound batches (compose, eval, the classical `matte`).

Workers are spawned, not forked: the caller may hold threads (OpenCV's pool, rich's refresh
thread, torch's intra-op pool) that a forked child would copy mid-flight and deadlock on. Each
worker runs single-threaded (OpenCV, OpenMP and BLAS): the processes are the parallelism, and
two layers of threads on the same cores only contend.
"""
from __future__ import annotations

import itertools
import os
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterable, Iterator, TypeVar

K = TypeVar("K")
T = TypeVar("T")
R = TypeVar("R")

#: thread-count variables a spawned worker starts with (read by OpenMP/BLAS at import)
ONE_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity: what a scheduler such as SLURM or
    ``taskset`` granted), or every core where affinity is not known."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def default_workers(workers: int | None, jobs: int | None = None) -> int:
    """``workers`` (default: every usable core), never more than ``jobs`` and never below 1."""
    n = workers or usable_cores()
    if jobs is not None:
        n = min(n, jobs)
    return max(1, n)


def single_threaded_worker() -> None:
    """Pool initialiser: one OpenCV thread per process."""
    import cv2

    cv2.setNumThreads(1)


class spawned_single_threaded:
    """Context in which spawned children start with one OpenMP/BLAS thread (the environment is
    read when the child imports NumPy); the parent's own environment is restored on exit."""

    def __enter__(self) -> "spawned_single_threaded":
        self.saved = {k: os.environ.get(k) for k in ONE_THREAD_ENV}
        for k in ONE_THREAD_ENV:
            os.environ[k] = "1"
        return self

    def __exit__(self, *exc: object) -> None:
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def ordered_map(fn: Callable[[T], R], tasks: Iterable[tuple[K, T]], workers: int,
                crashed: Callable[[K, BaseException], R]) -> Iterator[tuple[K, R]]:
    """``(key, fn(payload))`` for each ``(key, payload)`` of ``tasks``, in their order, computed in
    ``workers`` spawned processes (only the payload travels; the key stays here).

    ``tasks`` is read lazily, at most two per worker ahead of the one being waited for, so a long
    stream of images never sits in memory. ``fn`` must be a module-level function and should
    return its errors as values: an exception it raises is re-raised here. When a worker dies
    (killed, out of memory), the tasks in flight run again one at a time in a fresh pool, and the
    one that kills its worker gives ``crashed(key, error)``. With ``workers == 1``, or a single
    task, everything runs in this process.
    """
    source = iter(tasks)
    first = next(source, None)
    second = next(source, None) if first is not None else None
    if workers <= 1 or second is None:  # a single task runs here: no start-up cost (the studio's previews)
        for key, payload in filter(None, (first, second, *source)):
            yield key, fn(payload)
        return
    import multiprocessing

    context = multiprocessing.get_context("spawn")

    def start() -> ProcessPoolExecutor:
        with spawned_single_threaded():
            pool = ProcessPoolExecutor(workers, mp_context=context, initializer=single_threaded_worker)
            # the executor spawns a process per submit while none is idle: start them all here
            for warm in [pool.submit(int) for _ in range(workers)]:
                warm.result()
        return pool

    source = itertools.chain((first, second), source)
    window: deque[tuple[K, T, Future]] = deque()
    pool = start()
    try:
        while True:
            while len(window) < 2 * workers:
                task = next(source, None)
                if task is None:
                    break
                try:
                    future = pool.submit(fn, task[1])
                except BrokenProcessPool as exc:  # a worker died since the last wait: a suspect too
                    future = Future()
                    future.set_exception(exc)
                window.append((task[0], task[1], future))
            if not window:
                return
            key, payload, future = window.popleft()
            try:
                result = future.result()
            except BrokenProcessPool:
                result = _BROKEN
            if result is not _BROKEN:
                yield key, result
                continue
            # A worker died and took every task in flight with it: run those again one at a time,
            # so only the one that kills its worker is reported, then go on in parallel.
            suspects = [(key, payload), *((k, p) for k, p, _ in window)]
            window.clear()
            pool.shutdown(wait=False, cancel_futures=True)
            pool = start()
            for key, payload in suspects:
                try:
                    result = pool.submit(fn, payload).result()
                except BrokenProcessPool as exc:
                    result = crashed(key, exc)
                    pool.shutdown(wait=False, cancel_futures=True)
                    pool = start()
                yield key, result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


_BROKEN = object()

__all__ = ["ONE_THREAD_ENV", "default_workers", "usable_cores", "ordered_map", "single_threaded_worker", "spawned_single_threaded"]
