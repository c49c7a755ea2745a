"""Video matting metrics: MAD, MSE, Grad, Conn per frame and the temporal dtSSD and MESSDdt.

Conventions are those of Robust Video Matting's ``evaluation/evaluate_lr.py`` (the numbers of
the RVM and BGMv2 papers): alphas are ``uint8 / 255`` in float32 and every pixel of the frame is
scored (no trimap).

- MAD = mean |p - g| x 1e3; MSE = mean (p - g)^2 x 1e3.
- Grad: both mattes min-max normalised (``cv2.normalize``), first-derivative-of-Gaussian
  gradients (sigma 1.4, 9x9, correlation, replicated borders), sum of squared magnitude
  differences / 1000 -- the ``mmagic`` branch of :mod:`mattecli.metrics.gradient` over the
  whole frame.
- Conn: levels ``np.arange(0, 1.1, 0.1)``, largest 4-connected component with OpenCV's label
  order, theta 0.15, sum over the frame / 1000 -- the ``mmagic`` branch of
  :mod:`mattecli.metrics.connectivity` over the whole frame, fed float32 alphas as RVM does.
- dtSSD(t) = sqrt(sum((p_t - p_t-1) - (g_t - g_t-1))^2 / N) x 1e2, and dtSSD(0) = 0 (the clip's
  value is the mean over all frames, frame 0 included, as RVM's spreadsheet averages it).
- MESSDdt(t) = sum_x |E_t-1(x)^2 - E_t(x + v(x))^2| / N x 1e3 with E = p - g and v the optical
  flow from g_t-1 to g_t (OpenCV Farneback on the 8-bit ground truth, rounded to whole pixels,
  targets clamped to the frame); MESSDdt(0) = 0 like dtSSD. Erofeev et al. (BMVC 2015) define
  the motion-compensated error; the Farneback parameters are those of the public MaGGIe code.
  Farneback's flow holds (dx, dy): frame t-1's pixel (y, x) moves to (y + v_y, x + v_x). MaGGIe
  builds its sampling grid with the two axes swapped (it adds dx to the row and dy to the
  column), which only agrees with the definition for motion along the diagonal; we sample
  row y + v_y, column x + v_x (tests/test_video_metrics.py shows the difference).
"""
from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from mattecli.errors import BadInput, MatteError
from mattecli.metrics.alpha import as_alpha
from mattecli.metrics.connectivity import connectivity_error
from mattecli.metrics.gradient import gradient_error

VIDEO_METRICS = ("mad", "mse", "grad", "conn", "dtssd", "messddt")
TITLES = {"mad": "MAD", "mse": "MSE", "grad": "Grad", "conn": "Conn", "dtssd": "dtSSD", "messddt": "MESSDdt"}
#: Farneback parameters (pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, flags)
FLOW_PARAMS = (0.5, 5, 10, 2, 7, 1.5, cv2.OPTFLOW_FARNEBACK_GAUSSIAN)


def check_video_metrics(metrics: Iterable[str]) -> tuple[str, ...]:
    """The requested video metrics in canonical order; unknown names are a ValueError."""
    wanted = [m.strip().lower() for m in metrics if m.strip()]
    bad = [m for m in wanted if m not in VIDEO_METRICS]
    if bad or not wanted:
        raise ValueError(f"unknown video metric(s) {', '.join(bad) or '(none)'}; "
                         f"choose from {', '.join(VIDEO_METRICS)}")
    return tuple(m for m in VIDEO_METRICS if m in wanted)


# --- one frame, one pair of frames --------------------------------------------------------

def frame_metric(name: str, pred: np.ndarray, gt: np.ndarray) -> float:
    """MAD, MSE, Grad or Conn of one frame (float32 alphas in [0, 1]) in RVM's conventions."""
    if name == "mad":
        return float(np.abs(pred - gt).mean(dtype=np.float64)) * 1e3
    if name == "mse":
        return float(np.square(pred - gt).mean(dtype=np.float64)) * 1e3
    whole = np.ones(gt.shape, bool)
    if name == "grad":
        return gradient_error(pred, gt, whole, convention="mmagic")
    if name == "conn":
        return connectivity_error(pred, gt, whole, convention="mmagic")
    raise ValueError(f"{name} is not a per-frame metric")


def dtssd(pred: np.ndarray, pred_prev: np.ndarray, gt: np.ndarray, gt_prev: np.ndarray) -> float:
    """RVM's dtSSD of one frame against the previous one (x 1e2)."""
    change = (pred - pred_prev) - (gt - gt_prev)
    return float(np.sqrt(np.square(change, dtype=np.float64).sum() / gt.size)) * 1e2


def ground_truth_flow(gt_prev: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Farneback flow (HxWx2, (dx, dy)) from the previous ground-truth matte to this one."""
    a = np.clip(gt_prev * 255.0 + 0.5, 0, 255).astype(np.uint8)
    b = np.clip(gt * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.calcOpticalFlowFarneback(a, b, None, *FLOW_PARAMS)


def warp_by_flow(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` sampled at (y + round(dy), x + round(dx)), clamped to the frame: the value each
    previous-frame pixel lands on."""
    h, w = image.shape
    step = np.rint(flow).astype(np.int64)
    rows = np.clip(np.arange(h)[:, None] + step[:, :, 1], 0, h - 1)
    cols = np.clip(np.arange(w)[None, :] + step[:, :, 0], 0, w - 1)
    return image[rows, cols]


def messddt(pred: np.ndarray, pred_prev: np.ndarray, gt: np.ndarray, gt_prev: np.ndarray,
            flow: np.ndarray | None = None) -> float:
    """Motion-compensated change of the squared error between two frames (x 1e3)."""
    flow = ground_truth_flow(gt_prev, gt) if flow is None else flow
    err_prev = np.square(pred_prev - gt_prev, dtype=np.float64)
    err_now = warp_by_flow(np.square(pred - gt, dtype=np.float64), flow)
    return float(np.abs(err_prev - err_now).mean()) * 1e3


# --- a clip -----------------------------------------------------------------------------

@dataclass
class VideoScores:
    """Per-frame scores of a clip (frame 0's temporal scores are 0, as in RVM)."""

    name: str
    metrics: tuple[str, ...]
    frames: list[dict[str, float]] = field(default_factory=list)

    def mean(self) -> dict[str, float]:
        return {m: float(np.mean([f[m] for f in self.frames])) for m in self.metrics} if self.frames else {}

    def to_json(self) -> dict:
        return {"video": self.name, "count": len(self.frames), "region": "all", "convention": "rvm",
                "mean": self.mean(), "frames": [{"frame": i, **f} for i, f in enumerate(self.frames)]}

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["frame", *self.metrics])
        for i, f in enumerate(self.frames):
            writer.writerow([i, *(repr(f[m]) for m in self.metrics)])
        return out.getvalue()


def score_frames(pairs: Iterable[tuple[np.ndarray, np.ndarray]], metrics: Iterable[str] = VIDEO_METRICS,
                 name: str = "video", on_frame: Callable[[int], None] | None = None) -> VideoScores:
    """Score (prediction, ground truth) frames in order; mattes uint8, uint16 or float in [0, 1].

    Streams: only the previous pair is kept, so a clip of any length fits in memory.
    """
    names = check_video_metrics(metrics)
    scores = VideoScores(name, names)
    prev: tuple[np.ndarray, np.ndarray] | None = None
    for index, (pred_raw, gt_raw) in enumerate(pairs):
        pred, gt = as_alpha(pred_raw, np.float32), as_alpha(gt_raw, np.float32)
        if pred.shape != gt.shape:
            raise MatteError(f"frame {index}: prediction is {pred.shape[1]}x{pred.shape[0]}, "
                             f"ground truth {gt.shape[1]}x{gt.shape[0]}")
        row = {m: frame_metric(m, pred, gt) for m in names if m not in ("dtssd", "messddt")}
        if "dtssd" in names:
            row["dtssd"] = 0.0 if prev is None else dtssd(pred, prev[0], gt, prev[1])
        if "messddt" in names:
            row["messddt"] = 0.0 if prev is None else messddt(pred, prev[0], gt, prev[1])
        scores.frames.append({m: row[m] for m in names})
        prev = (pred, gt)
        if on_frame is not None:
            on_frame(index)
    return scores


# --- reading clips: a video file or a folder of frames -------------------------------------

def matte_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """A matte clip's frames as uint8 HxW: a video file (decoded by :mod:`mattecli.io.video`) or
    a folder of images, in name order."""
    from mattecli.io.images import list_images, read_alpha
    from mattecli.io.video import read_mattes

    path = Path(path)
    if path.is_dir():
        files = list_images(path)
        if not files:
            raise BadInput(path, "holds no image frames")
        for file in files:
            try:
                yield read_alpha(file)
            except MatteError:
                raise
            except (OSError, ValueError) as exc:
                raise BadInput(file, f"cannot read the frame: {str(exc).splitlines()[0][:160]}") from None
        return
    if not path.exists():
        raise BadInput(path, "no such file or folder")
    yield from read_mattes(path)


def count_frames(path: str | os.PathLike) -> int | None:
    """Frame count when cheap to know (a folder; a video's estimate), else None."""
    from mattecli.io.images import list_images
    from mattecli.io.video import probe_video

    path = Path(path)
    if path.is_dir():
        return len(list_images(path))
    try:
        return probe_video(path).frames_estimate or None
    except MatteError:
        return None


def paired_frames(pred: str | os.PathLike, gt: str | os.PathLike) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(prediction, ground truth) frames in order; a clip shorter than the other is one line."""
    preds, gts = matte_frames(pred), matte_frames(gt)
    index = 0
    while True:
        p = next(preds, None)
        g = next(gts, None)
        if p is None and g is None:
            return
        if p is None or g is None:
            short, other = (pred, gt) if p is None else (gt, pred)
            raise BadInput(short, f"has {index} frames, fewer than {other}")
        if p.shape != g.shape:
            raise BadInput(pred, f"frame {index} is {p.shape[1]}x{p.shape[0]} but the ground truth's is "
                                 f"{g.shape[1]}x{g.shape[0]}")
        yield p, g
        index += 1


def score_video(pred: str | os.PathLike, gt: str | os.PathLike, metrics: Iterable[str] = VIDEO_METRICS,
                on_frame: Callable[[int], None] | None = None) -> VideoScores:
    """Score a predicted matte clip against its ground truth (video files or frame folders)."""
    return score_frames(paired_frames(pred, gt), metrics, Path(pred).name, on_frame)


def plot_per_frame(scores: VideoScores | dict[str, VideoScores], path: str | os.PathLike,
                   metrics: Iterable[str] | None = None, title: str = "") -> Path:
    """Per-frame error curves, one panel per metric (one line per clip when given a dict of
    labelled scores, e.g. two methods on one clip), written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from mattecli.io.atomic import atomic_path

    series = scores if isinstance(scores, dict) else {"": scores}
    first = next(iter(series.values()))
    shown = [m for m in (metrics or first.metrics) if all(m in s.metrics for s in series.values())]
    fig, axes = plt.subplots(len(shown), 1, figsize=(7, 1.6 + 1.3 * len(shown)), dpi=100, sharex=True,
                             squeeze=False)
    colours = ("#08519c", "#d94801", "#238b45", "#6a51a3")
    for ax, m in zip(axes[:, 0], shown):
        for k, (label, s) in enumerate(series.items()):
            mean = s.mean()[m]
            text = f"{label + ': ' if label else ''}mean {mean:.3g}"
            ax.plot(np.arange(len(s.frames)), [f[m] for f in s.frames], linewidth=1.2,
                    color=colours[k % len(colours)], label=text)
            ax.axhline(mean, color=colours[k % len(colours)], linewidth=0.7, linestyle="--")
        ax.set_ylabel(TITLES[m])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("frame")
    axes[-1, 0].xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(title or f"{first.name}: per-frame error", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
