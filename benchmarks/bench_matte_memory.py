"""Memory of `mattecli matte --weights` over a long batch: 1,000 images must not grow the process.

Writes N small generated images with trimaps, saves a tiny stand-in network (registered
here as the family ``bench_memory_standin``) with ``save_checkpoint``, and mattes the
folder through the same code as ``mattecli matte --weights`` (``build_method`` ->
``LearnedMethod``, ``run_matte``: lazy reading, batching of equal sizes, foreground
estimation per batch, atomic writes). The resident set size (VmRSS from
/proc/self/status, Linux only) is sampled every ``--every`` images and printed as a curve;
the growth from the first sample to the last is the figure that matters.

Run by hand (not part of the test suite):

    python benchmarks/bench_matte_memory.py [--images 1000] [--size 96] [--batch-size 8]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mattecli.data.trimap import trimap_from_alpha
from mattecli.inference.batch import MatteOptions, run_matte
from mattecli.inference.methods import build_method
from mattecli.io.checkpoint import save_checkpoint
from mattecli.io.images import write_image
from mattecli.families.registry import register_family


class StandInNet(nn.Module):
    """Two 3x3 convolutions over image + trimap: enough to allocate real activations per batch."""

    family = "bench_memory_standin"
    guidance = "trimap"

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(4, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 1, 3, padding=1))

    def predict(self, image: torch.Tensor, guidance: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"alpha": torch.sigmoid(self.features(torch.cat([image, guidance], dim=1)))}


@register_family("bench_memory_standin")
def _build(width: int = 16) -> nn.Module:
    return StandInNet(width)


def rss_mib() -> float:
    """Resident set size of this process in MiB, from /proc/self/status (VmRSS, in kB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


def write_inputs(folder: Path, count: int, size: int, seed: int = 0) -> None:
    """``count`` noisy images with a soft disc, in 10 subfolders, and a trimap for each."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    for i in range(count):
        cy, cx = rng.uniform(0.35, 0.65, 2) * size
        r = rng.uniform(0.15, 0.3) * size
        alpha = np.clip(r - np.hypot(yy - cy, xx - cx), 0, 1)
        fg, bg = rng.integers(0, 256, 3), rng.integers(0, 256, (size, size, 3))
        image = np.clip(alpha[:, :, None] * fg + (1 - alpha[:, :, None]) * bg, 0, 255).astype(np.uint8)
        rel = Path(f"part{i % 10}") / f"img{i:05d}.png"
        write_image(folder / "images" / rel, image)
        write_image(folder / "trimaps" / rel, trimap_from_alpha((alpha * 255).astype(np.uint8), 3, 1, 3, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--size", type=int, default=96, help="side of the square images, px")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--every", type=int, default=100, help="sample RSS every this many images")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mattecli-mem-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        write_inputs(root, args.images, args.size)
        save_checkpoint(root / "net.pt", {"family": "bench_memory_standin", "model_config": {"width": 16},
                                          "model": StandInNet(16).state_dict()})
        print(f"wrote {args.images} {args.size}x{args.size} images + trimaps in {time.perf_counter() - t0:.1f} s")

        method = build_method(root / "net.pt", "classical", "cpu", batch_size=args.batch_size)
        print(method.describe())
        options = MatteOptions(input=root / "images", out=root / "out", outputs=("alpha", "rgba"),
                               trimap=root / "trimaps")
        samples: list[tuple[int, float]] = [(0, rss_mib())]
        count = 0

        def on_item(item, status: str) -> None:
            nonlocal count
            count += 1
            if count % args.every == 0:
                samples.append((count, rss_mib()))

        t0 = time.perf_counter()
        summary = run_matte(options, method, on_item=on_item)
        seconds = time.perf_counter() - t0
    if summary.failures or summary.done != args.images:
        raise SystemExit(f"expected {args.images} matted, got {summary.done} and {len(summary.failures)} failures")

    print(f"{summary.done} images in {seconds:.1f} s ({summary.done / seconds:.1f} img/s), "
          f"batch {args.batch_size}, outputs alpha,rgba")
    print("images  RSS MiB")
    for n, mib in samples:
        print(f"{n:6d}  {mib:7.1f}")
    first, last = samples[1][1], samples[-1][1]
    peak = max(m for _, m in samples[1:])
    print(f"growth from image {samples[1][0]} to {samples[-1][0]}: {last - first:+.1f} MiB "
          f"(peak {peak:.1f} MiB; before the first image {samples[0][1]:.1f} MiB)")


if __name__ == "__main__":
    main()
