"""Weights-free plate matting on synthetic 720p clips with a known plate and known alpha.

    python benchmarks/bench_plate_clips.py [--frames 4] [--weights RUN/best.pt] [--video-frames 24]

Four clips, each hard in its own way (all 1280x720, subject moving across the frames):

- ``distinct``: a saturated subject with soft edges and hair-like strands, sensor noise sigma 2;
- ``similar``: the subject's colour is the background's around it (B blurred with sigma 40 px)
  plus ~25 grey levels, with a mild texture (similar-coloured);
- ``hair``: many thin semi-transparent strands and a wide soft edge, noise sigma 3;
- ``misaligned``: the plate is shifted 0.8 px and rotated 0.1 degree against the frames, noise 3.

Each frame and the plate carry their own sensor noise. Scored: mean |alpha - true alpha| over
the pixels near the subject (true alpha > 0 dilated by 15 px), per clip, for the crude
thresholded difference key clip((max_c |I - B| - 6) / 20), the previous plate method (colour
distance ramp + guided filter), the current plate method, and a bgm network when --weights is
given (same frames, same run). Then the time per 1280x720 frame and the end-to-end rate of
``mattecli video`` (decode + matte + encode of an H.264 clip) for the current method.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from mattecli.inference.plate import PlateMatting, PlateSettings, alpha_from_plate

W, H = 1280, 720
NEAR_PX = 15


def texture(rng: np.random.Generator, h: int, w: int, cells: int = 12) -> np.ndarray:
    small = rng.integers(30, 226, (cells, max(2, cells * w // h), 3)).astype(np.float32)
    tex = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(6):  # a few hard edges (furniture, frames): what misalignment turns into false edges
        x0, y0 = int(rng.integers(0, w - 100)), int(rng.integers(0, h - 100))
        cv2.rectangle(tex, (x0, y0), (x0 + int(rng.integers(40, 300)), y0 + int(rng.integers(40, 300))),
                      tuple(float(v) for v in rng.integers(20, 236, 3)), -1)
    return np.clip(tex, 0, 255)


def subject_alpha(rng: np.random.Generator, cx: float, strands: int, soft: float) -> np.ndarray:
    """A body, a head, soft edges and hair-like strands (thin, partly transparent curves)."""
    a = np.zeros((H, W), np.float32)
    cv2.ellipse(a, (int(cx), 560), (170, 260), 0, 0, 360, 1.0, -1)
    cv2.circle(a, (int(cx), 250), 95, 1.0, -1)
    a = cv2.GaussianBlur(a, (0, 0), soft)
    hair = np.zeros((H, W), np.float32)
    for _ in range(strands):
        t = np.linspace(0, 1, 40)
        angle = rng.uniform(-2.6, -0.5)
        length = rng.uniform(60, 160)
        bend = rng.uniform(-40, 40)
        x0 = cx + 90 * np.cos(angle)
        y0 = 250 + 90 * np.sin(angle)
        xs = x0 + t * length * np.cos(angle) + bend * t ** 2
        ys = y0 + t * length * np.sin(angle)
        pts = np.stack([xs, ys], 1).astype(np.int32)
        cv2.polylines(hair, [pts], False, float(rng.uniform(0.3, 0.9)), 1, cv2.LINE_AA)
    hair = cv2.GaussianBlur(hair, (0, 0), 0.6)
    return np.clip(np.maximum(a, hair), 0, 1)


def make_clip(kind: str, frames: int, seed: int) -> tuple[list[np.ndarray], np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    bg = texture(rng, H, W)
    noise = 3.0 if kind in ("hair", "misaligned") else 2.0
    strands = 120 if kind == "hair" else 40
    soft = 4.0 if kind == "hair" else 1.5
    plate_bg = bg
    if kind == "misaligned":
        m = cv2.getRotationMatrix2D((W / 2, H / 2), 0.1, 1.0)
        m[:, 2] += (0.8, 0.5)
        plate_bg = cv2.warpAffine(bg, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    plate = np.clip(plate_bg + rng.normal(0, noise, plate_bg.shape), 0, 255).astype(np.uint8)
    images, alphas = [], []
    for i in range(frames):
        alpha = subject_alpha(rng, 420 + 120 * i, strands, soft)
        if kind == "similar":
            # a smooth colour close to the background's around it (a heavy blur of B) plus ~25 levels
            fg = cv2.GaussianBlur(bg, (0, 0), 40) + np.array([25.0, -18.0, 12.0], np.float32)
            fg = fg + texture(rng, H, W, 6) * 0.08 - 10
        else:
            fg = np.empty_like(bg)
            fg[:] = (200.0, 70.0, 60.0)
            fg = fg + texture(rng, H, W, 6) * 0.25 - 30
        img = alpha[:, :, None] * np.clip(fg, 0, 255) + (1 - alpha[:, :, None]) * bg
        img = np.clip(img + rng.normal(0, noise, img.shape), 0, 255).astype(np.uint8)
        images.append(img)
        alphas.append(alpha)
    return images, plate, alphas


def crude_key(image: np.ndarray, plate: np.ndarray) -> np.ndarray:
    diff = cv2.absdiff(image, plate).max(axis=2).astype(np.float32)
    return np.clip((diff - 6.0) / 20.0, 0.0, 1.0)


def near_mask(alpha: np.ndarray) -> np.ndarray:
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * NEAR_PX + 1, 2 * NEAR_PX + 1))
    return cv2.dilate((alpha > 0.004).astype(np.uint8), k) > 0


def bgm_method(weights: str):
    import torch

    from mattecli.families.registry import load_model

    net, _ = load_model(weights)

    def run(image: np.ndarray, plate: np.ndarray) -> np.ndarray:
        t = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255  # noqa: E731
        with torch.no_grad():
            return net.predict(t(image), t(plate))["alpha"][0, 0].numpy()

    return run


def end_to_end_fps(frames: int) -> float:
    from mattecli.inference.video import StillSource, VideoJob, run_video
    from mattecli.io.video import FORMATS, VideoWriter

    images, plate, _ = make_clip("distinct", 4, 99)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "clip.mp4"
        writer = VideoWriter(src, FORMATS["mp4"], (W, H), 30)
        for i in range(frames):
            writer.write(images[i % len(images)])
        writer.close()
        job = VideoJob(input=src, out_dir=Path(tmp) / "out", plate=StillSource(plate), outputs=("comp", "alpha"),
                       overwrite=True)
        report = run_video(job, PlateMatting())
        return report.end_to_end_fps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--weights", default=None, help="a bgm checkpoint to score beside the weights-free methods")
    parser.add_argument("--video-frames", type=int, default=24)
    args = parser.parse_args()
    methods = {
        "crude key": crude_key,
        "previous plate method": lambda i, p: alpha_from_plate(i, p, replace(PlateSettings(), mode="ramp")),
        "plate method": lambda i, p: PlateMatting()(i, p).alpha,
    }
    if args.weights:
        methods[f"bgm ({Path(args.weights).name})"] = bgm_method(args.weights)
    kinds = ("distinct", "similar", "hair", "misaligned")
    errors = {m: {} for m in methods}
    seconds = {m: [] for m in methods}
    for n, kind in enumerate(kinds):
        images, plate, alphas = make_clip(kind, args.frames, seed=10 + n)
        for name, fn in methods.items():
            errs = []
            for image, alpha in zip(images, alphas):
                t0 = time.perf_counter()
                pred = fn(image, plate)
                seconds[name].append(time.perf_counter() - t0)
                near = near_mask(alpha)
                errs.append(float(np.abs(pred[near] - alpha[near]).mean()))
            errors[name][kind] = float(np.mean(errs))
    print(f"| method | {' | '.join(kinds)} | mean | vs crude key | s/frame (1280x720) |")
    print("|---|" + "---|" * (len(kinds) + 3))
    crude = np.mean(list(errors["crude key"].values()))
    for name in methods:
        mean = float(np.mean(list(errors[name].values())))
        cells = " | ".join(f"{errors[name][k]:.4f}" for k in kinds)
        print(f"| {name} | {cells} | {mean:.4f} | {mean / crude:.2f}x | {np.median(seconds[name]):.3f} |")
    print(f"\nplate method end to end (mattecli video, H.264 in, comp + alpha out): "
          f"{end_to_end_fps(args.video_frames):.1f} fps at 1280x720")


if __name__ == "__main__":
    main()
