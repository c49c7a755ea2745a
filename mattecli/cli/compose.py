"""`mattecli compose`: build a Composition-1k-style dataset (flags -> core -> summary table)."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import List, Literal, Optional

import typer

from mattecli.cli.options import apply_max_pixels, examples, max_pixels_option


def register(app: typer.Typer) -> None:
    @app.command("compose", epilog=examples(
        "mattecli compose --samples --out demo-out/test --seed 1 --per-fg 2 --trimaps --plates",
        "mattecli compose --fg demo-out/samples/fg --alpha demo-out/samples/alpha --bg demo-out/samples/bg "
        "--out comp --per-fg 3 --trimaps",
        "mattecli compose --samples --out sharded --shard 1/2   # then 2/2, on another machine if you like "
        "(docs/scale.md)",
        "# Composition-1k from Adobe's lists over COCO (your copies of the files):",
        "# mattecli compose --fg fg/ --alpha alpha/ --bg coco:instances_train2014.json --bg-root coco/train2014 "
        "--fg-names training_fg_names.txt --bg-names training_bg_names.txt --out comp1k_train --trimaps"))
    def compose(
        out: Path = typer.Option(..., "--out", "-o", help="Dataset folder to write (created; reruns resume)."),
        fg: Optional[Path] = typer.Option(None, "--fg", help="Foreground images (searched recursively)."),
        alpha: Optional[Path] = typer.Option(None, "--alpha", help="Alpha mattes, paired with --fg by file name."),
        bg: Optional[str] = typer.Option(None, "--bg", help="Backgrounds: a folder, coco:ANNOTATIONS.json, "
                                                            "voc:VOC_ROOT, or samples."),
        samples: bool = typer.Option(False, "--samples", help="Use the built-in procedural samples for "
                                                              "foregrounds and backgrounds."),
        bg_root: Optional[Path] = typer.Option(None, "--bg-root", help="Image folder of a coco: source."),
        exclude_category: List[str] = typer.Option([], "--exclude-category",
                                                   help="COCO category whose images are not used "
                                                        "(repeatable), e.g. person."),
        min_bg_size: int = typer.Option(0, "--min-bg-size", min=0,
                                        help="Skip backgrounds whose shorter side is below this (px)."),
        voc_split: str = typer.Option("trainval", "--voc-split", help="ImageSets/Main/<split>.txt of a voc: source."),
        fg_names: Optional[Path] = typer.Option(None, "--fg-names", help="Adobe foreground name list "
                                                                         "(training_fg_names.txt)."),
        bg_names: Optional[Path] = typer.Option(None, "--bg-names", help="Adobe background name list: fg i takes "
                                                                         "lines per_fg*i .. per_fg*i+per_fg-1."),
        per_fg: Optional[int] = typer.Option(None, "--per-fg", min=1,
                                             help="Backgrounds per foreground (default: bg-names lines / "
                                                  "foregrounds, else 100; 4 with --samples)."),
        seed: int = typer.Option(0, "--seed", help="Seed for background draws, trimaps, plates, crops."),
        workers: Optional[int] = typer.Option(None, "--workers", "-j", min=1, help="Processes (default: all cores)."),
        shard: str = typer.Option("1/1", "--shard", help="Make only shard I of N (1-based), e.g. 2/4."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Redo every composite instead of resuming."),
        trimaps: bool = typer.Option(False, "--trimaps", help="Also write trimap/ (random erosion/dilation)."),
        trimap_kernel: str = typer.Option("2-5", "--trimap-kernel", help="Elliptical kernel size range LO-HI."),
        trimap_iterations: str = typer.Option("5-15", "--trimap-iterations", help="Iteration range LO-HI."),
        plates: bool = typer.Option(False, "--plates", help="Also write plate/ (Background Matting's B')."),
        plate_shift: bool = typer.Option(False, "--plate-shift", help="Plates: BGMv2-style small misalignment."),
        plate_blur: bool = typer.Option(False, "--plate-blur", help="Plates: occasional slight blur."),
        plate_shadow: bool = typer.Option(False, "--plate-shadow",
                                          help="BGMv2-style shadow of the subject on the background "
                                               "(changes merged/ and bg/, not the plate)."),
        crop: Literal["topleft", "random"] = typer.Option("topleft", "--crop",
                                                          help="Background crop: topleft (published) or random."),
        convention: Literal["published", "opencv-float32"] = typer.Option("published", "--convention",
                                       help="published: PIL bicubic + float64 blend, pixel-identical with the "
                                            "published Composition-1k files; opencv-float32: OpenCV bicubic + "
                                            "float32 blend."),
        png_level: Optional[int] = typer.Option(None, "--png-level", min=0, max=9,
                                                help="PNG compression level (lossless at every level) "
                                                     "(default: 1, fastest)."),
        copy: bool = typer.Option(False, "--copy", help="Copy fg/alpha files instead of hard-linking them."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
        max_pixels: Optional[int] = max_pixels_option(),
    ) -> None:
        """Composite foregrounds over backgrounds, Composition-1k style (bit-exact, parallel, resumable)."""
        from rich.table import Table

        from mattecli.compose import ComposeOptions, compose_dataset, parse_range, parse_shard
        from mattecli.compose.options import DEFAULT_PNG_LEVEL
        from mattecli.console import console
        from mattecli.data.plates import PlateSpec
        from mattecli.data.trimap import TrimapSpec
        from mattecli.errors import MatteError

        apply_max_pixels(max_pixels)
        options = ComposeOptions(
            out=out, fg=fg, alpha=alpha, bg=bg, samples=samples, bg_root=bg_root,
            exclude_categories=tuple(exclude_category), min_bg_size=min_bg_size, voc_split=voc_split,
            fg_names=fg_names, bg_names=bg_names, per_fg=per_fg, seed=seed, workers=workers,
            shard=parse_shard(shard), overwrite=overwrite, trimaps=trimaps,
            trimap_spec=TrimapSpec(parse_range(trimap_kernel, "--trimap-kernel"),
                                   parse_range(trimap_iterations, "--trimap-iterations")),
            plates=plates, plate_spec=PlateSpec(plate_shift, plate_blur, plate_shadow), crop=crop, convention=convention,
            png_level=DEFAULT_PNG_LEVEL if png_level is None else png_level, link=not copy,
            command=shlex.join(["mattecli", *sys.argv[1:]]), show_progress=not quiet,
        )
        s = compose_dataset(options)

        table = Table(title=f"compose: {s.out}", show_header=False, title_justify="left")
        table.add_column(style="bold")
        table.add_column(justify="right")
        table.add_row("foregrounds", f"{s.foregrounds}")
        table.add_row("backgrounds available", f"{s.backgrounds_available:,}")
        table.add_row("composites planned", f"{s.planned:,} ({s.per_fg} per foreground)")
        if s.in_shard != s.planned:
            table.add_row("in this shard", f"{s.in_shard:,} ({shard})")
        table.add_row("already done (skipped)", f"{s.already_done:,}")
        table.add_row("written now", f"{s.written:,}" + (f", {s.upscaled:,} on upscaled backgrounds"
                                                         if s.upscaled else ""))
        if s.failures:
            table.add_row("[red]failed[/]", f"[red]{len(s.failures):,}[/]")
        rate = s.written / s.seconds if s.seconds > 0 else 0.0
        table.add_row("time", f"{s.seconds:.1f} s ({rate:.2f} composites/s)")
        table.add_row("manifest.json", f"{s.manifest_records:,} records" + ("" if s.complete else " (incomplete)"))
        console.print(table)
        if s.missing:
            raise MatteError(f"manifest.json is incomplete: {len(s.missing)} composite(s) of this run have files "
                             f"missing on disk ({', '.join(s.missing[:3])}{' ...' if len(s.missing) > 3 else ''}), "
                             f"so they are left out of it; rerun to make them")
        if s.failures:
            raise MatteError(f"{len(s.failures)} composites failed (listed above); the other composites are "
                             f"written and listed in manifest.json; fix the files and rerun to finish")
