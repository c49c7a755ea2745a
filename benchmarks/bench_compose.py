"""Benchmark ``mattecli compose`` on 1920x1080-class foregrounds over COCO-sized backgrounds.

Reports composites/s for compose with 1..N workers beside (a) a plain single-process loop of
the same convention (decode everything per composite, blend, encode) and (b) the bare codec
cost (decode the inputs, encode the outputs, nothing else), all at the same PNG level. The
like-for-like ratio is one compose worker against the one-process loop; the N-worker ratio
is printed beside it, marked as such.

    python benchmarks/bench_compose.py --foregrounds 4 --per-fg 6 --workers 1 2
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from mattecli.compose import ComposeOptions, compose_dataset
from mattecli.data.composite import CONVENTIONS, DEFAULT_CONVENTION, composite_uint8, fit_background
from mattecli.data.samples import generate_background, generate_foreground
from mattecli.io.images import PNG_FAST_LEVEL, encode_image, read_alpha, read_rgb, write_image


def make_inputs(root: Path, foregrounds: int, backgrounds: int) -> None:
    """1920x1080 foregrounds (PNG, like Adobe's) and 640x480-ish JPEG backgrounds (like COCO)."""
    rng = np.random.default_rng(0)
    for i in range(foregrounds):
        fg, alpha = generate_foreground(0, f"bench_{i}", 1920, 1080)
        write_image(root / "fg" / f"fg{i:02d}.png", fg)
        write_image(root / "alpha" / f"fg{i:02d}.png", alpha)
    for j in range(backgrounds):
        w, h = (640, 480) if j % 3 else (int(rng.integers(1950, 2400)), int(rng.integers(1100, 1500)))
        write_image(root / "bg" / f"bg{j:03d}.jpg", generate_background(0, f"bench_bg_{j}", w, h))


def plain_write(path: Path, rgb: np.ndarray, level: int) -> None:
    """cv2.imwrite at the PNG level asked for, zlib's other settings left at their defaults."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, level]):
        raise SystemExit(f"could not write {path}")


def plain_loop(root: Path, out: Path, pairs: list[tuple[str, str, str]], level: int, convention: str) -> float:
    """What a straightforward script does: per composite, decode all three, blend, write two PNGs."""
    c = CONVENTIONS[convention]
    t = time.perf_counter()
    for fg_name, bg_name, name in pairs:
        fg, alpha = read_rgb(root / "fg" / fg_name), read_alpha(root / "alpha" / fg_name)
        bg = fit_background(read_rgb(root / "bg" / bg_name), fg.shape[1], fg.shape[0], resize=c.resize)
        plain_write(out / "merged" / f"{name}.png", composite_uint8(fg, alpha, bg, c.blend), level)
        plain_write(out / "bg" / f"{name}.png", bg, level)
    return time.perf_counter() - t


def same_pixels(ours: Path, plain: Path, names: list[str]) -> tuple[bool, float, float]:
    """Whether every merged/bg image decodes to the same pixels in both folders; both sizes in MB."""
    same, size_ours, size_plain = True, 0, 0
    for name in names:
        for kind in ("merged", "bg"):
            a, b = ours / kind / f"{name}.png", plain / kind / f"{name}.png"
            same &= np.array_equal(read_rgb(a), read_rgb(b))
            size_ours, size_plain = size_ours + a.stat().st_size, size_plain + b.stat().st_size
    return same, size_ours / 1e6, size_plain / 1e6


def codec_only(root: Path, pairs: list[tuple[str, str, str]], level: int, per_fg: int) -> float:
    """Only the unavoidable: decode each fg/alpha once per foreground and each bg once, and
    encode the two outputs (prepared beforehand, untimed, so no compositing is counted)."""
    outputs = []
    for fg_name, bg_name, _ in pairs:
        fg, alpha = read_rgb(root / "fg" / fg_name), read_alpha(root / "alpha" / fg_name)
        bg = fit_background(read_rgb(root / "bg" / bg_name), fg.shape[1], fg.shape[0])
        outputs.append((composite_uint8(fg, alpha, bg), bg))
    t = time.perf_counter()
    for i, ((fg_name, bg_name, _), (merged, bg)) in enumerate(zip(pairs, outputs)):
        if i % per_fg == 0:
            read_rgb(root / "fg" / fg_name), read_alpha(root / "alpha" / fg_name)
        read_rgb(root / "bg" / bg_name)
        encode_image(merged, ".png", png_compression=level)
        encode_image(bg, ".png", png_compression=level)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--foregrounds", type=int, default=4)
    ap.add_argument("--per-fg", type=int, default=6)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--png-level", type=int, default=1)
    ap.add_argument("--convention", choices=list(CONVENTIONS), default=DEFAULT_CONVENTION)
    ap.add_argument("--keep", type=Path, help="Reuse/keep generated inputs here.")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-compose-"))
    root = args.keep or tmp / "inputs"
    if not (root / "fg").is_dir():
        t = time.perf_counter()
        make_inputs(root, args.foregrounds, args.foregrounds * args.per_fg)
        print(f"generated inputs in {time.perf_counter() - t:.1f} s")
    n = args.foregrounds * args.per_fg
    results = {}
    for w in args.workers:
        out = tmp / f"out{w}"
        s = compose_dataset(ComposeOptions(out=out, fg=root / "fg", alpha=root / "alpha", bg=str(root / "bg"),
                                           per_fg=args.per_fg, workers=w, png_level=args.png_level,
                                           convention=args.convention,
                                           show_progress=False), say=lambda _: None)
        results[f"compose, {w} worker{'s' if w > 1 else ''}"] = s.seconds
    from mattecli.data.manifest import read_manifest

    pairs = [(Path(r.fg_path).name, r.bg_source, Path(r.merged_path).stem) for r in read_manifest(out)]
    results["plain loop, 1 process"] = plain_loop(root, tmp / "plain", pairs, args.png_level, args.convention)
    same, size_ours, size_plain = same_pixels(out, tmp / "plain", [name for *_, name in pairs])
    codec = codec_only(root, pairs, args.png_level, args.per_fg)
    results["bare codec, 1 process"] = codec
    print(f"\n{n} composites of 1920x1080, convention {args.convention}, PNG level {args.png_level}, "
          f"cv2 threads {cv2.getNumThreads()}")
    print(f"{'what':28s} {'s':>8s} {'composites/s':>13s}")
    for k, v in results.items():
        print(f"{k:28s} {v:8.2f} {n / v:13.2f}")
    print(f"pixels of every merged and bg image identical to the plain loop's: {same}; files: compose "
          f"{size_ours:.1f} MB, plain loop {size_plain:.1f} MB (PNG level {args.png_level}, "
          f"{'fast settings' if args.png_level == PNG_FAST_LEVEL else 'zlib defaults'} in compose)")
    plain = results["plain loop, 1 process"]
    best = min(v for k, v in results.items() if k.startswith("compose"))
    # Like for like first: one compose worker against the one-process loop. The loop decodes
    # each foreground again for every composite; compose decodes it once per foreground, so
    # part of this ratio is that caching, part the pipeline.
    if 1 in args.workers:
        print(f"\ncompose, 1 worker vs plain loop (1 process): {plain / results['compose, 1 worker']:.2f}x faster")
    for w in args.workers:
        if w > 1:
            print(f"compose, {w} workers vs plain loop (1 process): {plain / results[f'compose, {w} workers']:.2f}x "
                  f"faster (not like for like: {w} processes against 1)")
    print(f"best compose vs bare codec on {max(args.workers)} cores (codec / cores): "
          f"{best / (codec / max(args.workers)):.2f}x the codec cost")
    per = best / n
    print(f"estimated 43,100-composite training set: {43100 * per / 3600:.1f} h at {1 / per:.2f} composites/s")
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
