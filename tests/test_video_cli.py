"""`mattecli video` end to end on a synthetic clip with a known matte, plate and audio track."""
from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from video_clips import NTSC, disc_alpha, ffmpeg, textured_plate, write_composited_clip

from mattecli.io.images import read_raw, write_image
from mattecli.io.video import VideoFormat, VideoWriter, probe_video, read_frames, read_mattes

W, H, N = 96, 64, 12
FG = np.array([220, 30, 40], np.float32)


def truth(i: int) -> np.ndarray:
    return disc_alpha(H, W, 30 + 3 * i, 32, 16, soft=2.0)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> tuple[Path, Path, np.ndarray]:
    """A red disc moving over a textured plate, lossless, 30000/1001 fps, with a sine track."""
    folder = tmp_path_factory.mktemp("video")
    plate = textured_plate(H, W, seed=11)
    silent = folder / "silent.mkv"
    write_composited_clip(silent, plate, FG, [truth(i) for i in range(N)])
    src = folder / "walk.mkv"
    ffmpeg("-i", str(silent), "-f", "lavfi", "-i", "sine=frequency=330:sample_rate=44100:duration=0.4",
           "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", str(src))
    write_image(folder / "plate.png", plate)
    return src, folder / "plate.png", plate


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mattecli", "video", *args], capture_output=True, text=True,
                          timeout=300)


def test_every_output_kind_with_rate_audio_and_matte(clip, tmp_path):
    src, plate_path, plate = clip
    out = tmp_path / "out"
    r = run_cli(str(src), "--background", str(plate_path), "--out", str(out), "--output", "comp,alpha,rgba,fg",
                "--bg-color", "0,0,255")
    assert r.returncode == 0, r.stderr
    assert "model" in r.stderr and "end to end" in r.stderr
    names = {p.name for p in out.iterdir()}
    assert {"walk_comp.mp4", "walk_alpha.mov", "walk_rgba.mov", "walk_fg.mp4", "walk_sheet.png"} <= names
    for name in ("walk_comp.mp4", "walk_alpha.mov", "walk_rgba.mov", "walk_fg.mp4"):
        info = probe_video(out / name)
        assert info.fps == NTSC, name
        assert info.audio_codec == "aac", name
    mattes = np.stack(list(read_mattes(out / "walk_alpha.mov"))).astype(np.float32) / 255
    assert mattes.shape == (N, H, W)
    expected = np.stack([truth(i) for i in range(N)])
    assert np.abs(mattes - expected).mean() < 0.01
    rgba_alpha = np.stack([f[..., 3] for f in read_frames(out / "walk_rgba.mov", alpha=True)]).astype(np.float32) / 255
    assert np.abs(rgba_alpha - mattes).max() <= 1.5 / 255
    # The composite uses the estimated foreground over the requested colour.
    comp = np.stack(list(read_frames(out / "walk_comp.mp4"))).astype(np.float32)
    want = expected[..., None] * FG + (1 - expected[..., None]) * np.array([0, 0, 255], np.float32)
    assert np.abs(comp - want).mean() < 4  # H.264 4:2:0 at crf 16 plus the matte's edge error
    # The contact sheet: rows of evenly spaced frames from the first on (spaced by the container's
    # frame-count estimate, so a fourth row can fall past the end); each row's alpha cell holds its
    # frame's matte (nearest-upscaled into the 320 px cell).
    from mattecli.report.sheet import cell_origin

    sheet = read_raw(out / "walk_sheet.png")
    scale = 320 / W
    cell = (320, round(320 * H / W))
    shown = []
    rows = (sheet.shape[0] - 4) // (24 + cell[1] + 4)
    assert rows in (3, 4) and sheet.shape[1] == 3 * (320 + 4) + 4
    for row in range(rows):
        y, x = cell_origin(row, 1, cell, 24, 4)
        grey = sheet[y:y + cell[1], x:x + cell[0], 0].astype(np.float32) / 255
        centre_x = (grey.sum(axis=0) * np.arange(cell[0])).sum() / grey.sum()
        index = int(np.argmin([abs(centre_x - (30 + 3 * i + 0.5) * scale) for i in range(N)]))
        assert abs(centre_x - (30 + 3 * index + 0.5) * scale) < 4, (row, centre_x)  # the disc where frame index has it
        assert abs(grey.mean() - mattes[index].mean()) < 0.02, row
        shown.append(index)
    assert shown[0] == 0 and shown[-1] >= N - 5 and all(b - a >= 3 for a, b in zip(shown, shown[1:])), shown


def test_webm_and_png_sequence_keep_alpha(clip, tmp_path):
    src, plate_path, _ = clip
    for fmt in ("webm", "png"):
        out = tmp_path / fmt
        r = run_cli(str(src), "-b", str(plate_path), "-o", str(out), "--output", "rgba", "--rgba-format", fmt,
                    "--no-sheet")
        assert r.returncode == 0, r.stderr
        expected = np.stack([truth(i) for i in range(N)])
        if fmt == "webm":
            info = probe_video(out / "walk_rgba.webm")
            assert info.has_alpha and info.fps == NTSC and info.audio_codec == "opus"
            alpha = np.stack([f[..., 3] for f in read_frames(out / "walk_rgba.webm", alpha=True)])
        else:
            files = sorted((out / "walk_rgba").glob("*.png"))
            assert len(files) == N
            alpha = np.stack([read_raw(f)[..., 3] for f in files])
            assert "not possible (PNG sequence)" in r.stderr.replace("\n", " ")
        assert np.abs(alpha.astype(np.float32) / 255 - expected).mean() < 0.015


def test_existing_outputs_are_skipped_unless_overwrite(clip, tmp_path):
    src, plate_path, _ = clip
    args = [str(src), "-b", str(plate_path), "-o", str(tmp_path), "--output", "alpha", "--no-sheet"]
    assert run_cli(*args).returncode == 0
    first = (tmp_path / "walk_alpha.mov").stat().st_mtime_ns
    r = run_cli(*args)
    assert r.returncode == 0 and "all outputs exist" in r.stderr
    assert (tmp_path / "walk_alpha.mov").stat().st_mtime_ns == first
    assert run_cli(*args, "--overwrite").returncode == 0
    assert (tmp_path / "walk_alpha.mov").stat().st_mtime_ns != first


def test_bad_inputs_are_one_line_errors(clip, tmp_path):
    src, plate_path, plate = clip
    small = tmp_path / "small_plate.png"
    write_image(small, plate[:32, :48])
    r = run_cli(str(src), "-b", str(small), "-o", str(tmp_path / "o"))
    assert r.returncode == 2 and "--align" in r.stderr and "Traceback" not in r.stderr
    # it names the plate and comes alone, before the method line and the progress bar
    assert "small_plate.png" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 100)
    r = run_cli(str(broken), "-b", str(plate_path), "-o", str(tmp_path / "o"))
    assert r.returncode == 2 and "broken.mp4" in r.stderr and "Traceback" not in r.stderr
    r = run_cli(str(src), "-b", str(plate_path), "-o", str(tmp_path / "o"), "--output", "comp,matte")
    assert r.returncode == 2 and "--output" in r.stderr
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_composite_over_a_background_video_and_silent_input(tmp_path):
    plate = textured_plate(H, W, seed=3)
    src = tmp_path / "quiet.mov"
    with VideoWriter(src, VideoFormat(".mov", "qtrle", "rgb24", "rgb24", (), (), None),
                     (W, H), Fraction(25)) as writer:
        for i in range(6):
            a = truth(i)[:, :, None]
            writer.write(np.clip(a * FG + (1 - a) * plate + 0.5, 0, 255).astype(np.uint8))
    write_image(tmp_path / "plate.png", plate)
    bg = tmp_path / "bg.mov"
    ffmpeg("-f", "lavfi", "-i", "color=c=0x00ff00:size=48x32:rate=25", "-frames:v", "3", "-c:v", "qtrle", str(bg))
    r = run_cli(str(src), "-b", str(tmp_path / "plate.png"), "-o", str(tmp_path / "o"), "--output", "comp",
                "--bg-video", str(bg), "--no-sheet")
    assert r.returncode == 0, r.stderr
    assert "none in source" in r.stderr
    info = probe_video(tmp_path / "o" / "quiet_comp.mp4")
    assert info.fps == 25 and info.audio_codec is None
    frames = np.stack(list(read_frames(tmp_path / "o" / "quiet_comp.mp4")))
    assert frames.shape[0] == 6  # the 3-frame background video loops
    corner = frames[:, :6, -6:].reshape(-1, 3).astype(int)  # background only: green
    assert np.abs(corner - [0, 255, 0]).max() < 12
