"""Classical matting: mattecli's closed form vs pymatting's estimate_alpha_cf, side by side.

Runs both on the alphamatting.com training set (image/, alpha/, trimap1/) in one process,
scores both with mattecli.metrics.compute_metrics (MATLAB conventions: SAD/1000, MSE,
Grad/1000, Conn/1000 over the unknown region), and times them per image (wall and CPU
time). pymatting's first-call Numba JIT is measured separately, in a subprocess with an
empty Numba cache, so it does not pollute the per-image times. Also times the foreground
estimators (mattecli's torch version vs pymatting's estimate_foreground_ml) on the GT alpha.

End to end (``--e2e``, on by default): wall time of ``python -m mattecli matte IMAGES --trimap
TRIMAPS --output alpha`` in a fresh process (start-up, decoding, solve, writing PNGs) against
pymatting warm and in-process over the same files (load_image, estimate_alpha_cf, save_image),
reported beside the solve-only ratio.

    pip install pymatting   # bench-only dependency
    python benchmarks/bench_classical.py [--data DIR] [--trimap trimap1] [--limit N]
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "real" / "alphamatting"
JIT_PROBE = """
import time, numpy as np
t = time.perf_counter()
from pymatting import estimate_alpha_cf, estimate_foreground_ml
t_import = time.perf_counter() - t
img = np.random.default_rng(0).random((32, 32, 3)); tri = np.zeros((32, 32)); tri[:, 16:] = 1; tri[8:24, 12:20] = 0.5
t = time.perf_counter(); a = estimate_alpha_cf(img, tri); estimate_foreground_ml(img, a)
print(t_import, time.perf_counter() - t)
"""


def timed(fn, *args, **kwargs):
    w, c = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - w, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--trimap", default="trimap1")
    ap.add_argument("--limit", type=int, default=0, help="only the first N images (0: all)")
    ap.add_argument("--no-e2e", dest="e2e", action="store_false", help="skip the end-to-end comparison")
    ap.add_argument("--rounds", type=int, default=1,
                    help="end to end: alternate pymatting and mattecli this many times (A/B/A/B against load drift)")
    ap.add_argument("--e2e-only", action="store_true",
                    help="only the end-to-end comparison (pymatting warmed up on one image first)")
    ap.add_argument("--workers", type=int, default=None,
                    help="end to end: `matte --workers` (default: the CLI's, every core; 1: a single process)")
    ap.add_argument("--no-jit-probe", dest="jit_probe", action="store_false",
                    help="skip timing pymatting's cold start (numba compilation in a fresh process)")
    args = ap.parse_args()

    from mattecli.inference.closed_form import closed_form_alpha, solver_backend
    from mattecli.inference.foreground import estimate_foreground
    from mattecli.io.images import read_alpha, read_rgb
    from mattecli.metrics import compute_metrics

    if args.jit_probe:
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache)
            out = subprocess.run([sys.executable, "-c", JIT_PROBE], env=env, capture_output=True, text=True, check=True)
            jit_import, jit_first = (float(v) for v in out.stdout.split()[-2:])
        print(f"pymatting cold start (empty Numba cache): import {jit_import:.1f} s, "
              f"first alpha+foreground call {jit_first:.1f} s")

    from pymatting import estimate_alpha_cf, estimate_foreground_ml

    names = sorted(p.name for p in (args.data / "image").glob("*.png"))
    if args.limit:
        names = names[:args.limit]
    rows = []
    if args.e2e_only:
        img, tri = read_rgb(args.data / "image" / names[0]), read_alpha(args.data / args.trimap / names[0])
        estimate_alpha_cf(img / 255.0, tri / 255.0)  # compile (or load) the numba code outside the timing
        end_to_end(args.data, args.trimap, names, None, args.rounds, args.workers)
        return
    for name in names:
        img = read_rgb(args.data / "image" / name)
        gt = read_alpha(args.data / "alpha" / name)
        tri = read_alpha(args.data / args.trimap / name)
        ours, w_ours, c_ours = timed(closed_form_alpha, img, trimap=tri)
        ref, w_ref, c_ref = timed(estimate_alpha_cf, img / 255.0, tri / 255.0)
        m_ours = compute_metrics(ours, gt, tri)
        m_ref = compute_metrics(ref.astype(np.float32), gt, tri)
        gt_f = gt.astype(np.float32) / 255.0
        _, wf_ours, _ = timed(estimate_foreground, img, gt_f)
        _, wf_ref, _ = timed(estimate_foreground_ml, img / 255.0, gt_f)
        rows.append((name, m_ours, m_ref, w_ours, w_ref, c_ours, c_ref, wf_ours, wf_ref,
                     float(np.abs(ours - ref).max())))
        print(f"{name}: ours {w_ours:.2f} s (cpu {c_ours:.2f}), pymatting {w_ref:.2f} s (cpu {c_ref:.2f}); "
              f"SAD {m_ours['sad']:.3f} vs {m_ref['sad']:.3f}; max |diff| {rows[-1][-1]:.1e}", flush=True)

    n = len(rows)
    print(f"\n{n} images, {args.trimap}, solver {solver_backend()}\n")
    print("| method | SAD | MSE | Grad | Conn | wall s/img | CPU s/img | foreground s/img |")
    print("|---|---|---|---|---|---|---|---|")
    for label, mi, wi, ci, fi in (("mattecli closed form", 1, 3, 5, 7), ("pymatting estimate_alpha_cf", 2, 4, 6, 8)):
        mean = {k: np.mean([r[mi][k.lower()] for r in rows]) for k in ("SAD", "MSE", "Grad", "Conn")}
        print(f"| {label} | {mean['SAD']:.4f} | {mean['MSE']:.6f} | {mean['Grad']:.4f} | {mean['Conn']:.4f} | "
              f"{np.mean([r[wi] for r in rows]):.3f} | {np.mean([r[ci] for r in rows]):.3f} | "
              f"{np.mean([r[fi] for r in rows]):.3f} |")
    if args.e2e:
        end_to_end(args.data, args.trimap, names, rows, args.rounds, args.workers)
    speed = [r[6] / r[5] for r in rows]
    print(f"\nCPU-time speed-up per image: mean {np.mean(speed):.2f}x, min {min(speed):.2f}x, max {max(speed):.2f}x; "
          f"ratio of mean times {np.mean([r[6] for r in rows]) / np.mean([r[5] for r in rows]):.2f}x; "
          f"largest alpha difference {max(r[-1] for r in rows):.1e}")


def file_metrics(folder: Path, data: Path, trimap_dir: str, names: list[str]) -> np.ndarray:
    """Mean SAD/MSE/Grad/Conn (MATLAB conventions, unknown region) of the alpha PNGs in ``folder``."""
    from mattecli.io.images import read_alpha
    from mattecli.metrics import compute_metrics

    rows = []
    for name in names:
        m = compute_metrics(read_alpha(folder / name), read_alpha(data / "alpha" / name),
                            read_alpha(data / trimap_dir / name))
        rows.append([m["sad"], m["mse"], m["grad"], m["conn"]])
    return np.mean(rows, axis=0)


def end_to_end(data: Path, trimap_dir: str, names: list[str], rows: list, rounds: int = 1,
               workers: int | None = None) -> None:
    """Wall time, files in and alpha PNGs out: the mattecli CLI (fresh process) vs pymatting warm,
    alternated ``rounds`` times (pymatting, mattecli, pymatting, ...) so load drift hits both."""
    import shutil

    from pymatting import estimate_alpha_cf, load_image, save_image

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for sub, src in (("images", "image"), ("trimaps", trimap_dir)):
            (root / sub).mkdir()
            for name in names:
                shutil.copyfile(data / src / name, root / sub / name)
        times = []
        for r in range(rounds):
            (root / f"pym{r}").mkdir()
            start, cpu_start = time.perf_counter(), time.process_time()
            for name in names:
                image = load_image(str(root / "images" / name), "RGB")
                trimap = load_image(str(root / "trimaps" / name), "GRAY")
                save_image(str(root / f"pym{r}" / name), estimate_alpha_cf(image, trimap))
            pym, pym_cpu = time.perf_counter() - start, time.process_time() - cpu_start
            start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run([sys.executable, "-m", "mattecli", "matte", str(root / "images"), "--trimap",
                            str(root / "trimaps"), "--out", str(root / f"ours{r}"), "--output", "alpha",
                            *(["--workers", str(workers)] if workers else [])],
                           check=True, capture_output=True)
            ours, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
            ours_cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
            times.append((ours, pym))
            print(f"end to end, round {r + 1}: mattecli CLI {ours:.1f} s (CPU {ours_cpu:.1f} s), pymatting {pym:.1f} s "
                  f"(CPU {pym_cpu:.1f} s): {pym / ours:.2f}x wall, {pym_cpu / ours_cpu:.2f}x CPU "
                  f"(load average {os.getloadavg()[0]:.1f})", flush=True)
        # the written files, scored: the end-to-end run must be as accurate as pymatting's
        for label, folder in (("mattecli CLI", root / "ours0" / "alpha"), ("pymatting", root / "pym0")):
            m = file_metrics(folder, data, trimap_dir, names)
            print(f"end to end, files written by {label}: SAD {m[0]:.4f}, MSE {m[1]:.6f}, Grad {m[2]:.4f}, "
                  f"Conn {m[3]:.4f}")
    ours, pym = sum(t[0] for t in times), sum(t[1] for t in times)
    solve = f"; solve only (wall, mean times): {np.mean([r[4] for r in rows]) / np.mean([r[3] for r in rows]):.2f}x" \
        if rows else ""
    print(f"\nend to end, {len(names)} images, wall: mattecli CLI (fresh process, start-up and I/O included) "
          f"{ours / rounds:.1f} s, pymatting warm in-process {pym / rounds:.1f} s (means of {rounds} round(s)): "
          f"{pym / ours:.2f}x; per round {', '.join(f'{p / o:.2f}x' for o, p in times)}{solve}")

if __name__ == "__main__":
    main()
