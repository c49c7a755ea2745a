"""Held-out procedural data for the learning benchmarks of every family: train / val / test.

Each split is a ``mattecli compose`` dataset (with trimaps, and plates on request) built
from its own procedural foregrounds and backgrounds, drawn with seeds that neither the
built-in samples (seed 0, ``mattecli samples``/``demo``) nor the other splits use. So a
model trained on ``train`` and selected on ``val`` is scored on ``test`` composites whose
foregrounds and backgrounds it never saw, in any split.

Used by ``bench_train_dim.py`` and the other families' training benchmarks::

    from heldout import make_splits, load_items, score
    splits = make_splits(Path("/tmp/x"), size=(320, 320))
    items = load_items(splits["test"])
    score(lambda image, trimap: ..., items)                 # unknown region (trimap == 128)
    score(lambda image, trimap: ..., items, region="all")   # whole image (trimap-free papers)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from mattecli.data.manifest import read_manifest, resolve
from mattecli.data.samples import write_samples
from mattecli.data.trimap import normalise_trimap
from mattecli.io.images import read_alpha, read_alpha_float, read_rgb
from mattecli.metrics import compute_metrics

METRICS = ("sad", "mse", "grad", "conn")

#: (source seed, compose seed) per split; 0 is the built-in samples' seed and is never used.
SPLIT_SEEDS = {"train": (1101, 11), "val": (2202, 22), "test": (3303, 33)}


@dataclass(frozen=True)
class SplitSizes:
    foregrounds: int
    per_fg: int


DEFAULT_SIZES = {"train": SplitSizes(16, 4), "val": SplitSizes(4, 2), "test": SplitSizes(6, 2)}


def compose(src: Path, out: Path, seed: int, per_fg: int, plates: bool = False,
            trimap_iterations: str = "2-6") -> None:
    """Composite ``src``'s fg/alpha over its bg with the project's own ``compose`` command."""
    from typer.testing import CliRunner

    from mattecli.cli.app import app

    args = ["compose", "--fg", str(src / "fg"), "--alpha", str(src / "alpha"), "--bg", str(src / "bg"),
            "--out", str(out), "--per-fg", str(per_fg), "--trimaps", "--trimap-iterations", trimap_iterations,
            "--seed", str(seed), "-q", "--workers", "1"]
    if plates:
        args.append("--plates")
    result = CliRunner().invoke(app, args)
    if result.exit_code != 0:
        raise SystemExit(f"compose failed: {result.output}\n{result.exception}")


def make_splits(root: Path, size: tuple[int, int] = (320, 320), sizes: dict[str, SplitSizes] | None = None,
                plates: bool = False, trimap_iterations: str = "2-6") -> dict[str, Path]:
    """Write (or reuse) ``root/{train,val,test}`` compose datasets; returns their paths."""
    sizes = {**DEFAULT_SIZES, **(sizes or {})}
    out: dict[str, Path] = {}
    for split, (source_seed, compose_seed) in SPLIT_SEEDS.items():
        dataset = root / split
        if not (dataset / "manifest.json").is_file():
            n = sizes[split]
            write_samples(root / f"src-{split}", seed=source_seed, foregrounds=n.foregrounds,
                          backgrounds=n.foregrounds * n.per_fg, size=size)
            compose(root / f"src-{split}", dataset, compose_seed, n.per_fg, plates, trimap_iterations)
        out[split] = dataset
    return out


@dataclass(frozen=True)
class Item:
    name: str
    image: np.ndarray      # uint8 HxWx3
    trimap: np.ndarray     # uint8 {0, 128, 255}
    alpha: np.ndarray      # float32 [0, 1]
    plate: np.ndarray | None


def load_items(dataset: Path) -> list[Item]:
    items = []
    for r in read_manifest(dataset):
        trimap, _ = normalise_trimap(read_alpha(resolve(dataset, r.trimap_path)))
        plate = read_rgb(resolve(dataset, r.plate_path)) if getattr(r, "plate_path", None) else None
        items.append(Item(r.name, read_rgb(resolve(dataset, r.merged_path)), trimap,
                          read_alpha_float(resolve(dataset, r.alpha_path)), plate))
    return items


def score(predict: Callable[[Item], np.ndarray], items: Iterable[Item], region: str = "unknown",
          clamp_known: bool = True) -> dict[str, float]:
    """Mean SAD/MSE/Grad/Conn (+ MAD) of ``predict(item) -> float alpha HxW`` over ``items``.

    ``region="unknown"`` scores the trimap's unknown pixels (Composition-1k convention) and,
    with ``clamp_known``, pastes the trimap's known pixels first (as ``matte`` does);
    ``region="all"`` scores every pixel (the trimap-free convention of the human-matting
    papers) by scoring against an all-unknown trimap. Predictions are rounded to 8 bits, as
    the written PNG would be. MAD is the mean absolute difference over the scored pixels.
    """
    totals = dict.fromkeys(METRICS + ("mad",), 0.0)
    count = 0
    for item in items:
        alpha = np.asarray(predict(item), np.float32)
        if region == "unknown" and clamp_known:
            alpha = np.where(item.trimap == 255, 1.0, np.where(item.trimap == 0, 0.0, alpha))
        alpha = (np.round(np.clip(alpha, 0, 1) * 255) / 255).astype(np.float32)
        trimap = item.trimap if region == "unknown" else np.full_like(item.trimap, 128)
        scores = compute_metrics(alpha, item.alpha, trimap)
        for m in METRICS:
            totals[m] += scores[m]
        mask = trimap == 128
        totals["mad"] += float(np.abs(alpha - item.alpha)[mask].mean()) if mask.any() else 0.0
        count += 1
    return {m: totals[m] / max(count, 1) for m in totals}


def markdown_table(results: dict[str, dict[str, float]], metrics: tuple[str, ...] = METRICS + ("mad",)) -> str:
    lines = ["| method | " + " | ".join(m.upper() for m in metrics) + " |",
             "|---|" + "---|" * len(metrics)]
    for name, r in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{r[m]:.4f}" if m in ("mse", "mad") else f"{r[m]:.3f}"
                                                   for m in metrics) + " |")
    return "\n".join(lines)
