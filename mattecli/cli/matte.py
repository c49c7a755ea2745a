"""`mattecli matte INPUT --out OUT`: matte an image or a folder tree (flags -> core -> render)."""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

import typer

from mattecli.cli.options import ClickMethod, apply_max_pixels, click_method_option, examples, max_pixels_option


def register(app: typer.Typer) -> None:
    @app.command("matte", epilog=examples(
        "mattecli matte demo-out/dataset/merged --trimap demo-out/dataset/trimap --out mattes",
        "mattecli matte demo-out/dataset/merged/sample_00_0.png --trimap demo-out/dataset/trimap/sample_00_0.png "
        "--out mattes --output alpha,rgba,fg,comp --bg-color green",
        "mattecli matte demo-out/dataset/merged --background demo-out/dataset/plate --out plate-mattes",
        "mattecli matte demo-out/dataset/merged/sample_01_0.png --trimap demo-out/dataset/trimap/sample_01_0.png "
        "--weights runs/dim/best.pt --out dim-mattes   # after the `train dim` example; --device cuda on a GPU",
        "mattecli matte demo-out/dataset/merged --trimap demo-out/dataset/trimap --out part --shard 1/2   "
        "# then 2/2 (docs/scale.md)"))
    def matte(
        input: Path = typer.Argument(..., help="An image, or a folder searched recursively."),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder: OUT/<kind>/<relative path>/<stem>.png."),
        output: str = typer.Option("alpha,rgba", "--output",
                                   help="Comma list of alpha, rgba (cutout with estimated foreground colour), "
                                        "fg (foreground colour), comp (composite over --bg-color/--bg-image); with a network "
                                        "that predicts them: trimap (0/128/255), uncertainty (16-bit sigma). "
                                        "(video defaults to comp,alpha: an RGBA video is large and slow to encode, "
                                        "a PNG cutout is not.)"),
        trimap: Optional[Path] = typer.Option(None, "--trimap", help="Trimap file, or folder paired by relative path and stem."),
        clicks: Optional[Path] = typer.Option(None, "--clicks",
                                              help='JSON: image name -> [{"x", "y", "label": "fg"|"bg"}, ...]; '
                                                   'entries may also be strokes {"label", "radius", "points": '
                                                   '[[x, y], ...]} (docs/studio.md).'),
        clicked_only: bool = typer.Option(False, "--clicked-only",
                                          help="With --clicks: matte only the images the clicks file names (the "
                                               "others are left out, not failed), as the studio's replay does."),
        click_method: Optional[ClickMethod] = click_method_option("Without --weights, how clicks become a matte:"),
        background: Optional[Path] = typer.Option(None, "--background",
                                                  help="Background plate, or folder of plates paired by name."),
        segmentation: Optional[Path] = typer.Option(None, "--segmentation",
                                                    help="With --background and a bgm network: person masks "
                                                         "(file or folder paired by name); default from the plate."),
        segmenter: Optional[Path] = typer.Option(None, "--segmenter",
                                                 help="With --background and a bgm network: a guidance-free checkpoint "
                                                      "(shm) whose alpha is the person mask (instead of --segmentation)."),
        align: bool = typer.Option(False, "--align/--no-align",
                                   help="With --background: register each plate onto its image (hand-held camera)."),
        click_radius: Optional[float] = typer.Option(None, "--click-radius", min=0.0,
                                                     help="Radius of a click's disk in pixels \\[default: 5 for the "
                                                          "classical method; click networks: their training radius "
                                                          "(15) in pixels of the network's input]."),
        refine_patches: Optional[int] = typer.Option(None, "--refine-patches", min=0,
                                                     help="Click networks: refine the K most uncertain 64x64 patches "
                                                          "(0 = off) \\[default: the checkpoint's]."),
        method: Optional[Literal["classical"]] = typer.Option(None, "--method", "-m",
                                             help="The method that runs without --weights: classical (closed-form "
                                                  "matting, Levin et al.; the default and the only one). Not with "
                                                  "--weights, whose checkpoint names its network."),
        weights: Optional[Path] = typer.Option(None, "--weights", help="A trained checkpoint (its family is read from it)."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
        precision: Literal["fp32", "fp16", "bf16"] = typer.Option("fp32", "--precision",
                                                                  help="Trained networks: fp32, fp16 (CUDA) or bf16."),
        batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1,
                                                 help="Trained networks (--weights): images of equal size per batch "
                                                      "\\[default: 4]."),
        infer_size: Optional[int] = typer.Option(None, "--infer-size", min=8,
                                                 help="Guidance-free networks (SHM): side of the square the trimap "
                                                      "network sees (default: the size it was trained at)."),
        bg_color: str = typer.Option("white", "--bg-color",
                                     help="comp background: #rrggbb, r,g,b or a name (white, as a cutout on a page; "
                                          "video's default is a light green that shows holes in moving mattes)."),
        bg_image: Optional[Path] = typer.Option(None, "--bg-image", help="comp background image (scaled up if smaller, "
                                                                         "cropped from the top left)."),
        alpha_16bit: bool = typer.Option(False, "--alpha-16bit", help="Write alpha as 16-bit PNG."),
        workers: Optional[int] = typer.Option(None, "--workers", "-j", min=1,
                                              help="The classical method: processes that solve images side by side "
                                                   "(default: all cores; each holds one image's sparse system in "
                                                   "memory). Not with --weights, which batches on one device."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Redo images whose outputs already exist."),
        shard: str = typer.Option("1/1", "--shard", help="I/N: process only block I of N (1-based)."),
        max_pixels: Optional[int] = max_pixels_option(),
    ) -> None:
        """Matte images: alpha and cutouts with estimated foreground colour, mirrored into OUT."""
        from mattecli.cli.options import parse_color, parse_kinds, refuse_unless
        from mattecli.data.trimap import off_level_warning
        from mattecli.errors import MatteError
        from mattecli.shards import parse_shard
        from mattecli.console import console, print_failures, progress
        from mattecli.inference.batch import OUTPUT_KINDS, MatteOptions, plan_matte, run_matte
        from mattecli.inference.clicks import DEFAULT_RADIUS
        from mattecli.inference.methods import build_method
        from mattecli.io.images import read_rgb

        apply_max_pixels(max_pixels)
        options = MatteOptions(
            input=input, out=out, outputs=parse_kinds(output, OUTPUT_KINDS), trimap=trimap, clicks=clicks,
            background=background, click_radius=DEFAULT_RADIUS if click_radius is None else click_radius,
            bg_color=parse_color(bg_color), bg_image=bg_image, alpha_bits=16 if alpha_16bit else 8,
            overwrite=overwrite, shard=parse_shard(shard), segmentation=segmentation, segmenter=segmenter,
            align=align, clicked_only=clicked_only)
        if bg_image is not None:
            read_rgb(bg_image)  # fail now, not after the first image
        if weights is not None and method is not None:
            raise MatteError(f"--method {method} names the method that runs without --weights; with --weights the "
                             "checkpoint's network runs: drop one of them")
        refuse_unless(weights is not None, "--weights (the classical method mattes one image at a time)",
                      batch_size=batch_size)
        refuse_unless(clicks is not None, "--clicks", click_method=click_method)
        refuse_unless(weights is None, "the classical method (without --weights)", workers=workers)
        runner = build_method(weights, method or "classical", device, batch_size or 4, precision, click_radius,
                              refine_patches=refine_patches, infer_size=infer_size, click_method=click_method,
                              workers=workers)
        plan = plan_matte(options, runner)  # every setup error before any output
        console.print(runner.describe())
        with progress("img") as bar:
            task = bar.add_task("matte", total=len(plan.items))
            summary = run_matte(options, runner, on_item=lambda item, status: bar.advance(task), plan=plan)
        console.print(f"{summary.done} matted, {summary.skipped} skipped (outputs exist; --overwrite to redo), "
                      f"{len(summary.failures)} failed of {summary.total} in {out}")
        off_level = off_level_warning(summary.off_level_trimaps)
        if off_level:
            console.print(f"[yellow]warning:[/] {off_level}", soft_wrap=True, highlight=False)
        if summary.unused_clicks:
            console.print(f"[yellow]warning:[/] clicks for {len(summary.unused_clicks)} name(s) matched no image: "
                          f"{', '.join(summary.unused_clicks[:5])}")
        if summary.failures:
            print_failures(summary.failures)
            raise typer.Exit(1)
