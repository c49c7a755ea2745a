"""Error against number of clicks: a simulated user for click matting (``eval --simulate-clicks``).

Interactive segmentation reports NoC@IoU (RITM's protocol); matting papers report no click
protocol, so this one is ours (docs/click.md), built the same way:

1. the first click is a foreground click at the deepest point of the true foreground
   (alpha >= 0.5; maximum of the distance transform, the image border counting as outside);
2. the method mattes the image with the clicks so far; SAD, MSE, Grad and Conn are recorded
   over **every pixel** (trimap-free convention; the prediction rounded to 8 bits as a
   written PNG would be);
3. the next click goes to the deepest point of the larger error region at alpha 0.5 (true
   foreground predicted below 0.5: a foreground click; true background predicted at or above
   0.5: a background click; ties go to the foreground), and so on up to N clicks. When no
   pixel is wrong at 0.5 the user stops: later click counts repeat the last scores.

Everything is deterministic (no random draw anywhere). The summary "clicks to reach
SAD <= X" is, per image, the first click count whose SAD is at most X (N + 1 when never,
as NoC counts a failure as the maximum).
"""
from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Sequence

import numpy as np

from mattecli.data.clicks import Click, first_click, next_click
from mattecli.data.manifest import read_manifest, resolve
from mattecli.data.trimap import UNKNOWN
from mattecli.errors import BadInput, MatteError
from mattecli.io.images import read_alpha_float, read_rgb
from mattecli.metrics import compute_metrics
from mattecli.metrics.pairing import index_folder


@dataclass(frozen=True)
class ProtocolImage:
    name: str
    image_path: Path
    gt_path: Path


def images_from_folders(image_dir: str | os.PathLike, gt_dir: str | os.PathLike) -> tuple[list[ProtocolImage], list[str]]:
    """Images paired with ground-truth alphas by relative path without extension; (pairs, missing lines)."""
    images, gts = index_folder(image_dir), index_folder(gt_dir)
    pairs, missing = [], []
    for key in sorted(images):
        if key in gts:
            pairs.append(ProtocolImage(key, images[key], gts[key]))
        else:
            missing.append(f"{key}: no ground truth in {gt_dir}")
    return pairs, missing


def images_from_dataset(data: str | os.PathLike) -> list[ProtocolImage]:
    """The composites of a ``mattecli compose`` dataset with their alphas."""
    out = []
    for r in read_manifest(data):
        if not r.merged_path:
            raise BadInput(data, f"{r.name} has no merged image in the manifest")
        out.append(ProtocolImage(r.name, resolve(data, r.merged_path), resolve(data, r.alpha_path)))
    return out


@dataclass
class ImageCurve:
    name: str
    scores: list[dict[str, float]] = field(default_factory=list)  # index n-1: after n clicks
    clicks: list[Click] = field(default_factory=list)
    stopped_at: int | None = None  # click count after which nothing was wrong at 0.5
    seconds: list[float] = field(default_factory=list)  # matting time per click (batch share)


@dataclass
class ClickCurve:
    max_clicks: int
    metrics: tuple[str, ...]
    images: list[ImageCurve] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def mean(self, n: int) -> dict[str, float]:
        """Mean scores over the images after ``n`` clicks (1-based)."""
        return {m: float(np.mean([im.scores[n - 1][m] for im in self.images])) for m in self.metrics}

    def clicks_to_reach(self, target_sad: float) -> list[int]:
        """Per image: the first click count with SAD <= target (max_clicks + 1 when never)."""
        out = []
        for im in self.images:
            reached = [n for n, s in enumerate(im.scores, 1) if s["sad"] <= target_sad]
            out.append(reached[0] if reached else self.max_clicks + 1)
        return out

    def summary(self, target_sad: float) -> dict[str, float]:
        counts = self.clicks_to_reach(target_sad)
        return {"target_sad": target_sad, "mean_clicks": float(np.mean(counts)) if counts else float("nan"),
                "never_reached": int(sum(c > self.max_clicks for c in counts)), "images": len(counts)}

    def seconds_per_click(self) -> float:
        times = [t for im in self.images for t in im.seconds]
        return float(np.mean(times)) if times else float("nan")

    def to_json(self, target_sad: float) -> dict:
        return {
            "protocol": "deepest point of the larger error region at alpha 0.5; all pixels scored",
            "max_clicks": self.max_clicks, "metrics": list(self.metrics),
            "mean": [{"clicks": n, **self.mean(n)} for n in range(1, self.max_clicks + 1)] if self.images else [],
            "summary": self.summary(target_sad), "seconds_per_click": self.seconds_per_click(),
            "images": [{"name": im.name, "stopped_at": im.stopped_at,
                        "clicks": [{"x": c.x, "y": c.y, "label": c.label} for c in im.clicks],
                        "scores": [{"clicks": n, **s} for n, s in enumerate(im.scores, 1)]} for im in self.images],
            "failures": self.failures,
        }

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["image", "clicks", *self.metrics])
        for im in self.images:
            for n, s in enumerate(im.scores, 1):
                writer.writerow([im.name, n, *(f"{s[m]:.6g}" for m in self.metrics)])
        return buf.getvalue()


def _score(alpha: np.ndarray, gt: np.ndarray, metrics: Sequence[str], convention: str) -> dict[str, float]:
    quantised = (np.round(np.clip(alpha, 0, 1) * 255) / 255).astype(np.float32)
    return compute_metrics(quantised, gt, np.full(gt.shape, UNKNOWN, np.uint8), metrics, convention)


#: clicks a simulated user makes at most per image (the studio's bound too: mattecli.studio.session.MAX_CLICKS)
MAX_SIMULATED_CLICKS = 1000


def simulate(method, images: Sequence[ProtocolImage], max_clicks: int, metrics: Sequence[str] = ("sad", "mse", "grad", "conn"),
             convention: str = "matlab", threshold: float = 0.5,
             on_round: Callable[[int], None] | None = None,
             keep: Callable[[ImageCurve, np.ndarray, np.ndarray, dict], None] | None = None) -> ClickCurve:
    """Run the protocol with ``method`` (a :class:`mattecli.inference.methods.Method` taking clicks).

    Each round mattes every still-active image once (a learned method batches equal sizes).
    ``keep(curve, image, alpha, extras)`` sees each image's result after its last click (for
    pictures); ``on_round(n)`` is called after round n.
    """
    import time

    from mattecli.inference.batch import Item, Job

    if max_clicks < 1:
        raise MatteError("--simulate-clicks needs at least 1 click")
    if max_clicks > MAX_SIMULATED_CLICKS:
        raise MatteError(f"--simulate-clicks {max_clicks}: at most {MAX_SIMULATED_CLICKS} (each click re-mattes every "
                         "image; published curves stop at 20)")
    method.check_guidance("clicks")
    method.want_foreground = False
    curve = ClickCurve(max_clicks, tuple(metrics))
    state: dict[str, tuple[ProtocolImage, np.ndarray, np.ndarray, ImageCurve]] = {}
    for p in images:
        try:
            image, gt = read_rgb(p.image_path), read_alpha_float(p.gt_path)
            if gt.shape != image.shape[:2]:
                raise BadInput(p.gt_path, f"alpha is {gt.shape[1]}x{gt.shape[0]}, the image "
                                          f"{image.shape[1]}x{image.shape[0]}")
        except MatteError as exc:
            curve.failures.append(str(exc))
            continue
        click = first_click(gt, threshold)
        if click is None:
            curve.failures.append(f"{p.gt_path}: no foreground (alpha >= {threshold}) to click on")
            continue
        state[p.name] = (p, image, gt, ImageCurve(p.name, clicks=[click]))
    for n in range(1, max_clicks + 1):
        active = [v for v in state.values() if v[3].stopped_at is None]
        jobs = [Job(Item(p.image_path, PurePosixPath(p.name), PurePosixPath(p.name)), image, list(c.clicks), "clicks")
                for p, image, gt, c in active]
        by_name = {v[0].name: v for v in active}
        t0 = time.perf_counter()
        results = list(method.run(iter(jobs))) if jobs else []
        share = (time.perf_counter() - t0) / max(len(jobs), 1)
        for job, result in results:
            p, image, gt, c = by_name[job.item.rel.as_posix()]
            if isinstance(result, Exception):
                curve.failures.append(f"{p.image_path}: {result}")
                del state[p.name]
                continue
            alpha, _fg, *rest = result
            extras = rest[0] if rest else {}
            c.scores.append(_score(alpha, gt, metrics, convention))
            c.seconds.append(share)
            nxt = next_click(alpha, gt, threshold) if n < max_clicks else None
            if n < max_clicks and nxt is None:
                c.stopped_at = n
            if nxt is not None:
                c.clicks.append(nxt)
            if keep is not None and (n == max_clicks or nxt is None):
                keep(c, image, alpha, extras)
        for p, image, gt, c in state.values():  # users who stopped: scores stay
            while len(c.scores) < n:
                c.scores.append(dict(c.scores[-1]))
        if on_round is not None:
            on_round(n)
    curve.images = [v[3] for v in state.values()]
    return curve


def plot_curve(curves: dict[str, ClickCurve], path: str | os.PathLike, metric: str = "sad",
               target_sad: float | None = None) -> None:
    """Mean ``metric`` against clicks, one line per method; written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mattecli.io.atomic import atomic_path

    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    for label, curve in curves.items():
        if not curve.images:
            continue
        xs = list(range(1, curve.max_clicks + 1))
        ax.plot(xs, [curve.mean(n)[metric] for n in xs], marker="o", label=label)
    if target_sad is not None and metric == "sad":
        ax.axhline(target_sad, color="grey", linestyle="--", linewidth=1, label=f"SAD = {target_sad:g}")
    ax.set_xlabel("clicks")
    ax.set_ylabel(f"mean {metric.upper()}" + (" / 1000" if metric in ("sad", "grad", "conn") else ""))
    ax.set_title(f"{metric.upper()} against simulated clicks")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format=Path(path).suffix.lstrip(".") or "png")
    plt.close(fig)
