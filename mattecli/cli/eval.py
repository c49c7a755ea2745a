"""`mattecli eval`: score predicted mattes with the DIM MATLAB metrics."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

_FORMATS = {"sad": "{:.3f}", "mse": "{:.5f}", "grad": "{:.3f}", "conn": "{:.3f}"}
_TITLES = {"sad": "SAD", "mse": "MSE", "grad": "Grad", "conn": "Conn"}


def _pairing(pred_dir: Path, gt: Optional[Path], trimap: Optional[Path], data: Optional[Path]):
    from mattecli.errors import MatteError
    from mattecli.metrics import pair_dataset, pair_folders

    if data is not None:
        if gt is not None or trimap is not None:
            raise MatteError("give either --data, or --gt and --trimap, not both")
        return pair_dataset(pred_dir, data)
    if gt is None or trimap is None:
        raise MatteError("give --gt GT_DIR and --trimap TRIMAP_DIR, or --data DATASET_DIR")
    return pair_folders(pred_dir, gt, trimap)


def render_report(report, worst: int) -> None:
    """Rich tables of the means and the worst images (also used by ``mattecli demo``)."""
    from rich.table import Table

    from mattecli.console import console

    means = report.mean()
    table = Table(title=f"mean of {len(report.scored)} images ({report.convention})",
                  caption="SAD, Grad, Conn / 1000; MSE raw")
    for m in report.metrics:
        table.add_column(_TITLES[m], justify="right")
    table.add_row(*(_FORMATS[m].format(means[m]) for m in report.metrics))
    console.print(table)
    if worst and len(report.scored) > 1:
        key = report.metrics[0]
        detail = Table(title=f"worst {min(worst, len(report.scored))} by {_TITLES[key]}")
        detail.add_column("image")
        for m in report.metrics:
            detail.add_column(_TITLES[m], justify="right")
        for r in report.worst(worst):
            detail.add_row(r.name, *(_FORMATS[m].format(r.scores[m]) for m in report.metrics))
        console.print(detail)


def run_eval(pairing, metrics: str, convention: str, workers: int, skip_missing: bool,
             json_path: Optional[Path], csv_path: Optional[Path], worst: int) -> None:
    """Score a pairing, show and write the results; the body of ``mattecli eval``."""
    from mattecli.console import console, progress
    from mattecli.errors import MatteError
    from mattecli.io import atomic
    from mattecli.metrics import CONVENTIONS, check_metric_names, evaluate_items

    try:
        names = check_metric_names(metrics.split(","))
    except ValueError as exc:
        raise MatteError(f"--metrics: {exc}") from None
    if convention not in CONVENTIONS:
        raise MatteError(f"--convention: {convention!r} is not one of {', '.join(CONVENTIONS)}")
    for line in pairing.missing:
        console.print(f"[yellow]missing[/] {line}", soft_wrap=True)
    if pairing.missing and not skip_missing:
        raise MatteError(f"{len(pairing.missing)} image(s) lack a file (listed above); "
                         "pass --skip-missing to score the others")
    if not pairing.items:
        raise MatteError("nothing to evaluate: no image has a prediction, ground truth and trimap")

    with progress("img") as bar:
        task = bar.add_task("evaluating", total=len(pairing.items))
        report = evaluate_items(pairing.items, names, convention, workers or None,
                                on_result=lambda _: bar.advance(task))
    for r in report.results:
        for note in r.notes:
            console.print(f"[yellow]warning[/] {note}", soft_wrap=True)
    for r in report.failures:
        console.print(f"[red]error[/] {r.error}", soft_wrap=True)
    if report.scored:
        render_report(report, worst)
        if json_path is not None:
            atomic.write_json(json_path, report.to_json())
        if csv_path is not None:
            atomic.write_text(csv_path, report.to_csv())
    if report.failures:
        raise MatteError(f"{len(report.failures)} image(s) could not be scored (listed above)")


def _predict(weights: Path, data: Optional[Path], pred_dir: Path, device: str, batch_size: int) -> None:
    """``--weights``: write the model's predictions for the dataset into PRED_DIR."""
    from mattecli.console import console, progress
    from mattecli.data.manifest import read_manifest
    from mattecli.errors import MatteError
    from mattecli.inference.predict_dataset import predict_dataset

    if data is None:
        raise MatteError("--weights needs --data DATASET (a composed test set with trimaps)")
    console.print(f"predictions of {weights} go to {pred_dir}")
    with progress("img") as bar:
        task = bar.add_task("matting", total=len(read_manifest(data)))
        summary = predict_dataset(weights, data, pred_dir, device, batch_size, on_image=lambda _: bar.advance(task))
    for line in summary.failures:
        console.print(f"[red]error[/] {line}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_(
        pred_dir: Optional[Path] = typer.Argument(None, help="Folder of predicted alpha mattes (searched "
                                                             "recursively). With --weights it may be left out: "
                                                             "predictions go to <checkpoint folder>/predictions/"
                                                             "<dataset name>."),
        gt: Optional[Path] = typer.Option(None, "--gt", help="Folder of ground-truth alphas, paired by name."),
        trimap: Optional[Path] = typer.Option(None, "--trimap", help="Folder of trimaps, paired by name."),
        data: Optional[Path] = typer.Option(None, "--data",
                                            help="A `mattecli compose` dataset: its manifest gives each "
                                                 "composite's alpha and trimap."),
        metrics: str = typer.Option("sad,mse,grad,conn", "--metrics", help="Comma-separated subset."),
        convention: str = typer.Option("matlab", "--convention",
                                       help="matlab (the DIM evaluation code, default) or mmagic (mmagic 1.x)."),
        json_path: Optional[Path] = typer.Option(None, "--json", help="Write means and per-image scores as JSON."),
        csv_path: Optional[Path] = typer.Option(None, "--csv", help="Write per-image scores as CSV."),
        workers: int = typer.Option(0, "--workers", min=0, help="Processes; 0 uses every core."),
        skip_missing: bool = typer.Option(False, "--skip-missing", help="Score the complete images only."),
        worst: int = typer.Option(5, "--worst", min=0, help="How many of the worst images to list."),
        weights: Optional[Path] = typer.Option(None, "--weights",
                                               help="A trained checkpoint: first matte --data's merged images "
                                                    "with their trimaps into PRED_DIR, then score them."),
        device: Optional[str] = typer.Option(None, "--device",
                                             help="Only with --weights: auto, cpu, cuda or cuda:N [default: auto]."),
        batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1,
                                                 help="Only with --weights: images per batch [default: 1]."),
    ) -> None:
        """Score predictions with SAD, MSE, Gradient and Connectivity over the unknown region."""
        from mattecli.cli.options import refuse_unless
        from mattecli.errors import MatteError

        refuse_unless(weights is not None, "--weights (scoring runs on the CPU; use --workers for processes)",
                      device=device, batch_size=batch_size)
        if pred_dir is None:
            if weights is None or data is None:
                raise MatteError("give PRED_DIR (or --weights CKPT --data DATASET to predict first)")
            pred_dir = weights.parent / "predictions" / data.resolve().name
        if weights is not None:
            _predict(weights, data, pred_dir, device or "auto", batch_size or 1)
        run_eval(_pairing(pred_dir, gt, trimap, data), metrics, convention, workers, skip_missing,
                 json_path, csv_path, worst)
