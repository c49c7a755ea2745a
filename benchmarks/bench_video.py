"""Speed of `mattecli video` with the weights-free plate method: model-only and end-to-end fps.

Makes a synthetic 1280x720 clip at 30000/1001 fps (a soft-edged subject moving over a
textured, noisy background, with an AAC sine track) and its clean plate, then measures:

- model only: the plate method on frames already in memory (what peers quote as "fps");
- end to end: decode + matte + encode through the real pipeline, for the default outputs
  (comp, alpha) and for all four outputs.

With ``--align`` it measures plate alignment where alignment has something to find (the clip
above has a blurred-noise plate on which ORB finds almost no features, so it is not used):

- a synthetic hand-held clip: a textured plate (shapes with corners) seen through a known
  camera motion (a homography per frame: drift, roll, zoom), a subject over it, sensor noise;
  reports inliers, how many frames found a homography, the error of the recovered homography
  (mean displacement of the frame's corners, pixels) and the alpha error with and without
  alignment against the true alpha;
- the real hand-held pair ``../shared/data/real/bgmatting_v1_handheld`` (override with
  ``--real``): ms per frame with and without alignment and the inliers per frame.

Run by hand (not part of the test suite):

    python benchmarks/bench_video.py [--seconds 4] [--width 1280 --height 720] [--align]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from mattecli.inference.plate import PlateMatting
from mattecli.inference.video import StillSource, VideoJob, run_video
from mattecli.io.video import FORMATS, VideoWriter, ffmpeg_exe, read_frames

RATE = Fraction(30000, 1001)
REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


def make_clip(folder: Path, width: int, height: int, frames: int, seed: int = 0) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8)
    plate = cv2.resize(cv2.GaussianBlur(small, (0, 0), 1.0), (width, height), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    silent = folder / "silent.mp4"
    with VideoWriter(silent, FORMATS["mp4"], (width, height), RATE) as writer:
        for i in range(frames):
            cx = width * (0.25 + 0.5 * i / max(frames - 1, 1))
            body = np.hypot((xx - cx) / (0.12 * width), (yy - 0.55 * height) / (0.35 * height))
            alpha = np.clip((1.0 - body) * 12.0, 0.0, 1.0)[:, :, None]
            fg = np.empty((height, width, 3), np.float32)
            fg[:] = (190, 120, 90)
            noise = rng.normal(0, 2.0, (height, width, 3)).astype(np.float32)  # sensor noise
            frame = alpha * fg + (1 - alpha) * plate + noise
            writer.write(np.clip(frame + 0.5, 0, 255).astype(np.uint8))
    clip = folder / "clip.mp4"
    import subprocess

    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(silent), "-f", "lavfi",
                    "-i", f"sine=frequency=440:sample_rate=48000:duration={frames / float(RATE):.3f}",
                    "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", str(clip)], check=True)
    return clip, plate


def model_only(clip: Path, plate: np.ndarray, align: bool, frames: int) -> float:
    held = [f for _, f in zip(range(frames), read_frames(clip))]
    method = PlateMatting(align=align)
    method(held[0], plate)  # first-call set-up (ORB plate features) outside the timing
    start = time.perf_counter()
    for frame in held:
        method(frame, plate)
    return len(held) / (time.perf_counter() - start)


def end_to_end(clip: Path, plate: np.ndarray, out: Path, outputs: tuple[str, ...], align: bool) -> dict:
    job = VideoJob(input=clip, out_dir=out, plate=StillSource(plate), outputs=outputs, overwrite=True)
    report = run_video(job, PlateMatting(align=align))
    return {"outputs": ",".join(outputs), "frames": report.frames, "model_fps": round(report.model_fps, 1),
            "end_to_end_fps": round(report.end_to_end_fps, 1), "seconds": round(report.total_seconds, 2)}


def textured_plate(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A scene with corners and edges for ORB: random rectangles and discs over a gradient."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    plate = np.stack([80 + 100 * xx / width, 90 + 60 * yy / height, 140 - 60 * xx / width], axis=2)
    plate = plate.astype(np.uint8).copy()
    side = max(width, height)
    for _ in range(400):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        r = int(rng.integers(side // 200 + 2, side // 25 + 3))
        if rng.random() < 0.6:
            cv2.rectangle(plate, (x, y), (x + r, y + int(r * rng.uniform(0.5, 2))), colour, -1)
        else:
            cv2.circle(plate, (x, y), r // 2, colour, -1)
    return plate


def camera_motion(i: int, frames: int, width: int, height: int) -> np.ndarray:
    """The known homography (plate -> frame) of frame ``i``: a hand-held drift, roll and zoom."""
    t = i / max(frames - 1, 1)
    angle = np.deg2rad(1.5 * np.sin(2 * np.pi * t))
    scale = 1.0 + 0.03 * np.sin(np.pi * t)
    dx, dy = 0.03 * width * np.sin(2 * np.pi * t), 0.02 * height * np.cos(2 * np.pi * t)
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    cx, cy = width / 2, height / 2
    return np.array([[c, -s, cx - c * cx + s * cy + dx], [s, c, cy - s * cx - c * cy + dy], [0, 0, 1]])


def corner_error(estimated: np.ndarray, true: np.ndarray, width: int, height: int) -> float:
    corners = np.float32([[0, 0], [width, 0], [width, height], [0, height]]).reshape(-1, 1, 2)
    a = cv2.perspectiveTransform(corners, estimated).reshape(-1, 2)
    b = cv2.perspectiveTransform(corners, true).reshape(-1, 2)
    return float(np.linalg.norm(a - b, axis=1).mean())


def handheld_synthetic(width: int, height: int, frames: int, seed: int = 0) -> dict:
    """Alignment where it has features to find, against the known camera motion and alpha."""
    rng = np.random.default_rng(seed)
    plate = textured_plate(width, height, rng)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    held = []
    for i in range(frames):
        true_h = camera_motion(i, frames, width, height)
        background = cv2.warpPerspective(plate, true_h, (width, height), borderMode=cv2.BORDER_REFLECT)
        cx = width * (0.35 + 0.3 * i / max(frames - 1, 1))
        body = np.hypot((xx - cx) / (0.12 * width), (yy - 0.55 * height) / (0.35 * height))
        alpha = np.clip((1.0 - body) * 12.0, 0.0, 1.0)
        frame = alpha[:, :, None] * np.float32((190, 120, 90)) + (1 - alpha[:, :, None]) * background
        frame = np.clip(frame + rng.normal(0, 2.0, frame.shape) + 0.5, 0, 255).astype(np.uint8)
        held.append((frame, alpha, true_h))
    out: dict = {"clip": f"{width}x{height}, {frames} frames, known homography per frame"}
    for align in (False, True):
        method = PlateMatting(align=align)
        method(held[0][0], plate)  # set-up (plate features) outside the timing
        inliers, found, errors, mad, seconds = [], 0, [], [], 0.0
        for frame, alpha, true_h in held:
            start = time.perf_counter()
            result = method(frame, plate)
            seconds += time.perf_counter() - start
            mad.append(float(np.abs(result.alpha - alpha).mean()))
            if result.alignment is not None:
                inliers.append(result.alignment.inliers)
                found += result.alignment.found
                if result.alignment.found:
                    errors.append(corner_error(result.alignment.homography, true_h, width, height))
        key = "align" if align else "no_align"
        out[key] = {"ms_per_frame": round(1000 * seconds / frames, 1), "alpha_mad_vs_truth": round(float(np.mean(mad)), 4)}
        if align:
            out[key] |= {"frames_aligned": f"{found}/{frames}", "inliers_min_median": [min(inliers), int(np.median(inliers))],
                         "corner_error_px_mean_max": [round(float(np.mean(errors)), 2), round(float(np.max(errors)), 2)]
                         if errors else None}
    return out


def handheld_real(folder: Path) -> dict:
    """The real hand-held pair: time per frame with and without alignment, and the inliers."""
    from mattecli.io.images import read_rgb

    plate = read_rgb(folder / "plate_background.png")
    frames = [read_rgb(p) for p in sorted(folder.glob("frame*_image.png"))]
    out: dict = {"pair": f"{folder.name}: {len(frames)} frames {frames[0].shape[1]}x{frames[0].shape[0]}"}
    for align in (False, True):
        method = PlateMatting(align=align)
        method(frames[0], plate)
        times, inliers, found = [], [], 0
        for frame in frames:
            start = time.perf_counter()
            result = method(frame, plate)
            times.append(time.perf_counter() - start)
            if result.alignment is not None:
                inliers.append(result.alignment.inliers)
                found += result.alignment.found
        key = "align" if align else "no_align"
        out[key] = {"ms_per_frame_median": round(1000 * float(np.median(times)), 1)}
        if align:
            out[key] |= {"frames_aligned": f"{found}/{len(frames)}", "inliers": inliers}
    out["align_cost_ratio"] = round(out["align"]["ms_per_frame_median"] / out["no_align"]["ms_per_frame_median"], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--align", action="store_true", help="also time per-frame plate alignment")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("--real", type=Path, default=REAL / "bgmatting_v1_handheld",
                        help="the real hand-held pair for --align (default: ../shared/data/real/bgmatting_v1_handheld)")
    args = parser.parse_args()
    frames = round(args.seconds * float(RATE))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clip, plate = make_clip(folder, args.width, args.height, frames)
        rows = {"clip": f"{args.width}x{args.height}, {frames} frames at {RATE}", "cv2_threads": cv2.getNumThreads()}
        rows["model_only_fps"] = round(model_only(clip, plate, False, min(frames, 60)), 1)
        rows["e2e"] = [end_to_end(clip, plate, folder / "out", ("comp", "alpha"), False),
                       end_to_end(clip, plate, folder / "out", ("comp", "alpha", "rgba", "fg"), False)]
        if args.align:
            rows["align_synthetic_handheld"] = handheld_synthetic(args.width, args.height, min(frames, 30))
            if args.real.is_dir():
                rows["align_real_handheld"] = handheld_real(args.real)
            else:
                rows["align_real_handheld"] = f"{args.real} not found (pass --real)"
    print(json.dumps(rows, indent=2))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
