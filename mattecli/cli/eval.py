"""`mattecli eval`: score predicted mattes with the DIM MATLAB metrics."""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

import typer

from mattecli.cli.options import ClickMethod, apply_max_pixels, click_method_option, examples, max_pixels_option

_FORMATS = {"sad": "{:.3f}", "mse": "{:.5f}", "grad": "{:.3f}", "conn": "{:.3f}", "mad": "{:.5f}"}
_TITLES = {"sad": "SAD", "mse": "MSE", "grad": "Grad", "conn": "Conn", "mad": "MAD"}


def _pairing(pred_dir: Optional[Path], gt: Optional[Path], trimap: Optional[Path], data: Optional[Path],
             region: str = "unknown", pairs: Optional[Path] = None):
    from mattecli.errors import MatteError
    from mattecli.metrics import pair_dataset, pair_folders
    from mattecli.metrics.pairing import pair_files, pair_list

    if pairs is not None:
        if pred_dir is not None or gt is not None or trimap is not None or data is not None:
            raise MatteError("--pairs names every file: drop PRED, --gt, --trimap and --data")
        return pair_list(pairs, need_trimap=region != "all")
    if pred_dir is not None and pred_dir.is_file():
        if data is not None:
            raise MatteError(f"{pred_dir}: a single prediction file is scored with --gt FILE and --trimap FILE, "
                             "not --data")
        if trimap is not None and region == "all":
            raise MatteError("--trimap: --region all scores every pixel and reads no trimap; drop one of them")
        return pair_files(pred_dir, gt, trimap, need_trimap=region != "all")
    if data is not None:
        if gt is not None or trimap is not None:
            raise MatteError("give either --data, or --gt and --trimap, not both")
        return pair_dataset(pred_dir, data, need_trimap=region != "all")
    if gt is None or (trimap is None and region != "all"):
        raise MatteError("give --gt GT_DIR and --trimap TRIMAP_DIR (--gt alone with --region all), "
                         "or --data DATASET_DIR")
    if trimap is not None and region == "all":
        raise MatteError("--trimap: --region all scores every pixel and reads no trimap; drop one of them")
    return pair_folders(pred_dir, gt, trimap)


def render_report(report, worst: int) -> None:
    """Rich tables of the means and the worst images (also used by ``mattecli demo``)."""
    from rich.table import Table

    from mattecli.console import console, printable

    means = report.mean()
    where = "whole image" if getattr(report, "region", "unknown") == "all" else "unknown region"
    table = Table(title=f"mean of {len(report.scored)} images ({report.convention}, {where})",
                  caption="SAD, Grad, Conn / 1000; MSE, MAD raw")
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
            detail.add_row(printable(r.name), *(_FORMATS[m].format(r.scores[m]) for m in report.metrics))
        console.print(detail)


def run_eval(pairing, metrics: str, convention: str, workers: int, skip_missing: bool,
             json_path: Optional[Path], csv_path: Optional[Path], worst: int, region: str = "unknown") -> None:
    """Score a pairing, show and write the results; the body of ``mattecli eval``."""
    from mattecli.console import console, progress
    from mattecli.errors import MatteError
    from mattecli.io import atomic
    from mattecli.metrics import CONVENTIONS, REGIONS, check_metric_names, evaluate_items

    try:
        names = check_metric_names(metrics.split(","))
    except ValueError as exc:
        raise MatteError(f"--metrics: {exc}") from None
    if convention not in CONVENTIONS:
        raise MatteError(f"--convention: {convention!r} is not one of {', '.join(CONVENTIONS)}")
    if region not in REGIONS:
        raise MatteError(f"--region: {region!r} is not one of {', '.join(REGIONS)}")
    if region == "all" and convention != "matlab":
        raise MatteError("--region all is scored with --convention matlab only")
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
                                on_result=lambda _: bar.advance(task), region=region)
    from mattecli.data.trimap import off_level_warning

    for r in report.results:
        for note in r.notes:
            console.print(f"[yellow]warning[/] {note}", soft_wrap=True)
    off_level = off_level_warning({str(item.trimap): r.trimap_changed for item, r in zip(pairing.items, report.results)
                                   if r.trimap_changed})
    if off_level:
        console.print(f"[yellow]warning[/] {off_level}", soft_wrap=True, highlight=False)
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


def _predict(weights: Path, data: Optional[Path], pred_dir: Path, device: str, batch_size: int,
             infer_size: Optional[int] = None) -> None:
    """``--weights``: write the model's predictions for the dataset into PRED_DIR."""
    from mattecli.console import console, progress
    from mattecli.data.manifest import read_manifest
    from mattecli.errors import MatteError
    from mattecli.inference.predict_dataset import predict_dataset

    if data is None:
        raise MatteError("--weights needs --data DATASET (a composed test set; with trimaps for trimap networks)")
    console.print(f"predictions of {weights} go to {pred_dir}")
    with progress("img") as bar:
        task = bar.add_task("matting", total=len(read_manifest(data)))
        summary = predict_dataset(weights, data, pred_dir, device, batch_size, on_image=lambda _: bar.advance(task),
                                  infer_size=infer_size)
    for line in summary.failures:
        console.print(f"[red]error[/] {line}", soft_wrap=True)


def _simulate_clicks(clicks: int, image_dir: Optional[Path], gt: Optional[Path], trimap: Optional[Path],
                     data: Optional[Path], weights: Optional[Path], device: str, batch_size: int,
                     refine_patches: Optional[int], metrics: str, convention: str, workers: int, skip_missing: bool,
                     json_path: Optional[Path], csv_path: Optional[Path], plot: Optional[Path], sheet: Optional[Path],
                     target_sad: float, worst: int, click_method: Optional[str] = None) -> None:
    """``--simulate-clicks N``: the clicks-against-error protocol (mattecli.inference.click_protocol)."""
    from rich.table import Table

    from mattecli.console import console, progress
    from mattecli.errors import MatteError
    from mattecli.inference.click_protocol import images_from_dataset, images_from_folders, plot_curve, simulate
    from mattecli.inference.methods import build_method
    from mattecli.io import atomic
    from mattecli.metrics import CONVENTIONS, check_metric_names

    if trimap is not None:
        raise MatteError("--simulate-clicks scores every pixel (no trimap is given to a click method); drop --trimap")
    if workers:
        raise MatteError("--workers applies to scoring saved predictions; --simulate-clicks mattes in one process")
    try:
        names = check_metric_names(metrics.split(","))
    except ValueError as exc:
        raise MatteError(f"--metrics: {exc}") from None
    if "sad" not in names:
        names = check_metric_names(["sad", *names])  # the summary and the plot need SAD
    if convention not in CONVENTIONS:
        raise MatteError(f"--convention: {convention!r} is not one of {', '.join(CONVENTIONS)}")
    if data is not None:
        if image_dir is not None or gt is not None:
            raise MatteError("give either --data, or an image folder and --gt, not both")
        images, missing = images_from_dataset(data), []
    else:
        if image_dir is None or gt is None:
            raise MatteError("--simulate-clicks needs --data DATASET, or IMAGE_DIR (the positional folder) and --gt")
        images, missing = images_from_folders(image_dir, gt)
    for line in missing:
        console.print(f"[yellow]missing[/] {line}", soft_wrap=True)
    if missing and not skip_missing:
        raise MatteError(f"{len(missing)} image(s) lack a ground truth (listed above); pass --skip-missing")
    if not images:
        raise MatteError("nothing to evaluate: no image has a ground truth")
    method = build_method(weights, "classical", device, batch_size, refine_patches=refine_patches,
                          click_method=click_method)
    console.print(method.describe())
    kept: list = []

    def keep(curve, image, alpha, extras) -> None:
        if sheet is not None and len(kept) < 6:
            kept.append((curve, image, alpha, extras))

    with progress("click") as bar:
        task = bar.add_task(f"{len(images)} image(s) x {clicks} click(s)", total=clicks)
        curve = simulate(method, images, clicks, names, convention, on_round=lambda n: bar.advance(task), keep=keep)
    for line in curve.failures:
        console.print(f"[red]error[/] {line}", soft_wrap=True)
    if not curve.images:
        raise MatteError("no image could be matted (listed above)")
    table = Table(title=f"mean over {len(curve.images)} image(s) after n simulated clicks (all pixels)",
                  caption="SAD, Grad, Conn / 1000; MSE raw")
    table.add_column("clicks", justify="right")
    for m in names:
        table.add_column(_TITLES[m], justify="right")
    for n in range(1, clicks + 1):
        mean = curve.mean(n)
        table.add_row(str(n), *(_FORMATS[m].format(mean[m]) for m in names))
    console.print(table)
    summary = curve.summary(target_sad)
    console.print(f"clicks to reach SAD <= {target_sad:g}: mean {summary['mean_clicks']:.2f} "
                  f"({summary['never_reached']} of {summary['images']} never within {clicks}; counted as {clicks + 1}); "
                  f"{curve.seconds_per_click():.3f} s per click")
    if worst:
        for im in sorted(curve.images, key=lambda im: -im.scores[-1]["sad"])[:worst]:
            console.print(f"  worst after {clicks}: {im.name}  SAD {im.scores[-1]['sad']:.3f}", soft_wrap=True)
    if json_path is not None:
        atomic.write_json(json_path, curve.to_json(target_sad))
    if csv_path is not None:
        atomic.write_text(csv_path, curve.to_csv())
    if plot is not None:
        plot_curve({"weights" if weights else "classical": curve}, plot, target_sad=target_sad)
        console.print(f"plot: {plot}")
    if sheet is not None:
        _click_sheet(sheet, kept)
        console.print(f"contact sheet: {sheet}")
    if curve.failures:
        raise MatteError(f"{len(curve.failures)} image(s) could not be matted (listed above)")


def _click_sheet(path: Path, kept: list) -> None:
    """Per image: clicks on the image, alpha after the last click, uncertainty heat map (when predicted)."""
    from mattecli.report import alpha_display, write_contact_sheet
    from mattecli.report.heatmap import draw_boxes, draw_clicks, uncertainty_overlay

    rows, labels = [], []
    for curve, image, alpha, extras in kept:
        sigma = extras.get("uncertainty")
        heat = None
        if sigma is not None:
            heat = draw_boxes(uncertainty_overlay(image, sigma), extras.get("patches", []))
        rows.append([draw_clicks(image, curve.clicks), alpha_display(alpha), heat])
        labels.append([f"{curve.name}: {len(curve.clicks)} click(s)", f"alpha, SAD {curve.scores[-1]['sad']:.2f}",
                       "uncertainty (refined patches outlined)" if heat is not None else ""])
    if rows:
        write_contact_sheet(path, rows, labels, cell_width=256)


def register(app: typer.Typer) -> None:
    @app.command("eval", epilog=examples(
        "mattecli eval demo-out/matte/alpha --data demo-out/dataset --json scores.json",
        "mattecli eval demo-out/matte/alpha --gt demo-out/dataset/alpha --trimap demo-out/dataset/trimap --csv scores.csv",
        "mattecli eval demo-out/matte/alpha/sample_00_0.png --gt demo-out/dataset/alpha/sample_00.png "
        "--trimap demo-out/dataset/trimap/sample_00_0.png",
        "mattecli eval demo-out/matte/alpha --data demo-out/dataset --region all --metrics sad,mse,mad",
        "mattecli eval --simulate-clicks 2 --data demo-out/dataset --weights runs/click/best.pt --plot clicks.png   "
        "# after the `train click` example",
        "mattecli eval --data demo-out/dataset --weights runs/dim/best.pt   # after the `train dim` example",
        "# files with other names: --pairs pairs.csv (header pred,gt,trimap)"))
    def eval_(
        pred_dir: Optional[Path] = typer.Argument(None, help="Folder of predicted alpha mattes (searched "
                                                             "recursively), or one prediction file scored "
                                                             "against --gt FILE (and --trimap FILE). With "
                                                             "--weights it may be left out: "
                                                             "predictions go to <checkpoint folder>/predictions/"
                                                             "<dataset name>."),
        gt: Optional[Path] = typer.Option(None, "--gt", help="Folder of ground-truth alphas, paired by name "
                                                             "(a file when PRED is a file)."),
        trimap: Optional[Path] = typer.Option(None, "--trimap", help="Folder of trimaps, paired by name "
                                                                     "(a file when PRED is a file)."),
        pairs: Optional[Path] = typer.Option(None, "--pairs",
                                             help="Files whose names differ: a CSV with the header pred,gt,trimap "
                                                  "(name optional) or a JSON list of {\"pred\", \"gt\", \"trimap\"}; "
                                                  "relative paths from the list's folder. Instead of PRED, --gt, --trimap."),
        data: Optional[Path] = typer.Option(None, "--data",
                                            help="A `mattecli compose` dataset: its manifest gives each "
                                                 "composite's alpha and trimap."),
        metrics: str = typer.Option("sad,mse,grad,conn", "--metrics", help="Comma-separated subset of "
                                                                            "sad, mse, grad, conn, mad."),
        region: Literal["unknown", "all"] = typer.Option("unknown", "--region",
                                   help="unknown (trimap == 128, Composition-1k) or all (every pixel: the "
                                        "trimap-free convention of the human-matting papers; no trimap needed)."),
        convention: Literal["matlab", "mmagic"] = typer.Option("matlab", "--convention",
                                       help="matlab (the DIM evaluation code, default) or mmagic (mmagic 1.x)."),
        json_path: Optional[Path] = typer.Option(None, "--json", help="Write means and per-image scores as JSON."),
        csv_path: Optional[Path] = typer.Option(None, "--csv", help="Write per-image scores as CSV."),
        workers: Optional[int] = typer.Option(None, "--workers", "-j", min=1, help="Processes (default: all cores)."),
        skip_missing: bool = typer.Option(False, "--skip-missing", help="Score the complete images only."),
        worst: int = typer.Option(5, "--worst", min=0, help="How many of the worst images to list."),
        weights: Optional[Path] = typer.Option(None, "--weights",
                                               help="A trained checkpoint: first matte --data's merged images "
                                                    "with their trimaps into PRED_DIR, then score them."),
        device: Optional[str] = typer.Option(None, "--device",
                                             help="Only with --weights: auto, cpu, cuda or cuda:N \\[default: auto]."),
        batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1,
                                                 help="Only with --weights: images per batch \\[default: 1]."),
        max_pixels: Optional[int] = max_pixels_option(),
        simulate_clicks: int = typer.Option(0, "--simulate-clicks", min=0,
                                            help="Clicks against error: a simulated user clicks N times (deepest "
                                                 "point of the larger error region); the method (classical, or "
                                                 "--weights of a click network) re-mattes after each click. Inputs: "
                                                 "--data, or the positional folder as images with --gt."),
        target_sad: float = typer.Option(1.0, "--target-sad", min=0.0,
                                         help="With --simulate-clicks: report the clicks needed to reach this SAD."),
        plot: Optional[Path] = typer.Option(None, "--plot", help="With --simulate-clicks: SAD-against-clicks plot (PNG); "
                                                                 "for a video: per-frame error plot (PNG)."),
        video: bool = typer.Option(False, "--video",
                                   help="PRED and --gt are clips (video files or folders of frames, in name order): "
                                        "MAD, MSE, Grad, Conn, dtSSD, MESSDdt per frame, RVM's conventions "
                                        "(--metrics picks from mad,mse,grad,conn,dtssd,messddt). "
                                        "Implied when PRED is a video file."),
        sheet: Optional[Path] = typer.Option(None, "--sheet",
                                             help="With --simulate-clicks: contact sheet of clicks, alpha and "
                                                  "uncertainty heat map (PNG)."),
        refine_patches: Optional[int] = typer.Option(None, "--refine-patches", min=0,
                                                     help="With --simulate-clicks and a click network: patches to "
                                                          "refine (0 = off) \\[default: the checkpoint's]."),
        infer_size: Optional[int] = typer.Option(None, "--infer-size", min=8,
                                                 help="With --weights of a guidance-free network (shm): side of the "
                                                      "square its trimap network sees."),
        click_method: Optional[ClickMethod] = click_method_option("With --simulate-clicks and no --weights:"),
    ) -> None:
        """Score predictions with SAD, MSE, Gradient, Connectivity (and MAD) over the unknown region or the whole image."""
        from mattecli.cli.options import refuse_unless
        from mattecli.errors import MatteError

        apply_max_pixels(max_pixels)
        from mattecli.cli.eval_video import is_video_input, run_video_eval

        if is_video_input(pred_dir, video):
            run_video_eval(pred_dir, gt, None if metrics == "sad,mse,grad,conn" else metrics, json_path, csv_path,
                           plot, worst, trimap=trimap, data=data, weights=weights, device=device,
                           batch_size=batch_size, simulate_clicks=simulate_clicks or None,
                           sheet=sheet, refine_patches=refine_patches, infer_size=infer_size,
                           workers=workers or None, skip_missing=skip_missing or None,
                           convention=None if convention == "matlab" else convention,
                           region=None if region in ("unknown", "all") else region)
            return
        if simulate_clicks:
            if pairs is not None:
                raise MatteError("--pairs scores saved predictions; --simulate-clicks mattes --data or IMAGE_DIR")
            _simulate_clicks(simulate_clicks, pred_dir, gt, trimap, data, weights, device or "auto", batch_size or 1,
                             refine_patches,
                             metrics, convention, workers, skip_missing, json_path, csv_path, plot, sheet, target_sad,
                             worst, click_method)
            return
        for flag, value in (("--plot", plot), ("--sheet", sheet), ("--refine-patches", refine_patches),
                            ("--click-method", click_method)):
            if value is not None:
                raise MatteError(f"{flag} applies to --simulate-clicks only")

        refuse_unless(weights is not None, "--weights (scoring runs on the CPU; use --workers for processes)",
                      device=device, batch_size=batch_size)
        if infer_size is not None and weights is None:
            raise MatteError("--infer-size applies with --weights")
        if pred_dir is None and pairs is None:
            if weights is None or data is None:
                raise MatteError("give PRED_DIR (or --weights CKPT --data DATASET to predict first)")
            pred_dir = weights.parent / "predictions" / data.resolve().name
        if region not in ("unknown", "all"):
            raise MatteError(f"--region: {region!r} is not one of unknown, all")
        if weights is not None:
            _predict(weights, data, pred_dir, device or "auto", batch_size or 1, infer_size)
        if weights is not None and pred_dir is not None and pred_dir.is_file():
            raise MatteError(f"{pred_dir}: --weights writes its predictions into a folder; give a folder (or none)")
        if pairs is not None and weights is not None:
            raise MatteError("--pairs scores files that exist; --weights predicts a --data set first: drop one")
        run_eval(_pairing(pred_dir, gt, trimap, data, region, pairs), metrics, convention, workers, skip_missing,
                 json_path, csv_path, worst, region)
