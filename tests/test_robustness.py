"""Issue 13: what a hostile or unlucky input finds. Each test reproduces one probe that failed
(data deleted outside --out, files read outside a dataset, a traceback, a hidden output...)
and checks the one-line refusal or the correct result instead."""
from __future__ import annotations

import errno
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from compose_helpers import imwrite, make_inputs, run_cli
from conftest import in_ci
from mattecli.compose import ComposeOptions, compose_dataset
from mattecli.data.manifest import read_manifest
from mattecli.errors import BadInput, CannotWrite, MatteError
from mattecli.io import atomic


def _options(tmp: Path, out: str = "ds", **kw) -> ComposeOptions:
    base = dict(out=tmp / out, fg=tmp / "in_fg", alpha=tmp / "in_alpha", bg=str(tmp / "in_bg"), per_fg=2, seed=7,
                workers=1, show_progress=False)
    base.update(kw)
    return ComposeOptions(**base)


@pytest.fixture(autouse=True)
def _default_pixel_limit(monkeypatch):
    """``--max-pixels`` run in-process sets the limit in the environment: undo it after each test."""
    from mattecli.io.images import MAX_PIXELS_ENV

    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)


def _squash(text: str) -> str:
    """Text without white space and table borders, so a wrapped table cell reads as one string."""
    return re.sub(r"[\s│┃]+", "", text)


def _one_line_error(text: str) -> str:
    """The error line of a CLI run; fails the test on a traceback."""
    assert "Traceback" not in text, text
    lines = [ln for ln in text.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, text
    return lines[0]


# --- 1. compose --overwrite never deletes through a link, nor files no plan named -----------------------------

def test_overwrite_refuses_a_symlinked_output_folder_and_deletes_nothing_outside(tmp_path):
    make_inputs(tmp_path, n_fg=2, n_bg=4)
    compose_dataset(_options(tmp_path))
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    imwrite(precious / "photo.png", np.zeros((4, 4, 3), np.uint8))
    shutil.rmtree(tmp_path / "ds" / "merged")
    (tmp_path / "ds" / "merged").symlink_to(precious)
    with pytest.raises(MatteError, match="symbolic link out of --out"):
        compose_dataset(_options(tmp_path, overwrite=True))
    assert sorted(p.name for p in precious.iterdir()) == ["notes.txt", "photo.png"]


def test_overwrite_deletes_only_files_the_previous_plan_named(tmp_path):
    make_inputs(tmp_path, n_fg=2, n_bg=6)
    compose_dataset(_options(tmp_path, per_fg=3))
    ds = tmp_path / "ds"
    (ds / "bg" / "stranger.png").write_bytes(b"not ours")
    (ds / "merged" / "readme.txt").write_text("not ours either")
    compose_dataset(_options(tmp_path, per_fg=2, overwrite=True))  # a smaller plan: the _2 composites go
    assert not (ds / "merged" / "fg0_2.png").exists() and not (ds / "bg" / "fg1_2.png").exists()
    assert (ds / "bg" / "stranger.png").read_bytes() == b"not ours"
    assert (ds / "merged" / "readme.txt").exists()
    assert len(read_manifest(ds)) == 4


def test_deletes_never_follow_a_link_out_of_their_folder(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir(), outside.mkdir()
    victim = outside / f"{atomic.TEMP_MARK}x.png.abc"
    victim.write_text("someone else's")
    (root / "sub").symlink_to(outside)
    assert atomic.unlink_inside(root / "sub" / victim.name, root) is False
    atomic.remove_stale_temps(root)  # a rerun's clean-up of its own folder does not descend the link
    assert victim.exists()
    # a link itself inside the folder is removed, its target is not
    (root / "link.png").symlink_to(victim)
    assert atomic.unlink_inside(root / "link.png", root) and victim.exists()


# --- 2. manifest paths are confined to the dataset folder ------------------------------------------------------

def _dataset_with(tmp: Path, record: dict) -> Path:
    ds = tmp / "ds"
    for sub in ("fg", "alpha", "trimap", "merged"):
        imwrite(ds / sub / "a.png", np.full((8, 8), 128, np.uint8))
    base = {"alpha_path": "alpha/a.png", "fg_path": "fg/a.png", "merged_path": "merged/a.png",
            "trimap_path": "trimap/a.png"}
    (ds / "manifest.json").write_text(json.dumps([base, {**base, **record}]))
    return ds


@pytest.mark.parametrize("record", [{"alpha_path": "/etc/passwd"}, {"trimap_path": "../outside.png"},
                                    {"fg_path": "fg/link.png"}], ids=["absolute", "dotdot", "symlink"])
def test_manifest_records_outside_the_dataset_are_refused(tmp_path, capsys, record):
    imwrite(tmp_path / "outside.png", np.zeros((8, 8), np.uint8))
    ds = _dataset_with(tmp_path, record)
    (ds / "fg" / "link.png").symlink_to(tmp_path / "outside.png")
    with pytest.raises(BadInput, match=r"record 1 \(a\) .* lies outside the dataset folder"):
        read_manifest(ds)
    from mattecli.data.sources import find_samples  # train dim --data reads it the same way
    with pytest.raises(BadInput, match="record 1"):
        find_samples(ds)
    pred = tmp_path / "pred"
    imwrite(pred / "a.png", np.full((8, 8), 100, np.uint8))
    code, err = run_cli(["eval", str(pred), "--data", str(ds), "--workers", "1"], capsys)
    assert code == 2 and "record 1" in _one_line_error(err)


# --- 3. symlinked compose inputs: the dataset gets the bytes; an incomplete manifest is an error ----------------

def test_relative_symlinks_among_inputs_are_followed(tmp_path, capsys):
    fg_dir, alpha_dir, _ = make_inputs(tmp_path, n_fg=2, n_bg=4)
    store = tmp_path / "store"
    store.mkdir()
    shutil.move(fg_dir / "fg0.png", store / "fg0.png")
    (fg_dir / "fg0.png").symlink_to(Path("..") / "store" / "fg0.png")
    s = compose_dataset(_options(tmp_path))
    copied = tmp_path / "ds" / "fg" / "fg0.png"
    assert not copied.is_symlink() and copied.read_bytes() == (store / "fg0.png").read_bytes()
    assert s.complete and s.manifest_records == 4 and not s.missing


def test_an_incomplete_manifest_is_a_failing_exit_with_the_reason(tmp_path, capsys, monkeypatch):
    make_inputs(tmp_path, n_fg=2, n_bg=4)
    import mattecli.compose.worker as worker

    monkeypatch.setattr(worker, "_place", lambda src, dst, link: None)  # a copy that silently never lands
    code, err = run_cli(["compose", "--fg", str(tmp_path / "in_fg"), "--alpha", str(tmp_path / "in_alpha"),
                         "--bg", str(tmp_path / "in_bg"), "--per-fg", "2", "-j", "1", "-q",
                         "--out", str(tmp_path / "ds")], capsys)
    assert code == 2 and "manifest.json is incomplete: 4 composite(s)" in _one_line_error(err)


# --- 4. the pixel limit, from the header, before decoding ----------------------------------------------------

def _png_declaring(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header declares ``width`` x ``height`` (its data does not match: never decoded)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def test_an_oversized_image_fails_alone_and_the_batch_goes_on(tmp_path, capsys):
    folder = tmp_path / "in"
    _png_declaring(folder / "a_bomb.png", 20000, 20000)
    rng = np.random.default_rng(0)
    imwrite(folder / "b_good.png", rng.integers(0, 256, (12, 12, 3), dtype=np.uint8))
    trimap = np.full((12, 12), 128, np.uint8)
    trimap[:, :3], trimap[:, -3:] = 0, 255
    imwrite(tmp_path / "trimap.png", trimap)
    code, err = run_cli(["matte", str(folder), "--trimap", str(tmp_path / "trimap.png"), "--output", "alpha",
                         "--out", str(tmp_path / "out"), "--max-pixels", "1000000"], capsys)
    assert code == 1 and "Traceback" not in err
    assert "20000x20000" in _squash(err) and "above--max-pixels1000000" in _squash(err)
    assert (tmp_path / "out" / "alpha" / "b_good.png").is_file()
    from mattecli.io.images import probe_image, read_rgb, set_max_pixels
    set_max_pixels(None)  # the default limit (64 Mi pixels) refuses it too, by the header
    with pytest.raises(BadInput, match="400.0 megapixels"):
        read_rgb(folder / "a_bomb.png")
    with pytest.raises(BadInput, match="400.0 megapixels"):
        probe_image(folder / "a_bomb.png")


def test_the_pixel_limit_in_compose_train_data_and_samples(tmp_path, capsys, monkeypatch):
    from mattecli.io.images import MAX_PIXELS_ENV

    monkeypatch.setenv(MAX_PIXELS_ENV, "10000")  # as --max-pixels sets it, for worker processes too
    make_inputs(tmp_path, n_fg=2, n_bg=4)  # images of at most 90x100 px: under the limit
    _png_declaring(tmp_path / "in_bg" / "huge.png", 9000, 9000)
    s = compose_dataset(_options(tmp_path, per_fg=5))  # 5 of 5 backgrounds: the huge one is used
    assert len(s.failures) == 2 and all("9000x9000" in why for _, why in s.failures)
    assert s.written == 8
    from mattecli.data.sources import check_files, find_samples
    monkeypatch.setenv(MAX_PIXELS_ENV, "1000")
    with pytest.raises(BadInput, match="above --max-pixels 1000"):
        check_files(find_samples(tmp_path / "ds"))
    monkeypatch.delenv(MAX_PIXELS_ENV)
    code, err = run_cli(["samples", str(tmp_path / "s"), "--width", "100000"], capsys)
    assert code == 2 and "--width 100000" in _one_line_error(err)
    assert not (tmp_path / "s").exists()


def test_the_pixel_limit_in_eval_and_video(tmp_path, capsys):
    pred, gt, tri = tmp_path / "pred", tmp_path / "gt", tmp_path / "tri"
    for name in ("a", "b"):
        imwrite(pred / f"{name}.png", np.full((8, 8), 100, np.uint8))
        imwrite(tri / f"{name}.png", np.full((8, 8), 128, np.uint8))
    imwrite(gt / "a.png", np.full((8, 8), 90, np.uint8))
    _png_declaring(gt / "b.png", 30000, 30000)
    code, err = run_cli(["eval", str(pred), "--gt", str(gt), "--trimap", str(tri), "--workers", "1"], capsys)
    assert code == 2 and "Traceback" not in err and "30000x30000" in _squash(err)
    assert "meanof1images" in _squash(err)  # the other image is scored
    from video_clips import make_pattern_clip

    clip = make_pattern_clip(tmp_path / "clip.mkv", frames=2, size=(32, 24), audio=False)
    imwrite(tmp_path / "plate.png", np.zeros((24, 32, 3), np.uint8))
    code, err = run_cli(["video", str(clip), "-b", str(tmp_path / "plate.png"), "-o", str(tmp_path / "v"),
                         "--max-pixels", "500"], capsys)
    assert code == 2 and "each frame is 32x24" in _one_line_error(err) and not (tmp_path / "v").exists()


# --- 5. video alpha at any frame size ----------------------------------------------------------------------------

@pytest.mark.parametrize("size", [(63, 37), (66, 38)])
def test_every_video_format_encodes_odd_and_unaligned_sizes(tmp_path, size):
    from fractions import Fraction

    from mattecli.io.video import FORMATS, VideoWriter, read_frames, read_mattes

    w, h = size
    rng = np.random.default_rng(1)
    mattes = [rng.integers(0, 256, (h, w), dtype=np.uint8) for _ in range(2)]
    for name, fmt in FORMATS.items():
        channels = {"rgb24": 3, "rgba": 4, "gray": 1}[fmt.pix_fmt_in]
        path = tmp_path / f"{name}{fmt.suffix}"
        with VideoWriter(path, fmt, size, Fraction(25)) as writer:
            for m in mattes:
                writer.write(m if channels == 1 else np.dstack([m] * channels))
        assert len(list(read_frames(path))) == 2, name
    back = list(read_mattes(tmp_path / "mov-alpha.mov"))  # the default alpha output stays lossless
    assert all(np.array_equal(a, b) for a, b in zip(mattes, back))


# --- 6. environment errors: one line naming the path, nothing partial under a final name ---------------------

def test_a_full_disk_is_one_line_naming_the_output_and_leaves_nothing(tmp_path, monkeypatch):
    def full(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "replace", full)
    target = tmp_path / "out" / "x.json"
    with pytest.raises(CannotWrite, match=f"cannot write {target}: no space left on device"):
        atomic.write_json(target, {"a": 1})
    assert list((tmp_path / "out").iterdir()) == []  # no temporary, no partial x.json


def test_torch_save_on_a_full_disk_names_the_checkpoint(tmp_path, monkeypatch):
    from mattecli.io import checkpoint

    def fails(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 128 vs 0")

    monkeypatch.setattr(checkpoint.torch, "save", fails)
    monkeypatch.setattr(checkpoint.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(1, 1, 0))
    with pytest.raises(CannotWrite, match="last.pt: no space left on device"):
        checkpoint.save_checkpoint(tmp_path / "last.pt", {"family": "x", "model_config": {}, "model": {}})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [
    ["samples", "{file}/sub", "--foregrounds", "1", "--backgrounds", "1", "--width", "32", "--height", "32"],
    ["compose", "--samples", "-q", "-j", "1", "--out", "{file}"],
    ["eval", "{pred}", "--gt", "{pred}", "--trimap", "{pred}", "--workers", "1", "--json", "{file}/r.json"],
    ["train", "dim", "--data", "{pred}", "--out", "{file}", "--recipe", "dim-quick", "--iters", "1", "--no-progress"],
    ["demo", "--out", "{file}", "--workers", "1"],
], ids=["samples", "compose", "eval", "train", "demo"])
def test_an_out_that_is_a_file_is_one_line_for_every_command(tmp_path, capsys, command):
    file = tmp_path / "taken"
    file.write_text("a file, not a folder")
    pred = tmp_path / "pred"
    imwrite(pred / "a.png", np.full((8, 8), 128, np.uint8))
    args = [a.format(file=file, pred=pred) for a in command]
    code, err = run_cli(args, capsys)
    line = _one_line_error(err)
    assert code == 2 and line.startswith(f"error: cannot write {file}")
    assert "not a directory" in line or "it is a file, not a folder" in line
    assert file.read_text() == "a file, not a folder"


def _can_mount() -> bool:
    """A private tmpfs needs util-linux's ``unshare`` (required under CI=true, as every system tool a test
    uses) and a kernel that allows user namespaces (a policy, not a tool: the simulated tests cover it)."""
    if shutil.which("unshare") is None:
        assert not in_ci(), "unshare (util-linux) is missing"
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=8k tmpfs /mnt"],
                           capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _can_mount(), reason="no user namespace for a private tmpfs (the simulated tests cover it)")
def test_a_real_full_and_read_only_file_system(tmp_path):
    """compose and video into a 64 KiB tmpfs and a read-only one, mounted in a private namespace."""
    from video_clips import make_pattern_clip
    from mattecli.io.images import write_image

    clip = make_pattern_clip(tmp_path / "clip.mkv", frames=3, size=(32, 24), audio=False)
    write_image(tmp_path / "plate.png", np.zeros((24, 32, 3), np.uint8))
    full, ro = tmp_path / "full", tmp_path / "ro"
    full.mkdir(), ro.mkdir()
    m = f"{sys.executable} -m mattecli"
    script = (f"mount -t tmpfs -o size=64k tmpfs {full} && mount -t tmpfs -o size=1m,ro tmpfs {ro} && "
              f"head -c 65536 /dev/zero > {full}/fill; "
              f"for d in {full} {ro}; do {m} compose --samples -q -j 1 --out $d/c; echo rc=$?; "
              f"{m} video {clip} -b {tmp_path / 'plate.png'} -o $d/v --output alpha --no-sheet; echo rc=$?; "
              f"find $d -name '*.png' -o -name '*.mov' -o -name manifest.json | grep -v mattecli-tmp | wc -l; done")
    r = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    assert "Traceback" not in out, out
    assert out.count("rc=2") == 4, out
    assert "no space left on device" in out and "read-only file system" in out, out
    errors = [ln for ln in out.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 4 and all(ln.startswith("error: cannot write /") for ln in errors), out


# --- 7. checkpoints: one line naming the file ----------------------------------------------------------------

def test_checkpoint_problems_are_one_line_naming_the_file(tmp_path):
    import train_tiny_family as tiny
    from mattecli.families.registry import load_model
    from mattecli.io.checkpoint import save_checkpoint

    model = tiny.TinyMatter()
    good = {"family": "tiny", "model_config": {"width": 6}, "model": model.state_dict()}
    cases = {
        "shapes": ({"model": {k: torch.zeros(1) for k in model.state_dict()}}, "size mismatch for body.0.weight"),
        "value": ({"model_config": {"width": "six"}}, "model_config does not fit family 'tiny'"),
        "keyword": ({"model_config": {"widht": 6}}, "unexpected keyword argument 'widht'"),
        "none": ({"model": None}, "weights do not fit"),
        "family": ({"family": "nosuch"}, r"unknown model family 'nosuch' \(known: .*dim"),
    }
    for name, (change, message) in cases.items():
        path = tmp_path / f"{name}.pt"
        save_checkpoint(path, {**good, **change})
        with pytest.raises(BadInput, match=message) as exc:
            load_model(path)
        assert str(exc.value).startswith(str(path)) and "\n" not in str(exc.value)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({**good, "model": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(BadInput) as exc:
        load_model(tmp_path / "evil.pt")
    text = str(exc.value)
    assert "system" in text and text.endswith("mattecli loads only tensors and plain values")


def _tiny_run(run_dir: Path, **kwargs):
    import train_tiny_family  # noqa: F401 - registers the family
    from mattecli.train.engine import train
    from mattecli.families.registry import get_family  # noqa: E402

    recipe = {"lr": 0.01, "iters": 4, "batch_size": 2, "checkpoint_every": 2, "log_every": 1, "train_samples": 6}
    return train(get_family("tiny"), recipe, ".", run_dir, stage="base", device="cpu", show_progress=False, **kwargs)


@pytest.mark.parametrize("damage, message", [
    (lambda s: s.pop("rng"), "'rng' is missing"),
    (lambda s: s.update(optimizer={}), "optimiser state is empty or malformed"),
    (lambda s: s.update(model={k: torch.zeros(2) for k in s["model"]}), "its weights do not fit this run"),
    (lambda s: s.update(family="other"), "holds a 'other' run of stage 'base'"),
], ids=["no-rng", "empty-optimiser", "wrong-shapes", "other-family"])
def test_resume_refuses_a_damaged_or_foreign_last_pt(tmp_path, damage, message):
    from mattecli.io.checkpoint import load_checkpoint, save_checkpoint

    _tiny_run(tmp_path / "run", stop_after=2)
    last = tmp_path / "run" / "base" / "last.pt"
    state = load_checkpoint(last)
    damage(state)
    save_checkpoint(last, state)
    with pytest.raises(BadInput, match=message) as exc:
        _tiny_run(tmp_path / "run", resume=True)
    assert str(exc.value).startswith(str(last))


def test_resume_of_another_familys_finished_run_is_not_already_complete(tmp_path):
    from mattecli.io.checkpoint import load_checkpoint, save_checkpoint

    _tiny_run(tmp_path / "run")  # complete
    last = tmp_path / "run" / "base" / "last.pt"
    state = load_checkpoint(last)
    state["family"] = "dim"
    save_checkpoint(last, state)
    with pytest.raises(BadInput, match="holds a 'dim' run"):
        _tiny_run(tmp_path / "run", resume=True)


# --- 8. two video runs into one --out -------------------------------------------------------------------------

def test_a_second_video_run_into_the_same_out_is_refused_and_deletes_nothing(tmp_path):
    from video_clips import make_pattern_clip
    from mattecli.io.images import write_image
    from mattecli.io.locks import ExclusiveLock

    clip = make_pattern_clip(tmp_path / "walk.mkv", frames=2, size=(32, 24), audio=False)
    write_image(tmp_path / "plate.png", np.zeros((24, 32, 3), np.uint8))
    out = tmp_path / "out"
    out.mkdir()
    running = out / f"{atomic.TEMP_MARK}walk_alpha.mov.abc123.mov"  # the first run's temporary
    running.write_bytes(b"being written")
    with ExclusiveLock(out / ".mattecli-video-walk.lock", "held by the test"):
        r = subprocess.run([sys.executable, "-m", "mattecli", "video", str(clip), "-b", str(tmp_path / "plate.png"),
                            "-o", str(out), "--no-sheet"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "another mattecli video run" in _one_line_error(r.stderr)
    assert running.read_bytes() == b"being written"
    r = subprocess.run([sys.executable, "-m", "mattecli", "video", str(clip), "-b", str(tmp_path / "plate.png"),
                        "-o", str(out), "--no-sheet", "--output", "alpha"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr  # once the first run is gone, a run proceeds (and clears its leftovers)
    assert (out / "walk_alpha.mov").is_file() and not running.exists()


# --- 9. small things --------------------------------------------------------------------------------------------

def test_foreground_only_clicks_matte_and_the_disk_method_refuses_them(tmp_path, capsys):
    rng = np.random.default_rng(2)
    imwrite(tmp_path / "in" / "a.png", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    clicks = tmp_path / "clicks.json"
    clicks.write_text(json.dumps({"a.png": [{"x": 8, "y": 8, "label": "fg"}]}))
    code, err = run_cli(["matte", str(tmp_path / "in"), "--clicks", str(clicks), "--out", str(tmp_path / "o"),
                         "--output", "alpha"], capsys)
    assert code == 0, err  # the weights-free default (issue 21): one foreground click gives a subject
    from mattecli.io.images import read_raw

    assert read_raw(tmp_path / "o" / "alpha" / "a.png")[8, 8] == 255
    code, err = run_cli(["matte", str(tmp_path / "in"), "--clicks", str(clicks), "--out", str(tmp_path / "d"),
                         "--click-method", "disks"], capsys)
    assert code == 1 and "clicksmarknobackground" in _squash(err)
    assert not (tmp_path / "d" / "alpha" / "a.png").exists()


def test_undecodable_file_names_keep_the_failure_table_aligned(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / os.fsdecode(b"caf\xe9.png")).write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (folder / "plain.png").write_bytes(b"\x89PNG\r\n\x1a\n broken too")
    imwrite(tmp_path / "t.png", np.full((4, 4), 128, np.uint8))
    code, err = run_cli(["matte", str(folder), "--trimap", str(tmp_path / "t.png"), "--out", str(tmp_path / "o")],
                        capsys)
    assert code == 1
    rows = [ln for ln in err.splitlines() if ln.startswith(("┃", "│", "┏", "┡", "└"))]
    assert len(rows) >= 4 and "caf\ufffd.png" in err
    assert len({len(r) for r in rows}) == 1, "\n".join(rows)


def test_a_foreground_named_dot_png_makes_no_hidden_outputs(tmp_path):
    make_inputs(tmp_path, n_fg=1, n_bg=4)
    rng = np.random.default_rng(3)
    imwrite(tmp_path / "in_fg" / "..png", rng.integers(0, 256, (20, 20, 3), dtype=np.uint8))
    imwrite(tmp_path / "in_alpha" / "..png", rng.integers(0, 256, (20, 20), dtype=np.uint8))
    with pytest.raises(MatteError, match="name starting with a dot would make hidden outputs"):
        compose_dataset(_options(tmp_path))
    assert not list(tmp_path.rglob("._*"))
