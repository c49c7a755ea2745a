"""The per-frame error plot of docs/video.md, made the way a user would make it.

    python benchmarks/plot_video_eval.py [--clip distinct] [--frames 30] [--out docs/img/video_eval_frames.png]

A benchmark clip (benchmarks/bench_plate_clips.py) is written as an H.264 video with its
ground-truth alpha as PNG frames; ``mattecli video`` mattes it (temporal filter on, then off), and
``mattecli eval OUT_alpha.mov --gt GT/ --plot`` scores each against the truth. Prints both means
and draws both runs' per-frame curves into one plot.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_plate_clips import H, W, make_clip  # noqa: E402

from mattecli.io.images import write_image  # noqa: E402
from mattecli.io.video import FORMATS, VideoWriter  # noqa: E402
from mattecli.metrics.video import VideoScores, plot_per_frame  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default="distinct")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("docs/img/video_eval_frames.png"))
    parser.add_argument("--data", type=Path, default=None, help="the shared real data (for the real clips)")
    args = parser.parse_args()
    if args.data is not None:
        import bench_plate_clips

        bench_plate_clips.REAL = args.data
    images, plate, alphas, align = make_clip(args.clip, args.frames, seed=10)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = tmp / "clip.mkv"
        with VideoWriter(src, FORMATS["mp4"], (W, H), 30) as writer:
            for image in images:
                writer.write(image)
        write_image(tmp / "plate.png", plate)
        for t, a in enumerate(alphas):
            write_image(tmp / "gt" / f"{t:04d}.png", np.round(a * 255).astype(np.uint8))
        means, runs = {}, {}
        for label, strength in (("temporal", "0.8"), ("frame by frame", "0")):
            out = tmp / label.replace(" ", "_")
            cmd = [sys.executable, "-m", "mattecli", "video", str(src), "-b", str(tmp / "plate.png"), "-o", str(out),
                   "--output", "alpha", "--no-sheet", "--temporal-strength", strength] + (["--align"] if align else [])
            subprocess.run(cmd, check=True, capture_output=True)
            plot = args.out if label == "temporal" else tmp / "other.png"
            subprocess.run([sys.executable, "-m", "mattecli", "eval", str(out / "clip_alpha.mov"), "--gt",
                            str(tmp / "gt"), "--json", str(tmp / "s.json"), "--plot", str(plot),
                            "--metrics", "mad,mse,dtssd,messddt"], check=True, capture_output=True)
            report = json.loads((tmp / "s.json").read_text())
            means[label] = report["mean"]
            names = tuple(means[label])
            runs[label] = VideoScores("clip", names, [{m: f[m] for m in names} for f in report["frames"]])
    for label, mean in means.items():
        print(f"{label}: " + ", ".join(f"{k} {v:.3f}" for k, v in mean.items()))
    # the docs picture: both runs on one plot (the CLI's --plot draws one clip)
    plot_per_frame(runs, args.out, title=f"plate method on the '{args.clip}' clip: temporal filter on and off")
    print(f"plot: {args.out}")


if __name__ == "__main__":
    main()
