"""Tiny synthetic clips for the video tests, made with imageio-ffmpeg's own ffmpeg binary."""
from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from mattecli.io.video import VideoFormat, VideoWriter, ffmpeg_exe

NTSC = Fraction(30000, 1001)
#: Lossless RGB (FFV1 in Matroska, no audio): test sources whose pixels are known exactly.
LOSSLESS_RGB = VideoFormat(".mkv", "ffv1", "rgb24", "bgr0", (), ("*",), None)


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


def make_pattern_clip(path: Path, frames: int = 12, size: tuple[int, int] = (64, 48), audio: bool = True) -> Path:
    """testsrc2 at 30000/1001 fps, exactly ``frames`` frames, with a 440 Hz sine track (AAC)."""
    w, h = size
    args = ["-f", "lavfi", "-i", f"testsrc2=size={w}x{h}:rate=30000/1001"]
    if audio:
        args += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=1"]
    args += ["-frames:v", str(frames), "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv444p"]
    if audio:
        args += ["-c:a", "aac"]
    ffmpeg(*args, str(path))
    return path


def decode_raw(path: Path, pix_fmt: str, channels: int, size: tuple[int, int], decoder: str | None = None) -> np.ndarray:
    """All frames, decoded by a separate plain ffmpeg call (independent of mattecli's reader)."""
    pre = ["-c:v", decoder] if decoder else []
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", *pre, "-i", str(path),
                          "-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", pix_fmt, "-"],
                         check=True, capture_output=True).stdout
    w, h = size
    return np.frombuffer(out, np.uint8).reshape(-1, h, w, channels)


def textured_plate(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth random colour texture with some corners (ORB needs them)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(2, h // 8), max(2, w // 8), 3), dtype=np.uint8)
    plate = cv2.resize(cv2.GaussianBlur(small, (0, 0), 1.0), (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(max(4, (h * w) // 4000)):
        x0, y0 = int(rng.integers(0, w - 8)), int(rng.integers(0, h - 8))
        x1, y1 = x0 + int(rng.integers(4, max(5, w // 8))), y0 + int(rng.integers(4, max(5, h // 8)))
        cv2.rectangle(plate, (x0, y0), (x1, y1), tuple(int(c) for c in rng.integers(0, 256, 3)), -1)
    return plate


def disc_alpha(h: int, w: int, cx: float, cy: float, radius: float, soft: float = 2.0) -> np.ndarray:
    """float32 alpha of a disc with a linear edge ``soft`` px wide."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.hypot(xx - cx, yy - cy)
    return np.clip((radius - d) / soft + 0.5, 0.0, 1.0).astype(np.float32)


def write_composited_clip(path: Path, plate: np.ndarray, colour: np.ndarray, alphas: list[np.ndarray],
                          fps: Fraction = NTSC) -> Path:
    """A flat ``colour`` foreground over ``plate`` with one float alpha per frame, lossless."""
    h, w = plate.shape[:2]
    with VideoWriter(path, LOSSLESS_RGB, (w, h), fps) as writer:
        for alpha in alphas:
            a = alpha[:, :, None]
            writer.write(np.clip(a * colour + (1 - a) * plate + 0.5, 0, 255).astype(np.uint8))
    return path
