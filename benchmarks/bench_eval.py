"""Benchmark: all four metrics on 1,000 800x600 images, PNG decoding included.

    python benchmarks/bench_eval.py [--count 1000] [--workers 0] [--plot bench_eval.png]

Writes a seeded evaluation set once under .bench/eval_<W>x<H>_<count>/ (pred, gt, trimap PNGs),
then measures, in the same run:
  1. mattecli's evaluator (mattecli.metrics.evaluate_items) over every image on all cores;
  2. a straightforward implementation of the same MATLAB definitions (float64 NumPy, SciPy
     ndimage.label and ndimage.convolve on the full image) over the same images and cores;
  3. a per-metric breakdown (ms per image, one core, decoding separate) on a subset.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_data import ground_truth_pool, make_triple  # noqa: E402

from mattecli.io.images import read_raw, write_image  # noqa: E402
from mattecli.metrics import EvalItem, compute_metrics, evaluate_items  # noqa: E402
from mattecli.metrics.gradient import gauss_factors  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


# --- the straightforward implementation -----------------------------------------------------

def straightforward_metrics(pred_u8: np.ndarray, gt_u8: np.ndarray, trimap: np.ndarray) -> dict[str, float]:
    """The MATLAB definitions written the obvious way: full-image arrays in float64."""
    from scipy import ndimage

    p, g = pred_u8 / 255.0, gt_u8 / 255.0
    u = trimap == 128
    out = {"sad": np.abs(p - g)[u].sum() / 1000, "mse": ((p - g) ** 2)[u].sum() / max(u.sum(), 1)}
    smooth, deriv = gauss_factors()
    hx = np.outer(smooth, deriv)
    amps = []
    for a in (p, g):
        a = (a - a.min()) / (a.max() - a.min()) if a.max() > a.min() else np.zeros_like(a)
        gx = ndimage.convolve(a, hx, mode="nearest")
        gy = ndimage.convolve(a, hx.T, mode="nearest")
        amps.append(np.sqrt(gx ** 2 + gy ** 2))
    out["grad"] = ((amps[0] - amps[1]) ** 2)[u].sum() / 1000
    levels = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    p32, g32 = pred_u8.astype(np.float32) / 255, gt_u8.astype(np.float32) / 255
    l_map = -np.ones(p.shape)
    for i in range(1, len(levels)):
        labels, count = ndimage.label((p32 >= levels[i]) & (g32 >= levels[i]))
        omega = np.zeros(p.shape, bool)
        if count:
            sizes = np.bincount(labels.ravel())[1:]
            omega = labels == np.argmax(sizes) + 1
        l_map[(l_map == -1) & ~omega] = levels[i - 1]
    l_map[l_map == -1] = 1
    phis = [1 - (a - l_map) * ((a - l_map) >= 0.15) for a in (p32.astype(np.float64), g32.astype(np.float64))]
    out["conn"] = np.abs(phis[0] - phis[1])[u].sum() / 1000
    return {k: float(v) for k, v in out.items()}


def _straightforward_item(item: EvalItem) -> dict[str, float]:
    import cv2

    cv2.setNumThreads(1)
    return straightforward_metrics(read_raw(item.pred), read_raw(item.gt), read_raw(item.trimap))


# --- the data ------------------------------------------------------------------------------

_POOL: list[np.ndarray] = []


def _write_one(args) -> None:
    folder, seed, i, w, h = args
    for sub, arr in zip(("pred", "gt", "trimap"), make_triple(_POOL, seed, i, w, h)):
        write_image(folder / sub / f"img_{i:04d}.png", arr)


def _init_writer(seed: int, w: int, h: int) -> None:
    _POOL.extend(ground_truth_pool(seed, 8, w, h))


def ensure_data(count: int, w: int, h: int, seed: int, workers: int) -> list[EvalItem]:
    folder = ROOT / ".bench" / f"eval_{w}x{h}_{count}_s{seed}"
    marker = folder / "complete"
    if not marker.exists():
        print(f"writing {count} evaluation triples to {folder} ...", flush=True)
        t0 = time.perf_counter()
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(workers, initializer=_init_writer, initargs=(seed, w, h)) as pool:
            pool.map(_write_one, [(folder, seed, i, w, h) for i in range(count)], chunksize=8)
        marker.touch()
        print(f"  done in {time.perf_counter() - t0:.1f} s")
    return [EvalItem(f"img_{i:04d}", *(folder / sub / f"img_{i:04d}.png" for sub in ("pred", "gt", "trimap")))
            for i in range(count)]


# --- measurements --------------------------------------------------------------------------

def breakdown(items: list[EvalItem]) -> dict[str, float]:
    """Median ms per image for decoding (3 PNGs) and each metric alone, on one core."""
    import cv2

    cv2.setNumThreads(1)
    timings: dict[str, list[float]] = {k: [] for k in ("decode 3 PNGs", "sad", "mse", "grad", "conn")}
    for item in items:
        t0 = time.perf_counter()
        arrays = [read_raw(p) for p in (item.pred, item.gt, item.trimap)]
        timings["decode 3 PNGs"].append(time.perf_counter() - t0)
        for metric in ("sad", "mse", "grad", "conn"):
            t0 = time.perf_counter()
            compute_metrics(*arrays, metrics=[metric])
            timings[metric].append(time.perf_counter() - t0)
    return {k: 1000 * statistics.median(v) for k, v in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--width", type=int, default=800)
    parser.add_argument("--height", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=0, help="0: every core")
    parser.add_argument("--breakdown", type=int, default=100, help="images in the per-metric breakdown")
    parser.add_argument("--straightforward-count", type=int, default=0,
                        help="images for the straightforward implementation (0: all)")
    parser.add_argument("--plot", type=Path, help="write a bar chart of the breakdown")
    args = parser.parse_args()
    workers = args.workers or os.cpu_count() or 1
    items = ensure_data(args.count, args.width, args.height, args.seed, workers)
    print(f"{len(items)} images {args.width}x{args.height}, {workers} workers, {os.cpu_count()} cores")

    t0 = time.perf_counter()
    report = evaluate_items(items, workers=workers)
    ours = time.perf_counter() - t0
    assert not report.failures, report.failures[0].error
    print(f"mattecli eval (all four metrics, PNG decoding, {workers} processes): {ours:.2f} s "
          f"= {1000 * ours / len(items):.1f} ms/image wall, mean {report.mean()}")

    subset = items[: args.straightforward_count or len(items)]
    t0 = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        simple = pool.map(_straightforward_item, subset, chunksize=8)
    slow = time.perf_counter() - t0
    worst = max(abs(s[k] - r.scores[k]) / max(abs(r.scores[k]), 1e-12)
                for s, r in zip(simple, report.results) for k in s)
    print(f"straightforward NumPy/SciPy ({len(subset)} of the images, same processes): {slow:.2f} s "
          f"= {1000 * slow / len(subset):.1f} ms/image wall; mattecli is x{slow / len(subset) / (ours / len(items)):.1f} "
          f"faster; largest relative difference {worst:.1e}")

    parts = breakdown(items[: args.breakdown])
    print(f"per-image breakdown, one core, median over {min(args.breakdown, len(items))} images:")
    for k, v in parts.items():
        print(f"  {k:14s} {v:7.2f} ms")
    print(f"  {'total':14s} {sum(parts.values()):7.2f} ms")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3))
        ax.barh(list(parts), list(parts.values()), color="#4c72b0")
        ax.set_xlabel("ms per 800x600 image (one core)")
        ax.set_title(f"mattecli eval: {len(items)} images in {ours:.1f} s on {workers} processes")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
