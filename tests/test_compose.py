"""mattecli compose: bit-exactness, determinism, shards, resume, name lists, trimaps and plates outputs."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from compose_helpers import imwrite, make_inputs, mmagic_reference, opencv_float32_reference, tree_digest
from mattecli.compose import ComposeOptions, compose_dataset
from mattecli.data.manifest import read_manifest, resolve
from mattecli.io.images import read_alpha, read_rgb


def _options(tmp: Path, out: str, **kw) -> ComposeOptions:
    fg, alpha, bg = tmp / "in_fg", tmp / "in_alpha", tmp / "in_bg"
    base = dict(out=tmp / out, fg=fg, alpha=alpha, bg=str(bg), per_fg=3, seed=7, workers=1, show_progress=False)
    base.update(kw)
    return ComposeOptions(**base)


def _cv_read(path: Path, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    arr = cv2.imread(str(path), flags)
    return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB) if arr.ndim == 3 else arr


def test_bit_exact_with_the_published_code_path(tmp_path):
    """Default: every merged/ and bg/ file equals mmagic's converter run on the same inputs with PIL."""
    make_inputs(tmp_path, n_fg=2, n_bg=6)
    s = compose_dataset(_options(tmp_path, "ds", per_fg=3))
    assert s.written == 6 and not s.failures and s.upscaled > 0
    card = json.loads((tmp_path / "ds" / "compose.json").read_text())
    assert card["convention"]["name"] == "published" and card["convention"]["resize"] == "pil"
    records = read_manifest(tmp_path / "ds")
    assert len(records) == 6
    for r in records:
        fg_in = tmp_path / "in_fg" / Path(r.fg_path).name
        want, want_bg = mmagic_reference(fg_in, tmp_path / "in_alpha" / Path(r.alpha_path).name,
                                         tmp_path / "in_bg" / r.bg_source)
        assert np.array_equal(_cv_read(tmp_path / "ds" / r.merged_path), want), r.merged_path
        assert np.array_equal(_cv_read(tmp_path / "ds" / r.bg_path), want_bg), r.bg_path
        # fg/ and alpha/ inside the dataset are the input files themselves
        assert (tmp_path / "ds" / r.fg_path).read_bytes() == fg_in.read_bytes()


def test_opencv_float32_convention_against_its_reference(tmp_path):
    make_inputs(tmp_path, n_fg=2, n_bg=6)
    s = compose_dataset(_options(tmp_path, "ds", per_fg=3, convention="opencv-float32"))
    assert s.written == 6 and s.upscaled > 0
    for r in read_manifest(tmp_path / "ds"):
        fg = _cv_read(tmp_path / "in_fg" / Path(r.fg_path).name)
        alpha = _cv_read(tmp_path / "in_alpha" / Path(r.alpha_path).name, cv2.IMREAD_GRAYSCALE)
        bg = _cv_read(tmp_path / "in_bg" / r.bg_source)
        want, want_bg = opencv_float32_reference(fg, alpha, bg)
        got = _cv_read(tmp_path / "ds" / r.merged_path)
        assert np.array_equal(got, want), r.merged_path
        assert np.array_equal(_cv_read(tmp_path / "ds" / r.bg_path), want_bg), r.bg_path
    compose_dataset(_options(tmp_path, "pub", per_fg=3))
    alt, pub = tree_digest(tmp_path / "ds"), tree_digest(tmp_path / "pub")
    assert alt.keys() == pub.keys() and any(alt[k] != pub[k] for k in alt if k.startswith("merged/"))
    # a folder made with one convention refuses the other without --overwrite
    from mattecli.errors import MatteError
    with pytest.raises(MatteError, match="convention"):
        compose_dataset(_options(tmp_path, "ds", per_fg=3))


def test_manifest_is_mmagic_form_and_relative(tmp_path):
    make_inputs(tmp_path)
    compose_dataset(_options(tmp_path, "ds", trimaps=True, plates=True))
    data = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert isinstance(data, list) and len(data) == 9
    assert [d["merged_path"] for d in data[:3]] == ["merged/fg0_0.png", "merged/fg0_1.png", "merged/fg0_2.png"]
    for d in data:
        assert set(d) == {"alpha_path", "fg_path", "bg_path", "merged_path", "trimap_path", "plate_path", "bg_source"}
        for k in ("alpha_path", "fg_path", "bg_path", "merged_path", "trimap_path", "plate_path"):
            assert not os.path.isabs(d[k]) and (tmp_path / "ds" / d[k]).is_file()
        tri = _cv_read(tmp_path / "ds" / d["trimap_path"], cv2.IMREAD_GRAYSCALE)
        assert set(np.unique(tri)) <= {0, 128, 255}
    card = json.loads((tmp_path / "ds" / "compose.json").read_text())
    assert card["counts"]["composites_present"] == 9 and card["counts"]["complete"] is True
    assert card["seed"] == 7 and card["sources"]["backgrounds"]["kind"] == "folder"


def test_deterministic_across_worker_counts_and_shards(tmp_path):
    make_inputs(tmp_path, n_fg=3, n_bg=8)
    extra = dict(trimaps=True, plates=True, crop="random")
    compose_dataset(_options(tmp_path, "w1", workers=1, **extra))
    compose_dataset(_options(tmp_path, "w2", workers=2, **extra))
    for i in (1, 2, 3):
        compose_dataset(_options(tmp_path, "sh", workers=1, shard=(i, 3), **extra))
    one = tree_digest(tmp_path / "w1")
    assert len(one) > 30
    assert tree_digest(tmp_path / "w2") == one
    assert tree_digest(tmp_path / "sh") == one  # manifest included: rebuilt from disk by the last shard


def test_the_calling_process_is_one_of_the_workers(tmp_path, monkeypatch):
    """With --workers 2 this process composes too (beside one spawned worker), so it does not wait idle
    while the pool starts; the spawned worker imports its own, unpatched run_task."""
    from mattecli.compose import worker

    make_inputs(tmp_path, n_fg=3, n_bg=8)
    here = []
    real = worker.make_composite
    monkeypatch.setattr(worker, "make_composite", lambda job, fg, prepared, alpha, c: here.append(c.name)
                        or real(job, fg, prepared, alpha, c))
    summary = compose_dataset(_options(tmp_path, "w2", workers=2))
    assert summary.written == 9 and not summary.failures
    assert 0 < len(here) < 9  # some composites made here, the others by the spawned worker


def test_random_crop_is_seeded_and_differs_from_topleft(tmp_path):
    make_inputs(tmp_path, n_fg=1, n_bg=6)
    compose_dataset(_options(tmp_path, "tl", per_fg=6))
    compose_dataset(_options(tmp_path, "r1", per_fg=6, crop="random"))
    compose_dataset(_options(tmp_path, "r2", per_fg=6, crop="random", seed=8))
    a, b, c = (tree_digest(tmp_path / d) for d in ("tl", "r1", "r2"))
    bgs = [k for k in a if k.startswith("bg/")]
    # large backgrounds have room to move: the random crop differs from the top-left one
    assert any(a[k] != b[k] for k in bgs)
    assert b != c


def test_seeded_shuffle_uses_each_background_once_when_enough(tmp_path):
    make_inputs(tmp_path, n_fg=2, n_bg=8)
    compose_dataset(_options(tmp_path, "ds", per_fg=4))
    used = [r.bg_source for r in read_manifest(tmp_path / "ds")]
    assert sorted(used) == sorted(p.relative_to(tmp_path / "in_bg").as_posix()
                                  for p in (tmp_path / "in_bg").rglob("*.jpg"))
    compose_dataset(_options(tmp_path, "other", per_fg=4, seed=99))
    assert [r.bg_source for r in read_manifest(tmp_path / "other")] != used


def test_adobe_name_lists(tmp_path):
    make_inputs(tmp_path, n_fg=3, n_bg=8)
    (tmp_path / "fg_names.txt").write_text("fg2.png\nfg0.png\n")
    bg_lines = ["bg1.jpg", "bg3.jpg", "bg5.jpg", "bg0.jpg", "nested/bg7.jpg", "bg2.jpg"]
    (tmp_path / "bg_names.txt").write_text("\n".join(bg_lines) + "\n")
    s = compose_dataset(_options(tmp_path, "ds", per_fg=None, fg_names=tmp_path / "fg_names.txt",
                                 bg_names=tmp_path / "bg_names.txt"))
    assert s.per_fg == 3  # 6 lines / 2 foregrounds
    recs = read_manifest(tmp_path / "ds")
    assert [(Path(r.merged_path).stem, r.bg_source) for r in recs] == [
        ("fg2_0", "bg1.jpg"), ("fg2_1", "bg3.jpg"), ("fg2_2", "bg5.jpg"),
        ("fg0_0", "bg0.jpg"), ("fg0_1", "nested/bg7.jpg"), ("fg0_2", "bg2.jpg")]


def test_rerun_skips_done_and_overwrite_redoes(tmp_path):
    make_inputs(tmp_path)
    compose_dataset(_options(tmp_path, "ds"))
    before = tree_digest(tmp_path / "ds")
    victim = tmp_path / "ds" / "merged" / "fg1_2.png"
    victim.unlink()
    s = compose_dataset(_options(tmp_path, "ds"))
    assert (s.already_done, s.written) == (8, 1)
    assert tree_digest(tmp_path / "ds") == before
    s = compose_dataset(_options(tmp_path, "ds", overwrite=True))
    assert (s.already_done, s.written) == (0, 9)
    # a rerun with another seed must not mix plans silently
    from mattecli.errors import MatteError
    with pytest.raises(MatteError, match="different"):
        compose_dataset(_options(tmp_path, "ds", seed=8))


@pytest.mark.parametrize("copy", [False, True])
def test_overwrite_redoes_the_fg_and_alpha_copies(tmp_path, copy):
    """An input changed between runs: --overwrite must not pair new composites with the old alpha."""
    _, alpha_dir, _ = make_inputs(tmp_path)
    compose_dataset(_options(tmp_path, "ds", link=not copy))
    src = alpha_dir / "fg1.png"
    new_alpha = 255 - _cv_read(src, cv2.IMREAD_GRAYSCALE)
    src.unlink()  # a new file, as most editors and tools write one
    imwrite(src, new_alpha)
    compose_dataset(_options(tmp_path, "ds", overwrite=True, link=not copy))
    assert np.array_equal(_cv_read(tmp_path / "ds" / "alpha" / "fg1.png", cv2.IMREAD_GRAYSCALE), new_alpha)


def test_grey_rgba_16bit_inputs_are_converted_with_a_note(tmp_path):
    rng = np.random.default_rng(3)
    h, w = 30, 40
    grey_fg = rng.integers(0, 256, (h, w), dtype=np.uint8)
    alpha16 = rng.integers(0, 65536, (h, w), dtype=np.uint16)
    imwrite(tmp_path / "in_fg" / "g.png", grey_fg)
    imwrite(tmp_path / "in_alpha" / "g.png", alpha16)
    imwrite(tmp_path / "in_bg" / "b0.jpg", rng.integers(0, 256, (50, 60, 3), dtype=np.uint8))
    notes: list[str] = []
    s = compose_dataset(_options(tmp_path, "ds", per_fg=1), say=notes.append)
    assert s.written == 1
    assert any("foregrounds converted" in n for n in notes) and any("alphas converted" in n for n in notes)
    r = read_manifest(tmp_path / "ds")[0]
    fg = _cv_read(tmp_path / "ds" / r.fg_path)
    assert np.array_equal(fg, np.repeat(grey_fg[:, :, None], 3, axis=2))
    alpha8 = _cv_read(tmp_path / "ds" / r.alpha_path, cv2.IMREAD_UNCHANGED)
    assert alpha8.dtype == np.uint8 and np.array_equal(alpha8, ((alpha16.astype(np.int64) + 128) // 257))


def test_samples_source_needs_no_other_input(tmp_path):
    s = compose_dataset(ComposeOptions(out=tmp_path / "ds", samples=True, workers=1, show_progress=False))
    assert s.complete and s.planned == 6 * 4
    merged = sorted((tmp_path / "ds" / "merged").glob("*.png"))
    records = read_manifest(tmp_path / "ds")
    assert len(merged) == len(records) == 24
    assert sorted(resolve(tmp_path / "ds", r.merged_path) for r in records) == merged
    assert len({(r.fg_path, r.bg_path) for r in records}) == 24 and len({r.fg_path for r in records}) == 6
    for r in records[::5]:  # each merged file is its own fg over its own bg through its alpha
        fg, bg = (read_rgb(resolve(tmp_path / "ds", p)).astype(np.float64) for p in (r.fg_path, r.bg_path))
        alpha = read_alpha(resolve(tmp_path / "ds", r.alpha_path)).astype(np.float64)[:, :, None] / 255
        got = read_rgb(resolve(tmp_path / "ds", r.merged_path)).astype(np.float64)
        assert np.abs(got - (alpha * fg + (1 - alpha) * bg)).max() <= 1.0, r.name


def test_broken_background_fails_only_its_composite(tmp_path):
    make_inputs(tmp_path, n_fg=2, n_bg=6)
    bad = tmp_path / "in_bg" / "bg1.jpg"
    bad.write_bytes(bad.read_bytes()[:200])  # truncated JPEG
    s = compose_dataset(_options(tmp_path, "ds", per_fg=3))
    assert len(s.failures) == 1 and "truncated" in s.failures[0][1] and "bg1.jpg" in s.failures[0][1]
    assert s.written == 5 and s.manifest_records == 5


def _cli(tmp: Path, out: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "mattecli", "compose", "--fg", str(tmp / "in_fg"), "--alpha", str(tmp / "in_alpha"),
            "--bg", str(tmp / "in_bg"), "--out", str(tmp / out), "--per-fg", "10", "--seed", "3", "-q", *extra]


def test_resume_after_kill_9_matches_uninterrupted_run(tmp_path):
    rng = np.random.default_rng(5)
    for i in range(4):  # big enough that the run takes a few seconds
        imwrite(tmp_path / "in_fg" / f"f{i}.png", rng.integers(0, 256, (300, 400, 3), dtype=np.uint8))
        imwrite(tmp_path / "in_alpha" / f"f{i}.png", rng.integers(0, 256, (300, 400), dtype=np.uint8))
    for j in range(10):
        imwrite(tmp_path / "in_bg" / f"b{j}.jpg", rng.integers(0, 256, (200, 260, 3), dtype=np.uint8))
    extra = ("--trimaps", "--plates", "--workers", "2", "--png-level", "6")
    proc = subprocess.Popen(_cli(tmp_path, "killed", *extra), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    merged = tmp_path / "killed" / "merged"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(merged.glob("*.png"))) < 6:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_at_kill = len(list(merged.glob("*.png")))
    assert 0 < done_at_kill < 40, "the run must be killed part-way"
    subprocess.run(_cli(tmp_path, "killed", *extra), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(_cli(tmp_path, "clean", *extra), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed, clean = tree_digest(tmp_path / "killed"), tree_digest(tmp_path / "clean")
    assert len(clean) == 4 * 10 * 4 + 8 + 1
    assert killed == clean
    assert not [p for p in (tmp_path / "killed").rglob("*") if ".mattecli-tmp-" in p.name]
