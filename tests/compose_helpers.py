"""Shared fixtures for the compose tests: tiny inputs written by the tests themselves."""
from __future__ import annotations

import hashlib
import math
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image


def imwrite(path: Path, arr: np.ndarray) -> None:
    """Write with OpenCV directly (RGB in), independent of mattecli's writer."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR if arr.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
    assert cv2.imwrite(str(path), arr)


def make_inputs(root: Path, n_fg: int = 3, n_bg: int = 8, seed: int = 1) -> tuple[Path, Path, Path]:
    """Random fg/alpha pairs (with 0, 255 and fractional alpha) and backgrounds both smaller and larger."""
    rng = np.random.default_rng(seed)
    fg_dir, alpha_dir, bg_dir = root / "in_fg", root / "in_alpha", root / "in_bg"
    for i in range(n_fg):
        h, w = 40 + 4 * i, 56 - 2 * i
        fg = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        alpha = rng.integers(0, 256, (h, w), dtype=np.uint8)
        alpha[: h // 4] = 0
        alpha[-h // 4:] = 255
        imwrite(fg_dir / f"fg{i}.png", fg)
        imwrite(alpha_dir / f"fg{i}.png", alpha)
    for j in range(n_bg):
        small = j % 2 == 0
        h, w = (int(rng.integers(20, 36)), int(rng.integers(24, 44))) if small else \
               (int(rng.integers(70, 90)), int(rng.integers(70, 100)))
        sub = "nested/" if j == n_bg - 1 else ""
        imwrite(bg_dir / f"{sub}bg{j}.jpg", rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    return fg_dir, alpha_dir, bg_dir


def tree_digest(root: Path, exclude: tuple[str, ...] = ("compose.json",)) -> dict[str, str]:
    """relative path -> sha256 of every output file (inputs and lock files excluded)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if not p.is_file() or rel.startswith(("in_", "samples/")) or p.name.startswith(".mattecli") \
                or rel in exclude:
            continue
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def composed_training_set(src: Path, out: Path, seed: int = 1, per_fg: int = 1) -> Path:
    """``mattecli compose --trimaps`` of the built-in samples written to ``src`` (fg/, alpha/, bg/)
    into ``out``: the small datasets the training tests learn from (narrow 1-3 iteration bands,
    one process)."""
    from typer.testing import CliRunner

    from mattecli.cli.app import app

    r = CliRunner().invoke(app, ["compose", "--fg", str(src / "fg"), "--alpha", str(src / "alpha"), "--bg", str(src / "bg"),
                                 "--out", str(out), "--per-fg", str(per_fg), "--trimaps", "--trimap-iterations", "1-3",
                                 "--seed", str(seed), "-q", "--workers", "1"])
    assert r.exit_code == 0, r.output
    return out


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    """Run ``mattecli`` in-process; returns (exit code, stderr)."""
    import pytest

    from mattecli.cli.app import main

    old = sys.argv
    sys.argv = ["mattecli", *args]
    try:
        with pytest.raises(SystemExit) as exc:
            main()
    finally:
        sys.argv = old
    captured = capsys.readouterr()
    return int(exc.value.code or 0), captured.err + captured.out


# --- independent references of the two compositing conventions --------------------------

def mmagic_reference(fg_path: Path, alpha_path: Path, bg_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(merged, cropped bg) exactly as mmagic's converter computes them."""
    fg = Image.open(fg_path).convert("RGB")
    alpha = np.array(Image.open(alpha_path).convert("RGB")) / 255.
    bg = Image.open(bg_path).convert("RGB")
    bw, bh = bg.size
    w, h = fg.size
    wratio = float(w) / bw
    hratio = float(h) / bh
    ratio = wratio if wratio > hratio else hratio
    if ratio > 1:
        bg = bg.resize((math.ceil(bw * ratio), math.ceil(bh * ratio)), Image.BICUBIC)
    bg = bg.crop((0, 0, w, h))
    merged = (np.array(fg) * alpha + np.array(bg) * (1. - alpha)).astype(np.uint8)
    return merged, np.array(bg)


def opencv_float32_reference(fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The alternative written out per pixel: own ratio/ceil, cv2 bicubic, float32 blend, int()."""
    h, w = alpha.shape
    bh, bw = bg.shape[:2]
    ratio = max(w / bw, h / bh)
    if ratio > 1:
        bg = cv2.resize(bg, (math.ceil(bw * ratio), math.ceil(bh * ratio)), interpolation=cv2.INTER_CUBIC)
    bg = bg[:h, :w]
    out = np.empty_like(fg)
    one = np.float32(1)
    for y in range(h):
        for x in range(w):
            a = np.float32(alpha[y, x]) / np.float32(255)
            for ch in range(3):
                out[y, x, ch] = int(np.float32(fg[y, x, ch]) * a + np.float32(bg[y, x, ch]) * (one - a))
    return out, bg
