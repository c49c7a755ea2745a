"""`mattecli samples OUT`: write the built-in procedural samples."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mattecli.cli.options import apply_max_pixels, examples, max_pixels_option


def register(app: typer.Typer) -> None:
    @app.command("samples", epilog=examples(
        "mattecli samples my-samples --foregrounds 3 --backgrounds 4 --seed 7",
        "mattecli compose --fg my-samples/fg --alpha my-samples/alpha --bg my-samples/bg --out my-dataset --per-fg 2 "
        "--trimaps"))
    def samples(
        out: Path = typer.Argument(..., help="Folder to write fg/, alpha/ and bg/ into."),
        foregrounds: int = typer.Option(6, "--foregrounds", min=1, help="Number of foregrounds."),
        backgrounds: int = typer.Option(12, "--backgrounds", min=1, help="Number of backgrounds."),
        width: int = typer.Option(320, "--width", min=32, help="Typical foreground width."),
        height: int = typer.Option(256, "--height", min=32, help="Typical foreground height."),
        seed: int = typer.Option(0, "--seed", help="Same seed, same bytes."),
        max_pixels: Optional[int] = max_pixels_option(),
    ) -> None:
        """Write procedural foregrounds with alpha (strands, motion blur, veils, holes) and backgrounds."""
        from mattecli.console import console
        from mattecli.data.samples import write_samples

        apply_max_pixels(max_pixels)

        s = write_samples(out, seed=seed, foregrounds=foregrounds, backgrounds=backgrounds, size=(width, height))
        console.print(f"wrote {len(s.names)} foregrounds to {s.fg_dir} (alphas in {s.alpha_dir}) "
                      f"and {len(s.backgrounds)} backgrounds to {s.bg_dir}")
