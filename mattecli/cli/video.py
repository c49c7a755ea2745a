"""`mattecli video INPUT --background PLATE --out OUT_DIR`: matte a video against a clean plate."""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

import typer

from mattecli.cli.options import apply_max_pixels, examples, max_pixels_option

CAPTURE_TIPS = ("Capture tips (Background Matting): lock exposure and focus, film the plate from the same spot, "
                "avoid shadows on the background and subject colours close to it.")


def register(app: typer.Typer) -> None:
    @app.command("video", epilog=examples(
        "mattecli video demo-out/video/clip.mp4 --background demo-out/video/clip_plate.png --out video-out",
        "mattecli video demo-out/video/clip.mp4 --background demo-out/video/clip_plate.png --out video-out "
        "--output alpha,rgba --rgba-format png --overwrite",
        "mattecli video demo-out/video/clip.mp4 --background demo-out/video/clip_plate.png --out bgm-out "
        "--weights runs/bgm/best.pt   # after the `train bgm` example; add --device cuda on a GPU",
        ) + "\n\n" + CAPTURE_TIPS)
    def video(
        input: Path = typer.Argument(..., help="Video to matte (anything ffmpeg reads)."),
        background: Path = typer.Option(..., "--background", "-b",
                                        help="Clean plate: an image (fixed camera) or a video (frame by frame)."),
        out: Path = typer.Option(..., "--out", "-o", help="Folder for <stem>_<kind> outputs."),
        output: str = typer.Option("comp,alpha", "--output",
                                   help="Comma-separated subset of comp, alpha, rgba, fg (not rgba by default, unlike "
                                        "matte's PNGs: an RGBA video is large and slow to encode)."),
        bg_color: str = typer.Option("120,255,155", "--bg-color",
                                     help="Composite colour: R,G,B, #RRGGBB or a name (a light green, unlike matte's "
                                          "white: holes and fringes stay visible in a moving composite)."),
        bg_image: Optional[Path] = typer.Option(None, "--bg-image", help="Composite over this image instead."),
        bg_video: Optional[Path] = typer.Option(None, "--bg-video", help="Composite over this video (looped)."),
        rgba_format: Literal["mov", "webm", "png"] = typer.Option("mov", "--rgba-format",
                                        help="rgba container: mov (ProRes 4444), webm (VP9) or png (sequence)."),
        alpha_format: Literal["mov", "mkv", "mp4"] = typer.Option("mov", "--alpha-format",
                                         help="alpha matte: mov (lossless QuickTime Animation), mkv (lossless "
                                              "FFV1) or mp4 (near-lossless H.264)."),
        align: bool = typer.Option(False, "--align/--no-align",
                                   help="Hand-held camera: register the plate onto every frame (homography)."),
        match_exposure: bool = typer.Option(False, "--match-exposure/--no-match-exposure",
                                            help="Match the plate's exposure to each frame (bias and gain)."),
        low: float = typer.Option(16.0, "--low", min=0, help="Colour distance (0-255) at or below which alpha is 0."),
        high: float = typer.Option(48.0, "--high", min=1, help="Colour distance at or above which alpha is 1."),
        temporal: float = typer.Option(0.8, "--temporal-strength", min=0.0, max=0.99,
                                       help="Temporal stability: weight of the previous frame's matte and foreground "
                                            "where the frame did not change (0 = each frame on its own); where it "
                                            "changed, the new frame decides alone (no lag on motion)."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace outputs that exist (else skipped)."),
        sheet: bool = typer.Option(True, "--sheet/--no-sheet",
                                   help="Also write <stem>_sheet.png: a few frames with alpha and composite."),
        weights: Optional[Path] = typer.Option(None, "--weights",
                                               help="A trained background-guided checkpoint instead of the "
                                                    "weights-free method (--low/--high then do not apply)."),
        device: Optional[str] = typer.Option(None, "--device",
                                             help="Only with --weights: auto, cpu, cuda or cuda:N \\[default: auto]."),
        precision: Optional[Literal["fp32", "fp16", "bf16"]] = typer.Option(None, "--precision",
                                                help="Only with --weights: fp32, fp16 (CUDA) or bf16 \\[default: fp32]."),
        batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1,
                                                 help="Only with --weights: frames per batch \\[default: 4]."),
        max_pixels: Optional[int] = max_pixels_option(),
        segmentation: Optional[Path] = typer.Option(None, "--segmentation",
                                                    help="--weights bgm: a folder of person masks, one per frame in "
                                                         "name order (default: from the plate difference)."),
        segmenter: Optional[Path] = typer.Option(None, "--segmenter",
                                                 help="--weights bgm: a guidance-free checkpoint (shm) whose alpha is "
                                                      "each frame's person mask (instead of --segmentation)."),
        motion_offsets: Optional[str] = typer.Option(None, "--motion-offsets",
                                                     help="--weights bgm: frame offsets of the motion cue "
                                                          "\\[default: -40,-20,20,40, the official ones]."),
    ) -> None:
        """Matte a video against a clean background plate, without trained weights (or with --weights).

        Keeps the exact frame rate and copies the audio into every output that can hold it.
        """
        from mattecli.cli.options import parse_color, parse_kinds, refuse_unless
        from mattecli.errors import BadInput, MatteError
        from mattecli.inference.temporal import TemporalSettings
        from mattecli.inference.video import ALPHA_FORMATS, OUTPUT_KINDS, RGBA_FORMATS

        apply_max_pixels(max_pixels)
        kinds = parse_kinds(output, OUTPUT_KINDS)
        refuse_unless(weights is not None, "--weights (the weights-free plate method runs on the CPU in float32)",
                      device=device, precision=precision, batch_size=batch_size)
        if rgba_format not in RGBA_FORMATS:
            raise MatteError(f"--rgba-format '{rgba_format}': choose one of {', '.join(RGBA_FORMATS)}")
        if alpha_format not in ALPHA_FORMATS:
            raise MatteError(f"--alpha-format '{alpha_format}': choose one of {', '.join(ALPHA_FORMATS)}")
        if bg_image is not None and bg_video is not None:
            raise MatteError("give at most one of --bg-image and --bg-video")
        if not low < high:
            raise MatteError(f"--low ({low}) must be below --high ({high})")
        colour = parse_color(bg_color)
        for p in (input, background, bg_image, bg_video):
            if p is not None and not p.is_file():
                raise BadInput(p, "no such file")
        learned = None
        if weights is None:
            for flag, value in (("--segmentation", segmentation), ("--segmenter", segmenter),
                                ("--motion-offsets", motion_offsets)):
                if value is not None:
                    raise MatteError(f"{flag} applies to a Background Matting network (--weights)")
        if weights is not None:
            from mattecli.inference.methods import build_method
            from mattecli.inference.video import LearnedFrames

            offsets = (-40, -20, 20, 40)
            if motion_offsets is not None:
                try:
                    offsets = tuple(int(v) for v in motion_offsets.split(","))
                except ValueError:
                    raise MatteError(f"--motion-offsets '{motion_offsets}': expected integers like -40,-20,20,40") from None
            learned = LearnedFrames(build_method(weights, "classical", device or "auto", batch_size or 4,
                                                 precision or "fp32"),
                                    align=align, exposure=match_exposure, segmentation=segmentation,
                                    motion_offsets=offsets, segmenter=segmenter,
                                    temporal=TemporalSettings(strength=temporal))
        _run(input, background, out, kinds, colour, bg_image, bg_video, rgba_format, alpha_format,
             align, match_exposure, low, high, overwrite, sheet, learned, temporal)


def _run(input: Path, background: Path, out: Path, kinds: tuple[str, ...], colour: tuple[int, int, int],
         bg_image: Path | None, bg_video: Path | None, rgba_format: str, alpha_format: str,
         align: bool, match_exposure: bool, low: float, high: float, overwrite: bool, sheet: bool,
         learned: object | None = None, temporal: float = 0.8) -> None:
    from rich.table import Table

    from mattecli.console import console, progress
    from mattecli.inference.plate import PlateMatting, PlateSettings
    from mattecli.inference.temporal import TemporalSettings
    from mattecli.inference.video import (VideoJob, background_source, check_plate, fps_text, plate_source,
                                          run_video)
    from mattecli.io.images import check_pixels
    from mattecli.io.video import probe_video

    info = probe_video(input)
    check_pixels(input, info.width, info.height, "each frame")
    size = (info.width, info.height)
    job = VideoJob(input=input, out_dir=out, plate=plate_source(background, size), outputs=kinds,
                   background=(background_source(bg_image or bg_video, size) if (bg_image or bg_video) else None),
                   bg_colour=colour, rgba_format=rgba_format, alpha_format=alpha_format, overwrite=overwrite)
    check_plate(job, info, align)  # before any output
    extras = (f"{' + alignment' if align else ''}{' + exposure matching' if match_exposure else ''}"
              f"{f' + temporal filter (strength {temporal:g})' if temporal > 0 else ''}")
    if learned is not None:
        method, described = learned, f"{learned.describe()}{extras}"
    else:
        method = PlateMatting(PlateSettings(low=low, high=high), align=align, exposure=match_exposure,
                              temporal=TemporalSettings(strength=temporal))
        described = f"method: background plate{extras} on cpu"
    console.print(f"[bold]{input.name}[/]: {info.width}x{info.height}, {fps_text(info.fps)} fps, "
                  f"audio {info.audio_codec or 'none'}; {described}")

    keep = _SheetFrames(info.frames_estimate) if sheet else None
    with progress("frame") as bar:
        task = bar.add_task("matte", total=info.frames_estimate or None)
        report = run_video(job, method, progress=lambda n: bar.advance(task, n),
                           on_frame_result=keep.offer if keep else None, info=info)
        bar.update(task, total=report.frames, completed=report.frames)
    if report.skipped and not report.outputs:
        console.print(f"all outputs exist (use --overwrite to redo): {', '.join(p.name for p in report.skipped)}")
        return
    table = Table(title=None, show_header=True, header_style="bold")
    table.add_column("output")
    table.add_column("file")
    table.add_column("audio")
    for o in report.outputs:
        table.add_row(o.kind, str(o.path), o.audio)
    for p in report.skipped:
        table.add_row("", str(p), "exists, skipped")
    console.print(table)
    console.print(f"{report.frames} frames: model {1000 * report.model_seconds / max(report.frames, 1):.1f} ms/frame "
                  f"({report.model_fps:.1f} fps); end to end {report.total_seconds:.1f} s "
                  f"({report.end_to_end_fps:.1f} fps, decode + matte + encode)")
    if report.alignment_failures:
        console.print(f"[yellow]warning:[/] no reliable plate homography in {report.alignment_failures} of "
                      f"{report.frames} frames; the identity was used there")
    if keep and keep.rows:
        from mattecli.report import alpha_display, checkerboard_composite, write_contact_sheet

        path = out / f"{input.stem}_sheet.png"
        rows = [[frame, alpha_display(alpha), checkerboard_composite(fg, alpha)] for frame, alpha, fg in keep.rows]
        write_contact_sheet(path, rows, ["frame", "alpha", "foreground over checkerboard"], cell_width=320)
        console.print(f"contact sheet: {path}")


class _SheetFrames:
    """Keeps (frame, alpha, fg) of up to four evenly spaced frames for the contact sheet."""

    def __init__(self, total_estimate: int, count: int = 4) -> None:
        n = max(total_estimate, 1)
        self.wanted = sorted({round(i * (n - 1) / max(count - 1, 1)) for i in range(count)})
        self.index = 0
        self.rows: list[tuple] = []

    def offer(self, frame: object, result: object) -> None:
        if self.index in self.wanted:
            self.rows.append((frame, result.alpha, result.fg))
        self.index += 1
