"""`mattecli weights import|info`: foreign checkpoints in, and what a checkpoint holds."""
from __future__ import annotations

import json
from pathlib import Path

import typer

from mattecli.cli.options import examples

_IMPORT_EXAMPLE = ("mattecli weights import mmagic-dim dim_stage3_v16_pln_1x1_1000k_comp1k_SAD-50.6_20200609_111851-647f24b6.pth --out dim.pt   "
                   "# the file from mmagic's model zoo, downloaded first")
weights_app = typer.Typer(help="Import published checkpoints (mmagic, ...) and inspect checkpoints.",
                          no_args_is_help=True, epilog=examples(
                              "mattecli weights formats", _IMPORT_EXAMPLE,
                              "mattecli weights info runs/dim/best.pt   # after the `train dim` example"))


def _format_names(incomplete: str) -> list[str]:
    """Shell completion of FORMAT: the import formats the family folders provide."""
    from mattecli.weights.importer import import_formats

    return [name for name in sorted(import_formats()) if name.startswith(incomplete)]


@weights_app.command("import", epilog=examples(
    _IMPORT_EXAMPLE, "mattecli matte demo-out/dataset/merged/sample_00_0.png --trimap "
    "demo-out/dataset/trimap/sample_00_0.png --weights dim.pt --out imported"))
def import_(
    fmt: str = typer.Argument(..., metavar="FORMAT", autocompletion=_format_names,
                              help="Source format, e.g. mmagic-dim: one of `mattecli weights formats` (shell "
                                   "completion lists them; the families provide them, so the list is not fixed)."),
    source: Path = typer.Argument(..., metavar="FILE", help="The foreign checkpoint (read without executing it)."),
    out: Path = typer.Option(..., "--out", "-o", help="The mattecli checkpoint to write."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace --out if it exists."),
) -> None:
    """Convert a foreign checkpoint into a mattecli checkpoint for matte, eval, video, export, train --init-from."""
    from mattecli.console import console
    from mattecli.weights.importer import import_weights

    with console.status(f"reading {source} (tensors only) and converting"):
        result = import_weights(fmt, source, out, overwrite)
    for note in result.notes:
        console.print(f"[yellow]note[/]: {source}: {note}")
    console.print(f"[green]imported[/] {source} ({fmt}, sha256 {result.sha256[:12]}...) -> {result.out}: "
                  f"family {result.family}, {result.parameters:,} parameters, config {result.model_config}")


@weights_app.command("formats", epilog=examples("mattecli weights formats"))
def formats() -> None:
    """List the import formats every family provides."""
    from rich.table import Table

    from mattecli.console import console
    from mattecli.weights.importer import import_formats

    table = Table("format", "family", "what")
    for name, spec in sorted(import_formats().items()):
        table.add_row(name, spec.family, spec.description)
    console.print(table)


def _value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return "-" if value is None else str(value)


@weights_app.command("info", epilog=examples(
    "mattecli weights info runs/dim/best.pt   # after the `train dim` example",
    "mattecli weights info runs/dim/best.pt --json"))
def info(
    ckpt: Path = typer.Argument(..., metavar="CKPT", help="A mattecli checkpoint (trained or imported)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout instead of a table."),
) -> None:
    """Family, stage, guidance, recipe, steps, validation metrics, parameters and provenance of a checkpoint."""
    from rich.console import Console
    from rich.table import Table

    from mattecli.weights.info import checkpoint_info

    data = checkpoint_info(ckpt)
    if as_json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    table = Table(title=str(ckpt), show_header=False)
    table.add_column(style="bold")
    table.add_column()
    prov = data["provenance"]
    origin = (f"imported from {prov.get('file')} ({prov.get('format')}), sha256 {prov.get('sha256')}"
              if prov["origin"] == "imported" else prov["origin"])
    rows = [("family", data["family"]), ("stage", data["stage"]), ("guidance", data["guidance"]),
            ("size multiple", data["size_multiple"]), ("model config", data["model_config"]),
            ("parameters", f"{data['parameters']:,}"), ("steps trained", data["steps_trained"]),
            ("validation", data["validation"]), ("best SAD", data["best_sad"]), ("provenance", origin),
            ("start", data["start"]),
            ("resumable", "yes (optimiser state)" if data["resumable"] else "no (weights only)"),
            ("file sha256", data["sha256"])]
    if data["recipe"]:
        rows.append(("recipe", data["recipe"]))
    for note in data["notes"]:
        rows.append(("note", note))
    for key, value in rows:
        table.add_row(key, _value(value))
    Console(width=200).print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(weights_app, name="weights")
