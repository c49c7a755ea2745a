"""The loss-curve picture written at the end of training."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mattecli.io import atomic
from mattecli.train.logging import read_log


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(values) < window:
        return values
    kernel = np.ones(window) / window
    head = np.array([values[: i + 1].mean() for i in range(window - 1)])
    return np.concatenate([head, np.convolve(values, kernel, mode="valid")])


def plot_loss_curve(log_path: str | os.PathLike, png_path: str | os.PathLike, title: str = "") -> Path:
    """Training loss per step (raw and smoothed) and, on a second axis, validation SAD."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_log(log_path)
    train = [(r["step"], r["loss"]) for r in records if r.get("kind") == "train" and isinstance(r.get("loss"), float)]
    val = [(r["step"], r["sad"]) for r in records if r.get("kind") == "val" and isinstance(r.get("sad"), float)]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    if train:
        steps, losses = map(np.asarray, zip(*train))
        ax.plot(steps, losses, color="#9ecae1", linewidth=0.8, label="loss")
        ax.plot(steps, _smooth(losses, max(1, len(losses) // 50)), color="#08519c", linewidth=1.6,
                label="loss (moving mean)")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if val:
        ax2 = ax.twinx()
        vs, vsad = zip(*val)
        ax2.plot(vs, vsad, "o-", color="#d94801", label="validation SAD")
        ax2.set_ylabel("validation SAD (mean per image)")
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    if handles:
        ax.legend(handles, labels, loc="upper right")
    ax.set_title(title or "training loss")
    fig.tight_layout()
    png_path = Path(png_path)
    with atomic.atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return png_path
