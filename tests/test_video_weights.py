"""`mattecli video --weights`: a background-guided stand-in network registered here, run through
matte's LearnedMethod (batches of frames, foreground estimated when the network gives none)."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from torch import nn
from video_clips import NTSC, disc_alpha, textured_plate, write_composited_clip

from mattecli.cli.app import main
from mattecli.io.checkpoint import save_checkpoint
from mattecli.io.images import write_image
from mattecli.io.video import probe_video, read_frames, read_mattes
from mattecli.families.registry import register_family

W, H, N = 64, 48, 7
FG = np.array([230, 40, 30], np.float32)


class PlateStandIn(nn.Module):
    """alpha = clamp(gain * mean |image - plate|); records the batch shapes it is given."""

    family = "video_plate_standin"
    guidance = "background"
    calls: list[tuple[int, ...]] = []

    def __init__(self, gain: float = 1.0) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.tensor(float(gain)))

    def predict(self, image, guidance):
        assert guidance.shape == image.shape
        PlateStandIn.calls.append(tuple(image.shape))
        return {"alpha": (self.gain * (image - guidance).abs().mean(1, keepdim=True)).clamp(0, 1)}


class TrimapStandIn(PlateStandIn):
    family = "video_trimap_standin"
    guidance = "trimap"


@register_family("video_plate_standin")
def _build(gain: float = 1.0) -> nn.Module:
    return PlateStandIn(gain)


@register_family("video_trimap_standin")
def _build_trimap(gain: float = 1.0) -> nn.Module:
    return TrimapStandIn(gain)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vw")
    plate = textured_plate(H, W, seed=3)
    src = folder / "walk.mkv"
    write_composited_clip(src, plate, FG, [disc_alpha(H, W, 20 + 3 * i, 24, 12, soft=2.0) for i in range(N)])
    write_image(folder / "plate.png", plate)
    for family, gain in (("video_plate_standin", 3.0), ("video_trimap_standin", 1.0)):
        save_checkpoint(folder / f"{family}.pt", {"family": family, "model_config": {"gain": 1.0},
                                                  "model": _build(gain).state_dict()})
    return src, folder / "plate.png", plate, folder


def run_cli(args, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["mattecli", "video", *map(str, args)])
    with pytest.raises(SystemExit) as exc:
        main()
    return exc.value.code, capsys.readouterr().err


def test_background_network_runs_in_batches_of_frames(clip, tmp_path, capsys, monkeypatch):
    src, plate_path, plate, folder = clip
    PlateStandIn.calls.clear()
    out = tmp_path / "out"
    code, err = run_cli([src, "--background", plate_path, "--out", out, "--weights", folder / "video_plate_standin.pt",
                         "--batch-size", "3", "--device", "cpu", "--output", "alpha,rgba,comp", "--no-sheet",
                         "--temporal-strength", "0"],
                        capsys, monkeypatch)
    assert code == 0, err
    flat = " ".join(err.split())
    assert "video_plate_standin" in flat and "batch 3" in flat and "fp32" in flat
    assert PlateStandIn.calls == [(3, 3, H, W), (3, 3, H, W), (1, 3, H, W)]
    frames = np.stack(list(read_frames(src))).astype(np.float32) / 255
    want = np.clip(3.0 * np.abs(frames - plate.astype(np.float32) / 255).mean(axis=3), 0, 1)  # gain 3 loaded
    got = np.stack(list(read_mattes(out / "walk_alpha.mov"))).astype(np.float32) / 255
    assert got.shape == (N, H, W) and np.abs(got - want).max() <= 1 / 255 + 1e-6
    info = probe_video(out / "walk_rgba.mov")
    assert info.fps == NTSC
    rgba = np.stack(list(read_frames(out / "walk_rgba.mov", alpha=True)))
    assert rgba.shape == (N, H, W, 4) and np.abs(rgba[..., 3].astype(np.float32) / 255 - got).max() <= 1.5 / 255
    # no fg from the network: the multi-level estimate fills it, so solid disc pixels show the disc colour
    solid = want > 0.99
    assert solid.any() and np.abs(rgba[..., :3][solid].astype(np.float32) - FG).mean() < 12


def test_a_network_that_needs_other_guidance_is_one_line(clip, tmp_path, capsys, monkeypatch):
    src, plate_path, _, folder = clip
    code, err = run_cli([src, "--background", plate_path, "--out", tmp_path / "o",
                         "--weights", folder / "video_trimap_standin.pt"], capsys, monkeypatch)
    assert code == 2 and "trimap" in err and "Traceback" not in err
    assert err.strip().splitlines() == [err.strip()]
    assert not (tmp_path / "o").exists()


def test_the_temporal_filter_steadies_a_network_on_a_still_noisy_clip(clip, tmp_path, capsys, monkeypatch):
    """The stand-in network sees each frame alone, so sensor noise flickers its matte; with the
    default temporal filter the frame-to-frame change of the matte drops well below half."""
    from video_clips import LOSSLESS_RGB

    from mattecli.io.video import VideoWriter

    _, plate_path, plate, folder = clip
    rng = np.random.default_rng(7)
    a = disc_alpha(H, W, 30, 24, 12, soft=2.0)[:, :, None]
    src = tmp_path / "still.mkv"
    with VideoWriter(src, LOSSLESS_RGB, (W, H), NTSC) as writer:
        for _ in range(8):
            frame = a * FG + (1 - a) * plate + rng.normal(0, 3.0, plate.shape)
            writer.write(np.clip(frame + 0.5, 0, 255).astype(np.uint8))
    change = {}
    for strength in ("0", "0.8"):
        out = tmp_path / strength
        code, err = run_cli([src, "-b", plate_path, "-o", out, "--weights", folder / "video_plate_standin.pt",
                             "--device", "cpu", "--output", "alpha", "--no-sheet", "--temporal-strength", strength],
                            capsys, monkeypatch)
        assert code == 0, err
        mattes = np.stack(list(read_mattes(out / "still_alpha.mov"))).astype(np.float32) / 255
        change[strength] = float(np.abs(np.diff(mattes[2:], axis=0)).mean())
    assert change["0.8"] < 0.5 * change["0"]
