"""The --weights interface with a tiny stand-in network registered here."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from torch import nn

from mattecli.cli.app import main
from mattecli.data.trimap import trimap_from_alpha
from mattecli.inference import methods
from mattecli.io.checkpoint import save_checkpoint
from mattecli.io.images import read_alpha, read_raw, read_rgb, write_image
from mattecli.families.registry import register_family


class StandIn(nn.Module):
    """alpha = sigmoid(gain * 8 * (mean colour - 0.5)); records the batch shapes it is given."""

    family = "b1_standin"
    guidance = "trimap"
    calls: list[tuple[int, ...]] = []

    def __init__(self, gain: float = 1.0) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.tensor(float(gain)))

    def predict(self, image, guidance):
        assert guidance.shape[1] == 1 and set(torch.unique(guidance).tolist()) <= {0.0, 0.5, 1.0}
        StandIn.calls.append(tuple(image.shape))
        return {"alpha": torch.sigmoid(self.gain * 8 * (image.mean(1, keepdim=True) - 0.5))}


@register_family("b1_standin")
def _build(gain: float = 1.0) -> nn.Module:
    return StandIn(gain)


def expected_alpha(img: np.ndarray, trimap: np.ndarray, gain: float) -> np.ndarray:
    x = torch.from_numpy(img).float().permute(2, 0, 1)[None] / 255.0
    a = torch.sigmoid(gain * 8 * (x.mean(1, keepdim=True) - 0.5))[0, 0].numpy()
    a[trimap == 255], a[trimap == 0] = 1.0, 0.0
    return a


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(0)
    sizes = {"a.png": (36, 44), "b.png": (36, 44), "c.png": (30, 40)}
    for name, (h, w) in sizes.items():
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        a = np.zeros((h, w), np.uint8)
        a[8:h - 8, 10:w - 10] = 255
        write_image(tmp_path / "in" / name, img)
        write_image(tmp_path / "tri" / name, trimap_from_alpha(a, 3, 1, 3, 1))
    model = StandIn(gain=2.5)  # not the default: proves the weights were loaded
    save_checkpoint(tmp_path / "w.pt", {"family": "b1_standin", "model_config": {"gain": 1.0},
                                        "model": model.state_dict()})
    StandIn.calls.clear()
    return tmp_path


def run_cli(args, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["mattecli", "matte", *map(str, args)])
    with pytest.raises(SystemExit) as exc:
        main()
    return exc.value.code, capsys.readouterr().err


def test_weights_batches_equal_sizes_and_clamps_known_regions(data, capsys, monkeypatch):
    code, err = run_cli([data / "in", "--out", data / "out", "--weights", data / "w.pt", "--trimap", data / "tri",
                         "--batch-size", "4", "--device", "cpu", "--output", "alpha,rgba"], capsys, monkeypatch)
    assert code == 0, err
    flat = " ".join(err.split())
    assert "b1_standin" in flat and "cpu" in flat and "fp32" in flat
    assert StandIn.calls == [(2, 3, 36, 44), (1, 3, 30, 40)]
    for name in ("a.png", "b.png", "c.png"):
        img, tri = read_rgb(data / "in" / name), read_alpha(data / "tri" / name)
        want = np.rint(expected_alpha(img, tri, 2.5) * 255).astype(np.uint8)
        got = read_alpha(data / "out" / "alpha" / name)
        assert np.abs(got.astype(int) - want).max() <= 1
        assert read_raw(data / "out" / "rgba" / name).shape[2] == 4


def test_large_images_see_only_the_unknown_box(data, capsys, monkeypatch):
    monkeypatch.setattr(methods, "LARGE_SIDE", 20)
    monkeypatch.setattr(methods, "CROP_MARGIN", 2)
    fg_shapes = []  # the foreground is estimated once, on the whole image, not also on the crop
    real_estimate = methods.estimate_foreground_tensor
    monkeypatch.setattr(methods, "estimate_foreground_tensor",
                        lambda image, alpha, **kw: fg_shapes.append(tuple(image.shape)) or real_estimate(image, alpha, **kw))
    real_fg = methods.estimate_foreground
    monkeypatch.setattr(methods, "estimate_foreground",
                        lambda image, alpha, **kw: fg_shapes.append(image.shape) or real_fg(image, alpha, **kw))
    code, err = run_cli([data / "in" / "a.png", "--out", data / "out", "--weights", data / "w.pt",
                         "--trimap", data / "tri" / "a.png", "--output", "alpha,fg"], capsys, monkeypatch)
    assert code == 0, err
    tri = read_alpha(data / "tri" / "a.png")
    ys, xs = np.nonzero(tri == 128)
    box = (ys.max() - ys.min() + 1 + 4, xs.max() - xs.min() + 1 + 4)
    assert StandIn.calls == [(1, 3) + box] and box < tri.shape
    assert fg_shapes == [tri.shape + (3,)]
    want = np.rint(expected_alpha(read_rgb(data / "in" / "a.png"), tri, 2.5) * 255)
    assert np.abs(read_alpha(data / "out" / "alpha" / "a.png").astype(int) - want).max() <= 1


def test_guidance_must_fit_the_family(data, capsys, monkeypatch):
    (data / "c.json").write_text("{}")
    code, err = run_cli([data / "in", "--out", data / "out", "--weights", data / "w.pt", "--clicks", data / "c.json"],
                        capsys, monkeypatch)
    assert code == 2 and "--trimap" in err and "Traceback" not in err


def test_bad_checkpoint_is_one_line(data, capsys, monkeypatch):
    (data / "bad.pt").write_bytes(b"nope")
    code, err = run_cli([data / "in", "--out", data / "out", "--weights", data / "bad.pt", "--trimap", data / "tri"],
                        capsys, monkeypatch)
    assert code == 2 and "bad.pt" in err and "Traceback" not in err
