"""Extra per-pixel outputs of a network (trimap, uncertainty) through `matte --output`."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mattecli.families.registry import register_family
from mattecli.io.checkpoint import save_checkpoint
from mattecli.io.images import read_raw, write_image
from test_matte_weights import run_cli


class ExtraStandIn(nn.Module):
    """Guidance-free: alpha = mean colour; trimap levels from alpha; sigma = scale * |alpha - 0.5|."""

    family = "extra_standin"
    guidance = "none"
    extra_outputs = ("trimap", "uncertainty")

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(1.0))

    def predict(self, image, guidance):
        assert guidance is None
        alpha = image.mean(1, keepdim=True)
        trimap = torch.where(alpha > 0.7, 1.0, torch.where(alpha < 0.3, 0.0, 0.5))
        return {"alpha": alpha, "trimap": trimap, "uncertainty": self.scale * (alpha - 0.5).abs()}


@register_family("extra_standin")
def _build() -> nn.Module:
    return ExtraStandIn()


def test_trimap_and_uncertainty_outputs_hold_the_networks_maps(tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (20, 28, 3), dtype=np.uint8)
    write_image(tmp_path / "in" / "x.png", img)
    model = ExtraStandIn()
    with torch.no_grad():
        model.scale.fill_(0.8)  # not the default: the weights are loaded
    save_checkpoint(tmp_path / "w.pt", {"family": "extra_standin", "model_config": {}, "model": model.state_dict()})
    code, err = run_cli([tmp_path / "in", "--out", tmp_path / "out", "--weights", tmp_path / "w.pt",
                         "--output", "alpha,trimap,uncertainty", "--device", "cpu"], capsys, monkeypatch)
    assert code in (0, None), err
    mean = img.astype(np.float64).mean(2) / 255.0
    expected_trimap = np.where(mean > 0.7, 255, np.where(mean < 0.3, 0, 128))
    trimap = read_raw(tmp_path / "out" / "trimap" / "x.png")
    assert trimap.dtype == np.uint8 and set(np.unique(trimap)) <= {0, 128, 255}
    assert (trimap == expected_trimap).mean() > 0.99  # float32 vs float64 at the thresholds
    sigma = read_raw(tmp_path / "out" / "uncertainty" / "x.png")
    assert sigma.dtype == np.uint16
    np.testing.assert_allclose(sigma / 65535.0, 0.8 * np.abs(mean - 0.5), atol=2e-4)


def test_extra_output_refused_when_the_method_cannot_predict_it(tmp_path, capsys, monkeypatch):
    write_image(tmp_path / "in" / "x.png", np.zeros((8, 8, 3), np.uint8))
    write_image(tmp_path / "x.png", np.full((8, 8), 128, np.uint8))
    code, err = run_cli([tmp_path / "in", "--out", tmp_path / "out", "--trimap", tmp_path / "x.png",
                         "--output", "alpha,uncertainty"], capsys, monkeypatch)
    assert code == 2
    assert "--output uncertainty" in err and "predicts no uncertainty" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.png"))
