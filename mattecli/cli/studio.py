"""`mattecli studio IMAGE_OR_FOLDER`: click matting in the browser (flags -> core -> serve)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mattecli.cli.options import ClickMethod, click_method_option, examples


def register(app: typer.Typer) -> None:
    @app.command("studio", epilog=examples(
        "mattecli studio demo-out/dataset/merged --out studio-out   # open the printed address; Ctrl+C to stop",
        "mattecli studio demo-out/dataset/merged --weights runs/click/best.pt --out studio-click --port 0   "
        "# after the `train click` example"))
    def studio(
        input: Path = typer.Argument(..., help="An image, or a folder searched recursively."),
        out: Path = typer.Option(Path("studio-out"), "--out", "-o",
                                 help="Where save writes: OUT/<kind>/<relative path>/<stem>.png and OUT/clicks.json."),
        weights: Optional[Path] = typer.Option(None, "--weights", help="A click checkpoint; without it, closed-form matting."),
        output: str = typer.Option("alpha,rgba", "--output", help="What save writes: comma list of alpha, rgba, fg, comp "
                                                                   "(and uncertainty with a click network), as matte."),
        click_radius: Optional[float] = typer.Option(None, "--click-radius", min=0.0,
                                                     help="Radius of a click's disk in full-resolution pixels \\[default: as "
                                                          "matte: 5 for the classical method, a click network's own rule]."),
        click_method: Optional[ClickMethod] = click_method_option("Without --weights:"),
        work_size: int = typer.Option(384, "--work-size", min=16,
                                      help="Longer side of the live preview's computation; save is always at full resolution."),
        refine_patches: Optional[int] = typer.Option(None, "--refine-patches", min=0,
                                                     help="Starting refinement budget (click networks that have one)."),
        bg_color: str = typer.Option("white", "--bg-color", help="comp background: #rrggbb, r,g,b or a name (as matte)."),
        alpha_16bit: bool = typer.Option(False, "--alpha-16bit", help="Save alpha as 16-bit PNG."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
        host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; anything but localhost exposes the studio."),
        port: int = typer.Option(8765, "--port", min=0, max=65535, help="Port (0: any free one)."),
        open_browser: bool = typer.Option(False, "--open", help="Open the page in the default browser."),
    ) -> None:
        """Click matting in the browser: click, see the matte, save what `matte --clicks` writes."""
        from mattecli.cli.options import parse_color, parse_kinds
        from mattecli.console import console
        from mattecli.inference.batch import OUTPUT_KINDS, MatteOptions
        from mattecli.inference.clicks import DEFAULT_RADIUS
        from mattecli.inference.methods import build_method
        from mattecli.studio.server import StudioServer
        from mattecli.studio.session import StudioSession

        options = MatteOptions(input=input, out=out, outputs=parse_kinds(output, OUTPUT_KINDS),
                               click_radius=DEFAULT_RADIUS if click_radius is None else click_radius,
                               bg_color=parse_color(bg_color), alpha_bits=16 if alpha_16bit else 8, overwrite=True)
        # refine_patches is refused with one line for a method without local refinement
        method = build_method(weights, "classical", device, 1, "fp32", click_radius, refine_patches,
                              click_method=click_method)
        session = StudioSession(options, method, work_size, weights)
        server = StudioServer(session, host, port)
        console.print(method.describe())
        console.print(f"{len(session.items)} image(s); save writes into {out}")
        if session.outside_links:
            console.print(f"[yellow]note[/]: left out {len(session.outside_links)} symbolic link(s) that lead out of "
                          f"{input}: {', '.join(session.outside_links[:3])}", soft_wrap=True)
        if host not in ("127.0.0.1", "localhost", "::1"):
            console.print(f"[bold yellow]warning:[/] listening on {host}: anyone who can reach this address and "
                          "has the link (with its token) can read your images and write into OUT")
        console.print(f"studio at [bold]{server.url}[/]  (Ctrl+C to stop)", soft_wrap=True)
        print(server.url, flush=True)  # on stdout alone, for scripts
        if open_browser:
            import webbrowser

            webbrowser.open(server.url)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            console.print("studio stopped")
        finally:
            server.server_close()
