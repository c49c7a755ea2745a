"""Benchmark: all four metrics on 1,000 800x600 images, PNG decoding included.

    python benchmarks/bench_eval.py [--count 1000] [--workers 0] [--plot bench_eval.png]

Writes a seeded evaluation set once under .bench/eval_<W>x<H>_<count>/ (pred, gt, trimap PNGs),
then measures, in the same run and like for like:
  1. process-pool start-up (spawn + imports), on its own;
  2. on one warm pool, over the same images (PNG decoding included in both):
     mattecli's per-image scorer (mattecli.metrics.evaluate.score_item), and a careful
     NumPy/OpenCV implementation of the same MATLAB definitions (full-image float64,
     separable cv2.sepFilter2D for the Gaussian gradient, cv2.connectedComponentsWithStats);
     the baseline is checked to give the same numbers;
  3. mattecli's evaluator end to end (evaluate_items: its own pool start-up included);
  4. a per-metric breakdown (ms per image, one core, decoding separate) on a subset.
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
from mattecli.metrics.evaluate import score_item  # noqa: E402
from mattecli.metrics.gradient import gauss_factors  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


# --- the careful baseline ------------------------------------------------------------------

def careful_metrics(pred_u8: np.ndarray, gt_u8: np.ndarray, trimap: np.ndarray) -> dict[str, float]:
    """The MATLAB definitions written carefully but plainly: full-image float64 arrays, the
    Gaussian-derivative kernel applied as two 1-D passes (cv2.sepFilter2D, replicated borders,
    flipped for a true convolution), connected components by OpenCV."""
    import cv2

    p, g = pred_u8 / 255.0, gt_u8 / 255.0
    u = trimap == 128
    diff = p - g
    out = {"sad": np.abs(diff)[u].sum() / 1000, "mse": (diff[u] ** 2).sum() / max(int(u.sum()), 1)}
    smooth, deriv = gauss_factors()
    amps = []
    for a in (p, g):
        lo, hi = a.min(), a.max()
        a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
        gx = cv2.sepFilter2D(a, cv2.CV_64F, deriv[::-1].copy(), smooth[::-1].copy(), borderType=cv2.BORDER_REPLICATE)
        gy = cv2.sepFilter2D(a, cv2.CV_64F, smooth[::-1].copy(), deriv[::-1].copy(), borderType=cv2.BORDER_REPLICATE)
        amps.append(np.sqrt(gx * gx + gy * gy).astype(np.float32))
    out["grad"] = ((amps[0] - amps[1]).astype(np.float64) ** 2)[u].sum() / 1000
    p32, g32 = pred_u8.astype(np.float32) / 255, gt_u8.astype(np.float32) / 255
    l_map = np.full(p.shape, -1.0)
    for i, level in enumerate(np.float32(np.arange(1, 11) / 10), start=1):
        count, labels, stats, _ = cv2.connectedComponentsWithStats(((p32 >= level) & (g32 >= level)).astype(np.uint8),
                                                                   connectivity=4)
        omega = labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA])) if count > 1 else np.zeros(p.shape, bool)
        l_map[(l_map == -1) & ~omega] = (i - 1) / 10
    l_map[l_map == -1] = 1
    phis = [1 - (a - l_map) * ((a - l_map) >= 0.15) for a in (p32.astype(np.float64), g32.astype(np.float64))]
    out["conn"] = np.abs(phis[0] - phis[1])[u].sum() / 1000
    return {k: float(v) for k, v in out.items()}


def _careful_item(item: EvalItem) -> dict[str, float]:
    return careful_metrics(read_raw(item.pred), read_raw(item.gt), read_raw(item.trimap))


def _ours_item(item: EvalItem) -> dict[str, float]:
    return score_item(item).scores


def _init_one_thread() -> None:
    import cv2

    cv2.setNumThreads(1)


def _noop(_: int) -> int:
    return 0


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
    parser.add_argument("--plot", type=Path, help="write a bar chart of the breakdown")
    parser.add_argument("--rounds", type=int, default=1,
                        help="alternate mattecli and the careful baseline this many times (A/B/A/B against load drift)")
    args = parser.parse_args()
    workers = args.workers or os.cpu_count() or 1
    items = ensure_data(args.count, args.width, args.height, args.seed, workers)
    print(f"{len(items)} images {args.width}x{args.height}, {workers} workers, {os.cpu_count()} cores")

    ctx = multiprocessing.get_context("spawn")
    t0 = time.perf_counter()
    pool = ctx.Pool(workers, initializer=_init_one_thread)
    pool.map(_noop, range(workers * 4), chunksize=1)  # every worker up and importing done
    startup = time.perf_counter() - t0
    print(f"pool start-up ({workers} spawn processes, imports): {startup:.2f} s")
    with pool:
        pool.map(_ours_item, items[:workers], chunksize=1)  # warm both code paths (lazy imports, caches)
        pool.map(_careful_item, items[:workers], chunksize=1)
        ours = slow = 0.0
        for r in range(args.rounds):
            t0 = time.perf_counter()
            ours_scores = pool.map(_ours_item, items, chunksize=8)
            ours_round = time.perf_counter() - t0
            t0 = time.perf_counter()
            careful = pool.map(_careful_item, items, chunksize=8)
            slow_round = time.perf_counter() - t0
            ours, slow = ours + ours_round, slow + slow_round
            if args.rounds > 1:
                print(f"  round {r + 1}: mattecli {ours_round:.2f} s, careful {slow_round:.2f} s: "
                      f"x{slow_round / ours_round:.2f} (load average {os.getloadavg()[0]:.1f})", flush=True)
        ours, slow = ours / args.rounds, slow / args.rounds
    worst = max(abs(c[k] - o[k]) / max(abs(o[k]), 1e-12) for c, o in zip(careful, ours_scores) for k in o)
    print(f"warm pool, the same {len(items)} images, PNG decoding included:")
    print(f"  mattecli score_item        {ours:7.2f} s = {1000 * ours / len(items):6.1f} ms/image wall")
    print(f"  careful NumPy/OpenCV       {slow:7.2f} s = {1000 * slow / len(items):6.1f} ms/image wall")
    print(f"  ratio x{slow / ours:.2f}; largest relative difference between them {worst:.1e}")

    t0 = time.perf_counter()
    report = evaluate_items(items, workers=workers)
    end_to_end = time.perf_counter() - t0
    assert not report.failures, report.failures[0].error
    print(f"mattecli evaluate_items end to end (its own pool start-up included): {end_to_end:.2f} s "
          f"= {1000 * end_to_end / len(items):.1f} ms/image, mean {report.mean()}")

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
        ax.set_title(f"mattecli eval: {len(items)} images in {ours:.1f} s on {workers} warm processes")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
