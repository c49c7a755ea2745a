"""`mattecli eval` on a video: a predicted matte clip against its ground truth (mattecli.metrics.video)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

_FORMATS = {"mad": "{:.3f}", "mse": "{:.3f}", "grad": "{:.3f}", "conn": "{:.3f}", "dtssd": "{:.3f}",
            "messddt": "{:.3f}"}


def is_video_input(path: Optional[Path], video_flag: bool) -> bool:
    """A video file (an existing file that is not an image), or any path with ``--video``."""
    from mattecli.io.images import is_image

    if video_flag:
        return True
    return path is not None and path.is_file() and not is_image(path)


def run_video_eval(pred: Optional[Path], gt: Optional[Path], metrics: Optional[str], json_path: Optional[Path],
                   csv_path: Optional[Path], plot: Optional[Path], worst: int, **image_only: object) -> None:
    """Score ``pred`` against ``gt`` (video files or folders of frames), show and write the results.

    ``image_only``: flags of image evaluation, each refused in one line when given (not None).
    """
    from rich.table import Table

    from mattecli.console import console, printable, progress
    from mattecli.errors import MatteError
    from mattecli.io import atomic
    from mattecli.metrics.video import TITLES, VIDEO_METRICS, check_video_metrics, count_frames, plot_per_frame, score_video

    given = [f"--{name.replace('_', '-')}" for name, value in image_only.items() if value is not None]
    if given:
        raise MatteError(f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} to images, "
                         "not to video evaluation (every pixel of every frame is scored)")
    if pred is None or gt is None:
        raise MatteError("video evaluation needs the predicted clip and --gt (video files or folders of frames)")
    try:
        names = check_video_metrics(metrics.split(",")) if metrics else VIDEO_METRICS
    except ValueError as exc:
        raise MatteError(f"--metrics: {exc}") from None
    with progress("frame") as bar:
        task = bar.add_task(f"scoring {printable(pred.name)}", total=count_frames(pred))
        scores = score_video(pred, gt, names, on_frame=lambda _: bar.advance(task))
    if not scores.frames:
        raise MatteError(f"{pred}: no frames to score")
    means = scores.mean()
    table = Table(title=f"mean of {len(scores.frames)} frames (RVM conventions, whole frame)",
                  caption="MAD, MSE x1e3; Grad, Conn / 1000; dtSSD x1e2; MESSDdt x1e3")
    for m in names:
        table.add_column(TITLES[m], justify="right")
    table.add_row(*(_FORMATS[m].format(means[m]) for m in names))
    console.print(table)
    if worst and len(scores.frames) > 1:
        key = names[0]
        ranked = sorted(range(len(scores.frames)), key=lambda i: scores.frames[i][key], reverse=True)[:worst]
        console.print(f"worst frames by {TITLES[key]}: " + ", ".join(
            f"{i} ({_FORMATS[key].format(scores.frames[i][key])})" for i in ranked))
    if json_path is not None:
        atomic.write_json(json_path, scores.to_json())
    if csv_path is not None:
        atomic.write_text(csv_path, scores.to_csv())
    if plot is not None:
        plot_per_frame(scores, plot)
        console.print(f"plot: {plot}")
