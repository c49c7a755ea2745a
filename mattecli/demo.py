"""The end-to-end demo on the built-in samples: compose, matte, evaluate, video, pictures.

It calls the same core functions as the subcommands, so it doubles as a smoke test of the
whole loop on a fresh machine. Every step writes under one folder; rerunning resumes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np

from mattecli.data.trimap import TrimapSpec

CLIP_FPS = Fraction(24000, 1001)
#: The default trimap band suits 1080p Adobe foregrounds; the ~300 px samples want a narrower one.
SAMPLE_TRIMAPS = TrimapSpec(kernel=(2, 3), iterations=(3, 8))


@dataclass
class DemoResult:
    out: Path
    dataset: Path
    predictions: Path
    report: object  # mattecli.metrics.EvalReport
    video_outputs: list[Path] = field(default_factory=list)
    video_fps: float = 0.0
    sheet: Path | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def write_clip(folder: Path, seed: int, frames: int = 48, size: tuple[int, int] = (320, 240)) -> tuple[Path, Path]:
    """Render the sample clip to ``clip.mp4`` and its plate to ``clip_plate.png``."""
    from mattecli.data.samples import sample_clip
    from mattecli.io.images import write_image
    from mattecli.io.video import FORMATS, VideoWriter

    video, plate_path = folder / "clip.mp4", folder / "clip_plate.png"
    if video.is_file() and plate_path.is_file():
        return video, plate_path
    plate, images, _ = sample_clip(seed, frames, size)
    with VideoWriter(video, FORMATS["mp4"], size, CLIP_FPS) as writer:
        for frame in images:
            writer.write(frame)
    write_image(plate_path, plate)
    return video, plate_path


def _sheet_rows(dataset: Path, matte_dir: Path, names: list[str]) -> list[list[np.ndarray]]:
    """Per composite: the input, its trimap, the predicted alpha, the cutout over a checkerboard."""
    from mattecli.data.manifest import read_manifest, resolve
    from mattecli.io.images import read_alpha, read_raw, read_rgb
    from mattecli.report import alpha_display, checkerboard_composite

    records = {r.name: r for r in read_manifest(dataset)}
    rows = []
    for name in names:
        r = records[name]
        rgba = read_raw(matte_dir / "rgba" / f"{name}.png")  # estimated foreground + alpha
        rows.append([read_rgb(resolve(dataset, r.merged_path)), alpha_display(read_alpha(resolve(dataset, r.trimap_path))),
                     alpha_display(rgba[:, :, 3]), checkerboard_composite(rgba[:, :, :3], rgba[:, :, 3])])
    return rows


def run_demo(out: Path, seed: int = 0, workers: int | None = None, say: Callable[[str], None] = print,
             show_progress: bool = True) -> DemoResult:
    """Samples -> dataset (trimaps, plates) -> classical matte -> metrics -> video -> contact sheet."""
    from mattecli.compose import ComposeOptions, compose_dataset
    from mattecli.console import progress
    from mattecli.data.samples import write_samples
    from mattecli.inference.batch import MatteOptions, run_matte
    from mattecli.inference.methods import build_method
    from mattecli.inference.plate import PlateMatting, PlateSettings
    from mattecli.inference.video import VideoJob, plate_source, run_video
    from mattecli.io.video import probe_video
    from mattecli.metrics import evaluate_items, pair_dataset
    from mattecli.report import write_contact_sheet

    out = Path(out)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    samples = write_samples(out / "samples", seed=seed, foregrounds=4, backgrounds=8)
    seconds["samples"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    dataset = out / "dataset"
    compose_dataset(ComposeOptions(out=dataset, fg=samples.fg_dir, alpha=samples.alpha_dir, bg=str(samples.bg_dir),
                                   per_fg=2, seed=seed, workers=workers, trimaps=True, plates=True,
                                   trimap_spec=SAMPLE_TRIMAPS,
                                   command="mattecli demo", show_progress=show_progress), say=say)
    seconds["compose"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    matte_dir = out / "matte"
    options = MatteOptions(input=dataset / "merged", out=matte_dir, outputs=("alpha", "rgba", "comp"),
                           trimap=dataset / "trimap")
    method = build_method(None, "classical", "cpu", workers=workers)
    with progress("img", disable=not show_progress) as bar:
        task = bar.add_task("matte (closed form)", total=None)
        summary = run_matte(options, method, on_start=lambda n: bar.update(task, total=n),
                            on_item=lambda item, status: bar.advance(task))
    if summary.failures:
        raise RuntimeError(f"demo matting failed on {summary.failures[0][0]}: {summary.failures[0][1]}")
    seconds["matte"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    predictions = matte_dir / "alpha"
    pairing = pair_dataset(predictions, dataset)
    report = evaluate_items(pairing.items, workers=workers)
    seconds["eval"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    video, plate = write_clip(out / "video", seed)
    info = probe_video(video)
    job = VideoJob(input=video, out_dir=out / "video", plate=plate_source(plate, (info.width, info.height)),
                   outputs=("comp", "alpha", "rgba"))
    video_report = run_video(job, PlateMatting(PlateSettings()), info=info)
    seconds["video"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    worst_first = [r.name for r in report.worst(len(report.scored))]
    names = sorted(set(worst_first[:2] + worst_first[-2:]))
    sheet = out / "contact_sheet.png"
    write_contact_sheet(sheet, _sheet_rows(dataset, matte_dir, names),
                        ["composite", "trimap", "alpha (closed form)", "estimated foreground"], cell_width=256)
    seconds["sheet"] = time.perf_counter() - t0
    return DemoResult(out, dataset, predictions, report,
                      [o.path for o in video_report.outputs] + list(video_report.skipped),
                      video_report.end_to_end_fps, sheet, seconds)
