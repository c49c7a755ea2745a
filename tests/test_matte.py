"""`mattecli matte`: tree mirroring, outputs, guidance pairing, skip/overwrite/shard, failures, devices."""
from __future__ import annotations

import json
import sys
from pathlib import PurePosixPath

import numpy as np
import pytest
import torch

from mattecli.cli.app import main
from mattecli.data.trimap import trimap_from_alpha
from mattecli.inference.batch import output_names
from mattecli.inference.closed_form import closed_form_alpha
from mattecli.inference.foreground import estimate_foreground
from mattecli.io.images import read_alpha, read_raw, read_rgb, write_image


def run_cli(args, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["mattecli", "matte", *map(str, args)])
    with pytest.raises(SystemExit) as exc:
        main()
    return exc.value.code, capsys.readouterr().err


def scene(h=36, w=44, seed=0):
    """A textured blob over a gradient background, its alpha and a trimap."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - h / 2, xx - w / 2)
    alpha = np.clip((12 - r) / 5, 0, 1)
    fg = np.stack([0.9 * np.ones((h, w)), 0.5 + 0.1 * np.sin(xx / 3), 0.2 * np.ones((h, w))], axis=2)
    bg = np.stack([0.1 + 0.5 * xx / w, 0.3 * np.ones((h, w)), 0.8 - 0.4 * yy / h], axis=2)
    img = alpha[:, :, None] * fg + (1 - alpha[:, :, None]) * bg + 0.02 * rng.standard_normal((h, w, 3))
    img8 = np.clip(img * 255, 0, 255).round().astype(np.uint8)
    a8 = (alpha * 255).round().astype(np.uint8)
    return img8, a8, trimap_from_alpha(a8, 3, 2, 3, 2)


@pytest.fixture
def tree(tmp_path):
    """in/a.png, in/sub/b.png, in/sub/b.jpg (a stem collision) and trimaps/ mirroring them."""
    files = {"a.png": 0, "sub/b.png": 1, "sub/b.jpg": 2}
    for rel, seed in files.items():
        img, _, tri = scene(seed=seed)
        write_image(tmp_path / "in" / rel, img)
        write_image((tmp_path / "trimaps" / rel).with_suffix(".png") if rel != "sub/b.jpg"
                    else tmp_path / "trimaps" / "sub" / "b.jpg.png", tri)
    # the jpg's trimap is paired by stem "b" too: give it a distinct, same-extension file
    (tmp_path / "trimaps" / "sub" / "b.jpg.png").unlink()
    write_image(tmp_path / "trimaps" / "sub" / "b.jpg", scene(seed=2)[2])  # lossy but near 0/128/255
    return tmp_path


def test_output_names_resolve_collisions_deterministically():
    rels = [PurePosixPath(p) for p in ["a.png", "s/b.jpg", "s/b.png", "s/b.png.png", "s/c.png"]]
    names = [n.as_posix() for n in output_names(rels)]
    assert names == ["a", "s/b.jpg", "s/b.png", "s/b.png~2", "s/c"]


def test_tree_mirroring_every_kind_and_lossless_alpha(tree, capsys, monkeypatch):
    out = tree / "out"
    code, err = run_cli([tree / "in", "--out", out, "--trimap", tree / "trimaps", "--output", "alpha,rgba,fg,comp",
                         "--bg-color", "0,255,0", "--device", "cpu"], capsys, monkeypatch)
    assert code == 0, err
    assert "cpu" in err and "float" in err
    for kind in ("alpha", "rgba", "fg", "comp"):
        got = sorted(p.relative_to(out / kind).as_posix() for p in (out / kind).rglob("*.png"))
        assert got == ["a.png", "sub/b.jpg.png", "sub/b.png.png"], kind
    img = read_rgb(tree / "in" / "a.png")
    tri = read_alpha(tree / "trimaps" / "a.png")
    alpha = closed_form_alpha(img, trimap=tri)
    np.testing.assert_array_equal(read_alpha(out / "alpha" / "a.png"), np.rint(alpha * 255).astype(np.uint8))
    rgba = read_raw(out / "rgba" / "a.png")
    assert rgba.shape == img.shape[:2] + (4,)
    np.testing.assert_array_equal(rgba[:, :, 3], read_alpha(out / "alpha" / "a.png"))
    fg = estimate_foreground(img, alpha)
    np.testing.assert_array_equal(read_rgb(out / "fg" / "a.png"), np.rint(fg * 255).astype(np.uint8))
    np.testing.assert_array_equal(rgba[:, :, :3], read_rgb(out / "fg" / "a.png"))
    expected = fg * alpha[:, :, None] + np.array([0, 1, 0]) * (1 - alpha[:, :, None])
    comp = read_rgb(out / "comp" / "a.png").astype(int)
    assert np.abs(comp - np.rint(expected * 255)).max() <= 1


def test_alpha_16bit(tree, capsys, monkeypatch):
    out = tree / "out16"
    code, err = run_cli([tree / "in" / "a.png", "--out", out, "--trimap", tree / "trimaps" / "a.png",
                         "--output", "alpha", "--alpha-16bit"], capsys, monkeypatch)
    assert code == 0, err
    a16 = read_raw(out / "alpha" / "a.png")
    assert a16.dtype == np.uint16
    alpha = closed_form_alpha(read_rgb(tree / "in" / "a.png"), trimap=read_alpha(tree / "trimaps" / "a.png"))
    np.testing.assert_array_equal(a16, np.rint(alpha * 65535).astype(np.uint16))


def test_skip_overwrite_and_resume(tree, capsys, monkeypatch):
    out = tree / "out"
    args = [tree / "in", "--out", out, "--trimap", tree / "trimaps"]
    assert run_cli(args, capsys, monkeypatch)[0] == 0
    target = out / "alpha" / "a.png"
    target.write_bytes(b"sentinel")
    code, err = run_cli(args, capsys, monkeypatch)
    assert code == 0 and "0 matted, 3 skipped" in " ".join(err.split())
    assert target.read_bytes() == b"sentinel"
    (out / "rgba" / "a.png").unlink()  # a half-finished image: only the missing kind is redone
    run_cli(args, capsys, monkeypatch)
    assert target.read_bytes() == b"sentinel" and (out / "rgba" / "a.png").exists()
    code, err = run_cli([*args, "--overwrite"], capsys, monkeypatch)
    assert code == 0 and "3 matted" in " ".join(err.split())
    assert read_alpha(target).shape == (36, 44)


def test_shards_split_the_work(tree, capsys, monkeypatch):
    out = tree / "out"
    seen = []
    for shard in ("1/2", "2/2"):
        before = set((out / "alpha").rglob("*.png")) if (out / "alpha").exists() else set()
        code, err = run_cli([tree / "in", "--out", out, "--trimap", tree / "trimaps", "--output", "alpha",
                             "--shard", shard], capsys, monkeypatch)
        assert code == 0, err
        seen.append(set((out / "alpha").rglob("*.png")) - before)
    assert seen[0] and seen[1] and not (seen[0] & seen[1])
    assert len(seen[0] | seen[1]) == 3


def test_bad_files_are_reported_and_the_batch_goes_on(tree, capsys, monkeypatch):
    (tree / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    img, _, _ = scene(seed=5)
    write_image(tree / "in" / "lonely.png", img)  # no trimap for it
    out = tree / "out"
    code, err = run_cli([tree / "in", "--out", out, "--trimap", tree / "trimaps"], capsys, monkeypatch)
    flat = " ".join(err.split())
    assert code == 1
    assert "broken.png" in flat and "lonely.png" in flat and "no trimap" in flat
    assert "3 matted" in flat and "2 failed" in flat
    assert (out / "alpha" / "sub" / "b.png.png").exists()


def test_guidance_errors_are_one_line(tree, capsys, monkeypatch):
    code, err = run_cli([tree / "in", "--out", tree / "o"], capsys, monkeypatch)
    assert code == 2 and "needs guidance" in err and "Traceback" not in err
    code, err = run_cli([tree / "in", "--out", tree / "o", "--trimap", tree / "trimaps", "--clicks",
                         tree / "c.json"], capsys, monkeypatch)
    assert code == 2 and "one kind of guidance" in err


def test_setup_errors_come_before_any_other_output(tree, capsys, monkeypatch):
    """A bad guidance flag is the only line printed: no method line, no half-drawn progress bar."""
    for extra in ([], ["--trimap", tree / "missing"], ["--clicks", tree / "missing.json"]):
        code, err = run_cli([tree / "in", "--out", tree / "o", *extra], capsys, monkeypatch)
        assert code == 2 and err.strip().splitlines() == [err.strip()] and err.startswith("error: "), err
    assert not (tree / "o").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_cuda_request_fails_clearly_without_gpu(tree, capsys, monkeypatch):
    code, err = run_cli([tree / "in", "--out", tree / "o", "--trimap", tree / "trimaps", "--device", "cuda"],
                        capsys, monkeypatch)
    assert code == 2 and "CUDA is not available" in err and "Traceback" not in err


def test_alpha_only_classical_run_never_imports_torch(tree):
    """torch's import costs seconds per run; the closed-form solve and PNG writing need none of it.
    With rgba output the foreground estimator (torch) does run, in the same kind of process."""
    import subprocess

    probe = ("import sys; from mattecli.cli.app import main; sys.argv = ['mattecli', 'matte', *sys.argv[1:]]\n"
             "try: main()\nexcept SystemExit as e: assert not e.code, e.code\n"
             "print('torch imported:', 'torch' in sys.modules)")
    for output, expected in (("alpha", "False"), ("alpha,rgba", "True")):
        done = subprocess.run([sys.executable, "-c", probe, str(tree / "in"), "--trimap", str(tree / "trimaps"),
                               "--out", str(tree / output), "--output", output, "--device", "auto"],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert f"torch imported: {expected}" in done.stdout, (output, done.stdout)
    assert (tree / "alpha" / "alpha").is_dir() and (tree / "alpha,rgba" / "rgba").is_dir()


def test_clicks_from_json(tmp_path, capsys, monkeypatch):
    img, _, _ = scene(seed=3)
    write_image(tmp_path / "in" / "x.png", img)
    clicks = {"x": [{"x": 22, "y": 18, "label": "fg"}, {"x": 2, "y": 2, "label": "bg"},
                    {"x": 41, "y": 33, "label": "bg"}, {"x": 41, "y": 2, "label": "bg"}, {"x": 2, "y": 33, "label": "bg"}],
              "nothing": []}
    (tmp_path / "c.json").write_text(json.dumps(clicks))
    code, err = run_cli([tmp_path / "in", "--out", tmp_path / "out", "--clicks", tmp_path / "c.json",
                         "--output", "alpha", "--click-radius", "2"], capsys, monkeypatch)
    assert code == 0, err
    assert "nothing" in err  # a key that names no image is reported
    alpha = read_alpha(tmp_path / "out" / "alpha" / "x.png")
    assert alpha[18, 22] == 255 and alpha[2, 2] == 0 and alpha[33, 41] == 0
    assert alpha[16:21, 20:25].mean() > 200 and alpha[:4, :4].mean() < 20


def test_background_plate(tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(4)
    h, w = 48, 64
    plate = np.clip(rng.normal(90, 6, (h, w, 3)), 0, 255).astype(np.uint8)
    frame = plate.copy()
    frame[12:36, 20:44] = (230, 40, 40)
    write_image(tmp_path / "in" / "f.png", frame)
    write_image(tmp_path / "plate.png", plate)
    code, err = run_cli([tmp_path / "in", "--out", tmp_path / "out", "--background", tmp_path / "plate.png",
                         "--output", "alpha"], capsys, monkeypatch)
    assert code == 0, err
    alpha = read_alpha(tmp_path / "out" / "alpha" / "f.png")
    assert alpha[16:32, 24:40].min() > 240 and alpha[:6].max() < 15


def test_bad_clicks_files(tmp_path, capsys, monkeypatch):
    img, _, _ = scene(seed=3)
    write_image(tmp_path / "in" / "x.png", img)
    (tmp_path / "bad.json").write_text('{"x": [{"x": 1, "y": 2, "label": "maybe"}]}')
    code, err = run_cli([tmp_path / "in", "--out", tmp_path / "o", "--clicks", tmp_path / "bad.json"], capsys, monkeypatch)
    assert code == 2 and "bad.json" in err and "label" in err
    (tmp_path / "far.json").write_text('{"x.png": [{"x": 500, "y": 2, "label": "fg"}]}')
    code, err = run_cli([tmp_path / "in", "--out", tmp_path / "o", "--clicks", tmp_path / "far.json"], capsys, monkeypatch)
    assert code == 1 and "outside the 44x36 image" in " ".join(err.split())


def test_library_callers_get_the_same_shard_check(tmp_path):
    from mattecli.errors import MatteError
    from mattecli.inference.batch import MatteOptions

    with pytest.raises(MatteError, match="--shard 3/2"):
        MatteOptions(input=tmp_path, out=tmp_path / "out", shard=(3, 2))
