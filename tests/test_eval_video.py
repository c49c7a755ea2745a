"""`mattecli eval` on clips: a lossless matte video or a folder of frames against the ground truth."""
from __future__ import annotations

import csv
import json
import sys

import cv2
import numpy as np
import pytest
from video_clips import disc_alpha

from mattecli.cli.app import main
from mattecli.io.images import write_image
from mattecli.io.video import FORMATS, VideoWriter

H, W, N = 48, 64, 6


def gt_frame(t: int) -> np.ndarray:
    return np.clip(disc_alpha(H, W, 20 + 3 * t, 24, 12, soft=3.0) * 255 + 0.5, 0, 255).astype(np.uint8)


def pred_frame(t: int) -> np.ndarray:
    a = gt_frame(t).astype(np.int16)
    a[4:10, 50:58] = 160 if t % 2 else 0  # a flickering false patch
    a[20:28, 10:40] -= 30  # a steady error
    return np.clip(a, 0, 255).astype(np.uint8)


class Result:
    def __init__(self, returncode: int, stderr: str) -> None:
        self.returncode, self.stderr = returncode, stderr


@pytest.fixture
def run_eval(capsys, monkeypatch):
    """``mattecli eval ARGS`` in this process (a subprocess costs seconds of imports)."""
    def run(*args: str) -> Result:
        monkeypatch.setattr(sys, "argv", ["mattecli", "eval", *map(str, args)])
        with pytest.raises(SystemExit) as exc:
            main()
        return Result(exc.value.code or 0, capsys.readouterr().err)
    return run


def test_eval_scores_a_matte_video_against_a_frame_folder(tmp_path, run_eval):
    gt_dir = tmp_path / "gt"
    for t in range(N):
        write_image(gt_dir / f"{t:04d}.png", gt_frame(t))
    pred_video = tmp_path / "pred_alpha.mov"
    with VideoWriter(pred_video, FORMATS["mov-alpha"], (W, H), 25) as writer:  # lossless grey
        for t in range(N):
            writer.write(pred_frame(t))
    out_json, out_csv, plot = tmp_path / "s.json", tmp_path / "s.csv", tmp_path / "err.png"
    r = run_eval(str(pred_video), "--gt", str(gt_dir), "--json", str(out_json), "--csv", str(out_csv),
                 "--plot", str(plot))
    assert r.returncode == 0, r.stderr
    report = json.loads(out_json.read_text())
    assert report["count"] == N and set(report["mean"]) == {"mad", "mse", "grad", "conn", "dtssd", "messddt"}
    p = np.stack([pred_frame(t) for t in range(N)]).astype(np.float32) / 255
    g = np.stack([gt_frame(t) for t in range(N)]).astype(np.float32) / 255
    assert report["mean"]["mad"] == pytest.approx(np.abs(p - g).mean() * 1e3, rel=1e-5)
    change = np.diff(p, axis=0) - np.diff(g, axis=0)
    per_frame = [0.0] + [float(np.sqrt((c.astype(np.float64) ** 2).sum() / c.size) * 100) for c in change]
    assert [f["dtssd"] for f in report["frames"]] == pytest.approx(per_frame, rel=1e-5)
    rows = list(csv.reader(out_csv.open()))
    assert rows[0] == ["frame", "mad", "mse", "grad", "conn", "dtssd", "messddt"] and len(rows) == N + 1
    assert cv2.imread(str(plot)) is not None
    # The same clip as a folder of frames needs --video (a folder is otherwise a set of images).
    pred_dir = tmp_path / "pred"
    for t in range(N):
        write_image(pred_dir / f"{t:04d}.png", pred_frame(t))
    r2 = run_eval(str(pred_dir), "--gt", str(gt_dir), "--video", "--metrics", "dtssd,mad", "--json",
                  str(tmp_path / "f.json"))
    assert r2.returncode == 0, r2.stderr
    again = json.loads((tmp_path / "f.json").read_text())["mean"]
    assert set(again) == {"mad", "dtssd"}
    assert again["dtssd"] == pytest.approx(report["mean"]["dtssd"], rel=1e-6)


def test_video_eval_refuses_image_flags_and_short_clips_in_one_line(tmp_path, run_eval):
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    for t in range(N):
        write_image(gt_dir / f"{t:04d}.png", gt_frame(t))
    for t in range(N - 1):
        write_image(pred_dir / f"{t:04d}.png", pred_frame(t))
    r = run_eval(str(pred_dir), "--gt", str(gt_dir), "--video", "--trimap", str(gt_dir))
    assert r.returncode != 0 and "--trimap applies to images" in r.stderr and "Traceback" not in r.stderr
    r = run_eval(str(pred_dir), "--gt", str(gt_dir), "--video")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert f"{pred_dir}: has {N - 1} frames, fewer than {gt_dir}" in " ".join(r.stderr.split())
    r = run_eval(str(pred_dir), "--gt", str(gt_dir), "--video", "--metrics", "sad")
    assert r.returncode != 0 and "--metrics" in r.stderr and "Traceback" not in r.stderr
