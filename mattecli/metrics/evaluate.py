"""Scoring many (prediction, ground truth, trimap) files over all cores."""
from __future__ import annotations

import csv
import io
import multiprocessing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from mattecli.data.trimap import normalise_trimap
from mattecli.errors import BadInput, MatteError
from mattecli.io.images import read_raw, to_uint8
from mattecli.metrics.compute import DEFAULT_METRICS, check_metric_names, compute_metrics
from mattecli.metrics.pairing import EvalItem
from mattecli.parallel import default_workers, single_threaded_worker


@dataclass
class ItemResult:
    name: str
    scores: dict[str, float] | None = None  # None when the item could not be scored
    error: str | None = None  # one line naming the file and the problem
    notes: list[str] = field(default_factory=list)  # warnings worth one line each
    trimap_changed: int = 0  # pixels of its trimap not 0/128/255 (one warning per run: off_level_warning)


@dataclass
class EvalReport:
    metrics: tuple[str, ...]
    convention: str
    results: list[ItemResult]
    region: str = "unknown"

    @property
    def scored(self) -> list[ItemResult]:
        return [r for r in self.results if r.scores is not None]

    @property
    def failures(self) -> list[ItemResult]:
        return [r for r in self.results if r.scores is None]

    def mean(self) -> dict[str, float]:
        """Arithmetic mean over the scored images (``evaluate.m``); empty when none was scored."""
        scored = self.scored
        if not scored:
            return {}
        return {m: float(np.mean([r.scores[m] for r in scored])) for m in self.metrics}

    def worst(self, count: int, metric: str | None = None) -> list[ItemResult]:
        metric = metric or self.metrics[0]
        return sorted(self.scored, key=lambda r: r.scores[metric], reverse=True)[:count]

    def to_json(self) -> dict:
        return {"count": len(self.scored), "region": self.region, "mean": self.mean(),
                "images": [{"name": r.name, **r.scores} for r in self.scored]}

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["name", *self.metrics])
        for r in self.scored:
            writer.writerow([r.name, *(repr(r.scores[m]) for m in self.metrics)])
        return out.getvalue()


# --- reading one item --------------------------------------------------------------------

def read_prediction(path: Path, notes: list[str]) -> np.ndarray:
    """A single-channel matte. Grey stored as identical RGB channels (opaque or without an
    alpha channel) is accepted with a note; anything with real colour or transparency is not."""
    arr = read_raw(path)
    if arr.ndim == 2:
        return arr
    channels = arr.shape[2]
    colour = arr[:, :, : 3 if channels >= 3 else 1]
    if channels in (2, 4):
        alpha = arr[:, :, channels - 1]
        if alpha.min() != np.iinfo(arr.dtype).max:
            raise BadInput(path, "prediction has a transparency channel; expected a single-channel (grey) matte")
    if colour.shape[2] == 3 and not ((colour[:, :, 0] == colour[:, :, 1]).all()
                                     and (colour[:, :, 1] == colour[:, :, 2]).all()):
        raise BadInput(path, "prediction has 3 different colour channels; expected a single-channel (grey) matte")
    notes.append(f"{path}: grey stored as {channels} channels; read as one")
    return np.ascontiguousarray(colour[:, :, 0])


def read_ground_truth(path: Path) -> np.ndarray:
    """The first channel of a colour file, as the MATLAB ``evaluate.m`` does."""
    arr = read_raw(path)
    return arr if arr.ndim == 2 else np.ascontiguousarray(arr[:, :, 0])


def read_trimap(path: Path) -> tuple[np.ndarray, int]:
    """An 8-bit {0, 128, 255} trimap (other values go to the nearest level) and how many pixels moved."""
    arr = read_raw(path)
    if arr.ndim == 3:
        arr = arr[:, :, 0]
    return normalise_trimap(to_uint8(arr))


def _size(arr: np.ndarray) -> str:
    return f"{arr.shape[1]}x{arr.shape[0]}"


def score_item(item: EvalItem, metrics: Sequence[str] = DEFAULT_METRICS, convention: str = "matlab",
               region: str = "unknown") -> ItemResult:
    """Read and score one item; a bad file becomes ``error`` instead of an exception.
    With ``region="all"`` the item needs no trimap (``item.trimap`` may be None)."""
    result = ItemResult(item.name)
    try:
        pred = read_prediction(item.pred, result.notes)
        gt = read_ground_truth(item.gt)
        if gt.shape != pred.shape:
            raise BadInput(item.pred, f"prediction is {_size(pred)} but the ground truth {item.gt} is {_size(gt)}")
        trimap = None
        if item.trimap is not None and region != "all":
            trimap, result.trimap_changed = read_trimap(item.trimap)
            if trimap.shape != pred.shape:
                raise BadInput(item.pred, f"prediction is {_size(pred)} but the trimap {item.trimap} is {_size(trimap)}")
        elif region != "all":
            raise BadInput(item.pred, "no trimap to find its unknown region (or score with region 'all')")
        result.scores = compute_metrics(pred, gt, trimap, metrics, convention, region)
    except MatteError as exc:
        result.error = str(exc)
    except ValueError as exc:
        result.error = f"{item.pred}: {exc}"
    return result


# --- many items ----------------------------------------------------------------------------

def evaluate_items(items: Sequence[EvalItem], metrics: Sequence[str] = DEFAULT_METRICS,
                   convention: str = "matlab", workers: int | None = None,
                   on_result: Callable[[ItemResult], None] | None = None, region: str = "unknown") -> EvalReport:
    """Score every item, in parallel over ``workers`` processes (default: all cores).

    Results keep the order of ``items``; ``on_result`` is called as each one arrives (for a
    progress bar). Bad files do not stop the batch: they come back with ``error`` set.
    """
    metrics = check_metric_names(metrics)
    workers = default_workers(workers, len(items))
    score = partial(score_item, metrics=metrics, convention=convention, region=region)
    results: list[ItemResult] = []
    if workers == 1:
        stream = map(score, items)
        pool = None
    else:
        # spawn, not fork: the caller may hold threads (OpenCV, torch) that fork would copy mid-flight
        pool = multiprocessing.get_context("spawn").Pool(workers, initializer=single_threaded_worker)
        chunk = max(1, min(16, len(items) // (workers * 8)))
        stream = pool.imap(score, items, chunksize=chunk)
    try:
        for result in stream:
            results.append(result)
            if on_result is not None:
                on_result(result)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    return EvalReport(metrics, convention, results, region)
