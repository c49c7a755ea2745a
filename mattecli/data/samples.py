"""Built-in procedural samples: foregrounds with hard matting cases, and backgrounds.

Each foreground has a solid body with holes, hair-like strands (sub-pixel, so their alpha
is fractional), a motion-blurred limb and a semi-transparent veil: the structures that
make matting hard. Everything is drawn from a seed, so the same seed gives the same bytes.
They feed the README's first command, the demo, the tests and the benchmarks; they are
not a substitute for real data.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mattecli.errors import MatteError
from mattecli.io.images import max_pixels, write_image
from mattecli.seeding import rng_for

SUPERSAMPLE = 4


@dataclass(frozen=True)
class SampleSet:
    fg_dir: Path
    alpha_dir: Path
    bg_dir: Path
    names: list[str]
    backgrounds: list[str]


def _smooth_field(rng: np.random.Generator, h: int, w: int, cells: int, channels: int) -> np.ndarray:
    """Low-frequency random field in [0, 1]: random grid upsampled bicubically."""
    grid = rng.random((cells, cells, channels)).astype(np.float32)
    field = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(field.reshape(h, w, channels), 0.0, 1.0)


def _blob_mask(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Union of a few rotated ellipses around the centre, as uint8 {0, 255}."""
    mask = np.zeros((h, w), np.uint8)
    cx, cy = w / 2, h / 2
    for _ in range(int(rng.integers(2, 4))):
        centre = (int(cx + rng.normal(0, w * 0.06)), int(cy + rng.normal(0, h * 0.06)))
        axes = (int(w * rng.uniform(0.14, 0.26)), int(h * rng.uniform(0.16, 0.3)))
        cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 255, -1, cv2.LINE_AA)
    return mask


def _strands(rng: np.random.Generator, body: np.ndarray, count: int) -> np.ndarray:
    """Thin curved strands growing outward from the body's edge (alpha in [0, 255])."""
    h, w = body.shape
    layer = np.zeros((h, w), np.uint8)
    contours, _ = cv2.findContours((body > 127).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return layer
    edge = np.concatenate([c[:, 0, :] for c in contours])
    centre = edge.mean(axis=0)
    thickness = max(1, SUPERSAMPLE // 2)
    for _ in range(count):
        start = edge[int(rng.integers(len(edge)))].astype(np.float64)
        direction = start - centre
        direction /= np.linalg.norm(direction) + 1e-9
        length = rng.uniform(0.08, 0.22) * min(h, w)
        curl = rng.normal(0, 0.6)
        pts = [start - direction * length * 0.15]
        heading = np.arctan2(direction[1], direction[0])
        for _ in range(24):
            heading += curl / 24 + rng.normal(0, 0.05)
            pts.append(pts[-1] + length / 24 * np.array([np.cos(heading), np.sin(heading)]))
        poly = np.round(np.array(pts) * 16).astype(np.int32)
        cv2.polylines(layer, [poly], False, int(rng.integers(150, 256)), thickness, cv2.LINE_AA, shift=4)
    return layer


def _motion_blur(mask: np.ndarray, length: int, angle: float) -> np.ndarray:
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), angle, 1.0)
    kernel = cv2.warpAffine(kernel, rot, (length, length))
    kernel /= kernel.sum()
    return cv2.filter2D(mask.astype(np.float32), -1, kernel)


def generate_foreground(seed: int, name: str, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """One foreground (uint8 HxWx3 RGB) and its alpha (uint8 HxW)."""
    rng = rng_for(seed, "fg", name)
    H, W = height * SUPERSAMPLE, width * SUPERSAMPLE
    body = _blob_mask(rng, H, W).astype(np.float32)
    for _ in range(int(rng.integers(1, 3))):  # holes through the body
        hole = np.zeros((H, W), np.uint8)
        centre = (int(W / 2 + rng.normal(0, W * 0.05)), int(H / 2 + rng.normal(0, H * 0.05)))
        cv2.ellipse(hole, centre, (int(W * rng.uniform(0.02, 0.05)), int(H * rng.uniform(0.02, 0.05))),
                    0, 0, 360, 255, -1, cv2.LINE_AA)
        body = np.minimum(body, 255.0 - hole)
    strands = _strands(rng, body.astype(np.uint8), int(rng.integers(60, 120))).astype(np.float32)
    limb = np.zeros((H, W), np.uint8)
    side = 1 if rng.random() < 0.5 else -1
    cv2.ellipse(limb, (int(W / 2 + side * W * 0.28), int(H * rng.uniform(0.35, 0.65))),
                (int(W * 0.1), int(H * 0.04)), float(rng.uniform(-30, 30)), 0, 360, 255, -1, cv2.LINE_AA)
    limb_blur = _motion_blur(limb, int(W * 0.08) | 1, float(rng.uniform(0, 180)))
    veil = np.zeros((H, W), np.uint8)
    cv2.ellipse(veil, (int(W / 2), int(H * 0.25)), (int(W * 0.3), int(H * 0.12)), 0, 0, 360, 255, -1, cv2.LINE_AA)
    veil_alpha = cv2.GaussianBlur(veil.astype(np.float32), (0, 0), SUPERSAMPLE * 3) * rng.uniform(0.35, 0.65)
    alpha_hi = np.maximum.reduce([body, strands, limb_blur, veil_alpha])
    alpha = cv2.resize(alpha_hi, (width, height), interpolation=cv2.INTER_AREA)
    alpha = np.clip(np.round(alpha), 0, 255).astype(np.uint8)

    base = _smooth_field(rng, height, width, 5, 3)
    hue = rng.random(3)
    colour = 0.55 * base + 0.45 * hue[None, None, :]
    texture = _smooth_field(rng, height, width, 40, 1) * 0.25
    hair_colour = rng.random(3) * 0.6 + 0.2
    hairness = cv2.resize(strands, (width, height), interpolation=cv2.INTER_AREA)[:, :, None] / 255.0
    fg = (colour + texture - 0.12) * (1 - hairness) + hair_colour[None, None, :] * hairness
    fg = np.clip(np.round(fg * 255), 0, 255).astype(np.uint8)
    return fg, alpha


def generate_background(seed: int, name: str, width: int, height: int) -> np.ndarray:
    """A textured background (uint8 HxWx3 RGB): gradient, shapes and fine noise."""
    rng = rng_for(seed, "bg", name)
    img = _smooth_field(rng, height, width, 3, 3) * 0.8 + 0.1
    img = (img * 255).astype(np.uint8)
    for _ in range(int(rng.integers(6, 16))):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        if rng.random() < 0.5:
            cv2.circle(img, centre, int(rng.integers(5, max(6, min(width, height) // 4))), colour, -1, cv2.LINE_AA)
        else:
            other = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            cv2.rectangle(img, centre, other, colour, -1)
    noise = rng.normal(0, 6, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def check_sample_size(size: tuple[int, int]) -> None:
    """Refuse (one line) a size whose largest working image exceeds the pixel limit: a
    foreground is drawn at SUPERSAMPLE x its size (up to 1.15 x ``size``), a background is
    up to 2.6 x 2 times ``size``."""
    w0, h0 = size
    largest = int(max((SUPERSAMPLE * 1.15) ** 2, 2.6 * 2.0) * w0 * h0)
    limit = max_pixels()
    if largest > limit:
        raise MatteError(f"--width {w0} --height {h0}: the samples would need {largest / 1e6:.1f}-megapixel working "
                         f"images, above --max-pixels {limit} ({limit / 1e6:.1f} megapixels); choose a smaller size")


def write_samples(out_dir: str | os.PathLike, seed: int = 0, foregrounds: int = 6, backgrounds: int = 12,
                  size: tuple[int, int] = (320, 256)) -> SampleSet:
    """Write ``fg/``, ``alpha/`` (PNG) and ``bg/`` (JPEG) under ``out_dir``; deterministic by seed.

    Foregrounds vary around ``size`` (width, height); backgrounds range from smaller than the
    foregrounds (so compose must upscale them) to twice their size.
    """
    out = Path(out_dir)
    check_sample_size(size)
    rng = rng_for(seed, "sizes")
    names, bgs = [], []
    w0, h0 = size
    for i in range(foregrounds):
        name = f"sample_{i:02d}"
        w = int(w0 * rng.uniform(0.85, 1.15)) // 2 * 2
        h = int(h0 * rng.uniform(0.85, 1.15)) // 2 * 2
        fg, alpha = generate_foreground(seed, name, w, h)
        write_image(out / "fg" / f"{name}.png", fg)
        write_image(out / "alpha" / f"{name}.png", alpha)
        names.append(name)
    for j in range(backgrounds):
        name = f"bg_{j:02d}"
        scale = rng.uniform(0.7, 2.0)
        w, h = int(w0 * scale * rng.uniform(0.9, 1.3)), int(h0 * scale)
        write_image(out / "bg" / f"{name}.jpg", generate_background(seed, name, w, h))
        bgs.append(f"{name}.jpg")
    return SampleSet(out / "fg", out / "alpha", out / "bg", names, bgs)


def sample_clip(seed: int = 0, frames: int = 48, size: tuple[int, int] = (320, 240)
                ) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """A short fixed-camera clip: a sample foreground gliding over a static background.

    Returns (plate, frames, true alphas): the clean background plate (uint8 HxWx3) and,
    per frame, the composite (uint8 HxWx3) and its ground-truth alpha (uint8 HxW), for the
    demo and the video tests. Each frame adds a little sensor noise, as a real camera
    would, so the plate never matches the frame exactly.
    """
    width, height = size
    rng = rng_for(seed, "clip")
    plate = generate_background(seed, "clip_bg", width, height)
    fw, fh = int(width * 0.6) // 2 * 2, int(height * 0.75) // 2 * 2
    fg, alpha = generate_foreground(seed, "clip_fg", fw, fh)
    images, alphas = [], []
    for t in range(frames):
        x = int(round((width - fw) * (0.5 + 0.4 * np.sin(2 * np.pi * t / frames))))
        y = int(round((height - fh) * (0.6 + 0.3 * np.cos(2 * np.pi * t / frames))))
        a_full = np.zeros((height, width), np.uint8)
        a_full[y:y + fh, x:x + fw] = alpha
        f_full = np.zeros((height, width, 3), np.uint8)
        f_full[y:y + fh, x:x + fw] = fg
        a = a_full.astype(np.float32)[:, :, None] / 255.0
        comp = f_full * a + plate * (1.0 - a) + rng.normal(0, 1.5, plate.shape)
        images.append(np.clip(np.round(comp), 0, 255).astype(np.uint8))
        alphas.append(a_full)
    return plate, images, alphas
