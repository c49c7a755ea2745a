"""Speed of `mattecli video` with the weights-free plate method: model-only and end-to-end fps.

Makes a synthetic 1280x720 clip at 30000/1001 fps (a soft-edged subject moving over a
textured, noisy background, with an AAC sine track) and its clean plate, then measures:

- model only: the plate method on frames already in memory (what peers quote as "fps");
- end to end: decode + matte + encode through the real pipeline, for the default outputs
  (comp, alpha) and for all four outputs.

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--align", action="store_true", help="also time per-frame plate alignment")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    frames = round(args.seconds * float(RATE))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clip, plate = make_clip(folder, args.width, args.height, frames)
        rows = {"clip": f"{args.width}x{args.height}, {frames} frames at {RATE}", "cv2_threads": cv2.getNumThreads()}
        rows["model_only_fps"] = round(model_only(clip, plate, False, min(frames, 60)), 1)
        if args.align:
            rows["model_only_fps_align"] = round(model_only(clip, plate, True, min(frames, 60)), 1)
        rows["e2e"] = [end_to_end(clip, plate, folder / "out", ("comp", "alpha"), False),
                       end_to_end(clip, plate, folder / "out", ("comp", "alpha", "rgba", "fg"), False)]
        if args.align:
            rows["e2e"].append(end_to_end(clip, plate, folder / "out", ("comp", "alpha"), True) | {"align": True})
    print(json.dumps(rows, indent=2))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
