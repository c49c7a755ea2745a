"""Background Matting through `matte --background --weights` and `video --background --weights`:
the cues each network call gets, the F head as the foreground output, and bad input."""
from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest
import torch
from video_clips import disc_alpha, textured_plate, write_composited_clip

from mattecli.cli.app import main
from mattecli.families.bgm.cues import soften_mask, window_index
from mattecli.families.bgm.model import BackgroundMatting
from mattecli.families.registry import build_model, load_model
from mattecli.io.checkpoint import save_checkpoint
from mattecli.io.images import read_alpha, read_rgb, write_image
from mattecli.io.video import read_frames, read_mattes

W, H, N = 48, 40, 6
CONFIG = {"ngf": 4, "nf_part": 4, "n_blocks1": 1, "n_blocks2": 1, "resolution": 32, "crop": "full"}


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bgminf")
    torch.manual_seed(0)
    net = build_model("bgm", CONFIG)
    save_checkpoint(folder / "bgm.pt", {"family": "bgm", "model_config": CONFIG, "model": net.state_dict()})
    dim = build_model("dim", {})
    save_checkpoint(folder / "dim.pt", {"family": "dim", "model_config": {}, "model": dim.state_dict()})
    plate = textured_plate(H, W, seed=5)
    write_image(folder / "plate.png", plate)
    write_image(folder / "small_plate.png", plate[:32, :40])
    src = folder / "walk.mkv"
    write_composited_clip(src, plate, np.array([220, 50, 40], np.float32),
                          [disc_alpha(H, W, 14 + 3 * i, 20, 9, soft=2.0) for i in range(N)])
    for i in range(2):
        img = plate.copy()
        img[10 + i:30, 12:30] = (30, 200, 60)
        write_image(folder / "shots" / f"s{i}.png", img)
        write_image(folder / "plates" / f"s{i}.png", plate)
        mask = np.zeros((H, W), np.uint8)
        mask[10 + i:30, 12:30] = 255
        write_image(folder / "masks" / f"s{i}.png", mask)
    return folder


def run_cli(args, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["mattecli", *map(str, args)])
    with pytest.raises(SystemExit) as exc:
        main()
    return exc.value.code, capsys.readouterr().err


def record_predict(monkeypatch) -> list[dict]:
    calls: list[dict] = []
    original = BackgroundMatting.predict

    def spy(self, image, guidance, segmentation=None, motion=None):
        calls.append({"image": image.clone(), "segmentation": None if segmentation is None else segmentation.clone(),
                      "motion": None if motion is None else motion.clone()})
        return original(self, image, guidance, segmentation, motion)

    monkeypatch.setattr(BackgroundMatting, "predict", spy)
    return calls


def test_video_gets_the_motion_window_and_writes_every_output(kit, tmp_path, capsys, monkeypatch):
    calls = record_predict(monkeypatch)
    out = tmp_path / "out"
    code, err = run_cli(["video", kit / "walk.mkv", "--background", kit / "plate.png", "--out", out, "--weights",
                         kit / "bgm.pt", "--batch-size", "4", "--device", "cpu", "--motion-offsets", "-2,-1,1,2",
                         "--output", "alpha,rgba,fg,comp", "--no-sheet"], capsys, monkeypatch)
    assert code == 0, err
    assert "motion cue at frame offsets -2, -1, +1, +2" in " ".join(err.split())
    frames = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in read_frames(kit / "walk.mkv")]
    motion = torch.cat([c["motion"] for c in calls])
    assert motion.shape == (N, 4, H, W)
    for i in range(N):
        want = np.stack([frames[window_index(i, o, N)] for o in (-2, -1, 1, 2)])
        assert np.array_equal((motion[i].numpy() * 255).round().astype(np.uint8), want), i
    alphas = np.stack(list(read_mattes(out / "walk_alpha.mov")))
    assert alphas.shape == (N, H, W)
    # the foreground output is the network's F head (alpha-gated as the official script does)
    net, _ = load_model(kit / "bgm.pt")
    first = torch.from_numpy(np.stack(list(read_frames(kit / "walk.mkv")))[:1]).permute(0, 3, 1, 2).float() / 255
    plate = torch.from_numpy(read_rgb(kit / "plate.png")).permute(2, 0, 1)[None].float() / 255
    ref = net.predict(first, plate, motion=motion[:1])
    fg = next(iter(read_frames(out / "walk_rgba.mov", alpha=True)))[..., :3]  # ProRes 4444: near-lossless
    a0 = ref["alpha"][0, 0].numpy()
    sure = a0 > 0.3
    assert sure.sum() > 50
    want_fg = (ref["fg"][0].permute(1, 2, 0).numpy() * 255)[sure]
    assert np.abs(fg[sure].astype(np.float32) - want_fg).mean() < 3
    for kind in ("rgba", "comp"):
        assert any(p.name.startswith(f"walk_{kind}") for p in out.iterdir())


def test_matte_folder_with_plates_and_masks(kit, tmp_path, capsys, monkeypatch):
    calls = record_predict(monkeypatch)
    out = tmp_path / "m"
    code, err = run_cli(["matte", kit / "shots", "--background", kit / "plates", "--segmentation", kit / "masks",
                         "--weights", kit / "bgm.pt", "--out", out, "--output", "alpha,fg", "--device", "cpu"],
                        capsys, monkeypatch)
    assert code == 0, err
    seg = torch.cat([c["segmentation"] for c in calls])
    want = np.stack([soften_mask(read_alpha(kit / "masks" / f"s{i}.png")) for i in range(2)])
    assert np.abs(seg[:, 0].numpy() - want).max() < 1e-6
    # stills: the motion cue is four copies of the grey image (the network's default)
    assert all(c["motion"] is None for c in calls)
    net, _ = load_model(kit / "bgm.pt")
    img = torch.from_numpy(read_rgb(kit / "shots" / "s0.png")).permute(2, 0, 1)[None].float() / 255
    plate = torch.from_numpy(read_rgb(kit / "plates" / "s0.png")).permute(2, 0, 1)[None].float() / 255
    ref = net.predict(img, plate, segmentation=torch.from_numpy(want[:1, None]))
    got = read_alpha(out / "alpha" / "s0.png").astype(np.float32) / 255
    assert np.abs(got - ref["alpha"][0, 0].numpy()).max() <= 0.5 / 255 + 1e-6


@pytest.mark.parametrize("case", ["missing plate", "plate size", "other family", "classical segmentation",
                                  "matte missing plates"])
def test_bad_input_is_one_line_exit_2(kit, tmp_path, capsys, monkeypatch, case):
    video = ["video", kit / "walk.mkv", "--out", tmp_path / "o", "--device", "cpu"]
    args = {
        "missing plate": video + ["--background", kit / "nope.png", "--weights", kit / "bgm.pt"],
        "plate size": video + ["--background", kit / "small_plate.png", "--weights", kit / "bgm.pt"],
        "other family": video + ["--background", kit / "plate.png", "--weights", kit / "dim.pt"],
        "classical segmentation": video + ["--background", kit / "plate.png", "--segmentation", kit / "masks"],
        "matte missing plates": ["matte", kit / "shots", "--background", kit / "noplates", "--weights", kit / "bgm.pt",
                                 "--out", tmp_path / "o"],
    }[case]
    code, err = run_cli(args, capsys, monkeypatch)
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()


SHM_CONFIG = {"infer_size": 16, "tnet_width": 4, "mnet_width": 4}


@pytest.fixture(scope="module")
def segmenter(kit):
    torch.manual_seed(3)
    net = build_model("shm", SHM_CONFIG)
    save_checkpoint(kit / "shm.pt", {"family": "shm", "model_config": SHM_CONFIG, "model": net.state_dict()})
    return kit / "shm.pt"


def test_segmenter_masks_are_the_shm_alpha_softened(kit, segmenter, tmp_path, capsys, monkeypatch):
    calls = record_predict(monkeypatch)
    code, err = run_cli(["matte", kit / "shots", "--background", kit / "plates", "--weights", kit / "bgm.pt",
                         "--segmenter", segmenter, "--out", tmp_path / "out", "--output", "alpha", "--batch-size", "1",
                         "--device", "cpu"], capsys, monkeypatch)
    assert code in (0, None), err
    shm, _ = load_model(segmenter)
    for k, call in enumerate(calls):  # the same order as the shots
        image = read_rgb(kit / "shots" / f"s{k}.png")
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
        with torch.no_grad():
            mask = shm.predict(x, None)["alpha"][0, 0].numpy()
        np.testing.assert_allclose(call["segmentation"][0, 0].numpy(), soften_mask(mask), atol=1e-6)


def test_segmenter_refusals_are_one_line(kit, segmenter, tmp_path, capsys, monkeypatch):
    base = ["matte", kit / "shots", "--background", kit / "plates", "--weights", kit / "bgm.pt", "--out", tmp_path / "o"]
    for extra, words in ((["--segmenter", kit / "dim.pt"], "needs trimap guidance"),
                         (["--segmenter", segmenter, "--segmentation", kit / "masks"], "not both")):
        code, err = run_cli([*base, *extra], capsys, monkeypatch)
        assert code == 2 and words in err and "Traceback" not in err, err
    code, err = run_cli(["matte", kit / "shots", "--trimap", kit / "masks", "--segmenter", segmenter,
                         "--out", tmp_path / "o"], capsys, monkeypatch)
    assert code == 2 and "--segmenter goes with --background" in err
    code, err = run_cli(["video", kit / "walk.mkv", "--background", kit / "plate.png", "--out", tmp_path / "v",
                         "--segmenter", segmenter], capsys, monkeypatch)
    assert code == 2 and "--segmenter applies to a Background Matting network" in err
    assert not any((tmp_path / "o").rglob("*.png"))


def test_video_segmenter_makes_each_frames_mask(kit, segmenter, tmp_path, capsys, monkeypatch):
    calls = record_predict(monkeypatch)
    code, err = run_cli(["video", kit / "walk.mkv", "--background", kit / "plate.png", "--out", tmp_path / "v",
                         "--weights", kit / "bgm.pt", "--segmenter", segmenter, "--batch-size", "2", "--device", "cpu",
                         "--output", "alpha", "--no-sheet"], capsys, monkeypatch)
    assert code == 0, err
    assert "segmentation by the 'shm' network" in " ".join(err.split())
    shm, _ = load_model(segmenter)
    frames = list(read_frames(kit / "walk.mkv"))
    seg = torch.cat([c["segmentation"] for c in calls])
    assert seg.shape[0] == len(frames)
    x = torch.from_numpy(np.array(frames[-1])).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        mask = shm.predict(x, None)["alpha"][0, 0].numpy()
    np.testing.assert_allclose(seg[-1, 0].numpy(), soften_mask(mask), atol=1e-6)
