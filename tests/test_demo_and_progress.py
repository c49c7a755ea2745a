"""`mattecli demo` (the README's first command) end to end, and the live progress display rendered."""
from __future__ import annotations

import functools
import io
import json
import sys

import numpy as np
import pytest
from rich.console import Console

import mattecli.console
import mattecli.data.samples
import mattecli.demo
from mattecli.cli.app import main
from mattecli.data.manifest import read_manifest, resolve
from mattecli.io.images import read_alpha, read_alpha_float, read_raw
from mattecli.io.video import probe_video
from mattecli.metrics import compute_metrics


def run_cli(capsys, monkeypatch, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["mattecli", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code or 0
    captured = capsys.readouterr()
    return code, captured.err + captured.out


@pytest.fixture
def small_demo(monkeypatch):
    """The demo's own code at a size a test can afford: 96x80 samples, an 8-frame clip."""
    write_samples = mattecli.data.samples.write_samples
    monkeypatch.setattr(mattecli.data.samples, "write_samples",
                        lambda out, seed=0, foregrounds=6, backgrounds=12, size=None:
                        write_samples(out, seed, foregrounds, backgrounds, size=(96, 80)))
    monkeypatch.setattr(mattecli.demo, "write_clip", functools.partial(mattecli.demo.write_clip, frames=8,
                                                                        size=(96, 64)))


def test_demo_runs_the_whole_loop_and_its_scores_are_its_files(small_demo, tmp_path, capsys, monkeypatch):
    out = tmp_path / "demo"
    code, text = run_cli(capsys, monkeypatch, "demo", "--out", str(out), "--workers", "1")
    assert code == 0, text
    dataset = out / "dataset"
    records = read_manifest(dataset)
    assert len(records) == 8  # 4 foregrounds x 2 backgrounds
    # the SAD the demo prints is the mean over its own predicted files, and beats filling the unknown with 0.5
    sads, trivial = [], []
    for r in records:
        gt = read_alpha_float(resolve(dataset, r.alpha_path))
        trimap = read_alpha(resolve(dataset, r.trimap_path))
        pred = read_alpha_float(out / "matte" / "alpha" / f"{r.name}.png")
        sads.append(compute_metrics(pred, gt, trimap, ("sad",))["sad"])
        half = np.where(trimap == 255, 1.0, np.where(trimap == 0, 0.0, 0.5)).astype(np.float32)
        trivial.append(compute_metrics(half, gt, trimap, ("sad",))["sad"])
        rgba = read_raw(out / "matte" / "rgba" / f"{r.name}.png")
        assert np.array_equal(rgba[:, :, 3], read_alpha(out / "matte" / "alpha" / f"{r.name}.png"))
    flat = " ".join(text.split())
    assert f"{np.mean(sads):.3f}" in flat
    assert np.mean(sads) < 0.5 * np.mean(trivial)
    # the video outputs hold every frame of the clip; the contact sheet has one row per chosen composite
    alpha_video = next(p for p in (out / "video").iterdir() if "alpha" in p.name)
    assert probe_video(alpha_video).frames_estimate == 8
    sheet = read_raw(out / "contact_sheet.png")
    assert sheet.shape[1] >= 4 * 256 and sheet.shape[0] > 2 * 100
    # rerunning resumes: nothing is matted again
    code, text = run_cli(capsys, monkeypatch, "demo", "--out", str(out), "--workers", "1")
    assert code == 0 and "skipped" in text


def test_progress_display_renders_count_rate_and_description(tmp_path, capsys, monkeypatch):
    """Every other test turns the display off; here it draws on a (forced) terminal."""
    from mattecli.io.images import write_image

    screen = io.StringIO()
    monkeypatch.setattr(mattecli.console, "console", Console(file=screen, force_terminal=True, width=160,
                                                             color_system=None))
    rng = np.random.default_rng(0)
    for i in range(3):
        image = rng.integers(0, 256, (24, 28, 3), dtype=np.uint8)
        trimap = np.zeros((24, 28), np.uint8)
        trimap[:, 14:] = 255
        trimap[:, 10:18] = 128
        write_image(tmp_path / "in" / f"img{i}.png", image)
        write_image(tmp_path / "tri" / f"img{i}.png", trimap)
    code, text = run_cli(capsys, monkeypatch, "matte", str(tmp_path / "in"), "--trimap", str(tmp_path / "tri"),
                         "--out", str(tmp_path / "out"), "--output", "alpha")
    drawn = screen.getvalue()
    assert code == 0, text + drawn
    assert "matte" in drawn and "3/3" in drawn
    assert "img/s" in drawn or "s/img" in drawn
    assert "\x1b[" in drawn or "\r" in drawn  # redrawn in place, as a live display
