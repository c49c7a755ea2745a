"""SHM's training samples: the scale augmentation that is drawn is the one that happens; the M-Net's
pre-training input can be what a perfect T-Net hands it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mattecli.data.sources import MattingSample, MattingSource
from mattecli.data.trimap import TrimapSpec
from mattecli.families.shm.data import SHMTrainDataset, SHMValDataset, tnet_view_probabilities
from mattecli.io.images import write_image

SOURCE_SIDE = 240


def _ramp_source(tmp_path: Path) -> MattingSource:
    """A white subject whose alpha is a horizontal ramp 0..255 across the image, on black: the
    ramp's slope in a sample tells the side the image was resized to, wherever it was cropped."""
    ramp = np.round(np.linspace(0, 255, SOURCE_SIDE)).astype(np.uint8)
    alpha = np.tile(ramp, (SOURCE_SIDE, 1))
    write_image(tmp_path / "a.png", alpha)
    write_image(tmp_path / "f.png", np.full((SOURCE_SIDE, SOURCE_SIDE, 3), 255, np.uint8))
    write_image(tmp_path / "b.png", np.zeros((SOURCE_SIDE, SOURCE_SIDE, 3), np.uint8))
    return MattingSource([MattingSample("s", tmp_path / "f.png", tmp_path / "a.png")], [tmp_path / "b.png"])


def _realised_side(image: np.ndarray) -> float:
    """Side of the resized ramp: 255 / slope of the ramp (fitted where 0 < alpha < 255)."""
    row = image[image.shape[0] // 2].astype(np.float64) * 255.0
    x = np.nonzero((row > 3) & (row < 252))[0]
    slope = abs(np.polyfit(x, row[x], 1)[0])
    return 255.0 / slope + 1.0


@pytest.mark.parametrize("stage, base, crop", [("tnet", 64, 64), ("e2e", 128, 128)])
def test_realised_scales_are_the_drawn_distribution(tmp_path, stage, base, crop):
    """Scale U(0.75, 1.25) of the base side, also below 1 where the crop equals the base (the
    subject then smaller in the frame, on a whole background): the realised scales fill the range."""
    data = SHMTrainDataset(_ramp_source(tmp_path), stage, seed=3, infer_size=64, full_size=128,
                           tnet_crop=64, e2e_crop=128, scale_range=(0.75, 1.25))
    scales = []
    for epoch in range(60):
        data.set_epoch(epoch)
        image = data[0]["image"][0].numpy()
        assert image.shape == (crop, crop)
        scales.append(_realised_side(image) / base)
    scales = np.array(scales)
    assert scales.min() < 0.8 and scales.max() > 1.2
    below = np.mean(scales < 0.97)                    # U(0.75, 1.25): P(scale < 0.97) = 0.44
    assert 0.25 < below < 0.65, scales.round(2)
    assert abs(np.mean(scales) - 1.0) < 0.06
    # a shrunk subject is padded with transparent pixels: whole rows of background above or below it
    small = [i for i, s in enumerate(scales) if s < 0.9]
    data.set_epoch(small[0])
    image = data[0]["image"][0].numpy()
    assert (image == 0).all(axis=1).any()


def test_tnet_view_probabilities_are_a_trimap_through_the_tnet_grid():
    """M-Net pre-training with ``mnet_input = "tnet"``: what a perfect T-Net hands over. A disc of
    radius 48 px in a 192 px image, T-Net side 64 (grid cell 8 px there = 24 px here): the
    probabilities are one-hot far from the outline, sum to 1, and the foreground probability
    falls from 1 to 0 over the trimap band widened by the grid (not in one pixel as a one-hot
    trimap does, and not over more than the band plus two cells)."""
    side, radius, cell = 192, 48, 24
    yy, xx = np.mgrid[:side, :side]
    r = np.hypot(yy - side / 2 + 0.5, xx - side / 2 + 0.5)
    alpha = np.clip((radius - r) * 255 + 128, 0, 255).astype(np.uint8)
    probs = tnet_view_probabilities(alpha, (64, 64), TrimapSpec((3, 3), (1, 1)), np.random.default_rng(0))
    assert probs.shape == (side, side, 3) and probs.dtype == np.float32
    assert np.allclose(probs.sum(axis=2), 1.0, atol=1e-5)
    centre, corner = probs[side // 2, side // 2], probs[2, 2]
    assert np.allclose(centre, [0, 0, 1], atol=1e-6) and np.allclose(corner, [1, 0, 0], atol=1e-6)
    row = probs[side // 2, side // 2:, 2]                      # from the centre outwards
    falling = np.nonzero((row < 0.99) & (row > 0.01))[0]
    width = falling.max() - falling.min() + 1
    assert cell // 2 <= width <= 3 * cell, width               # soft edge, about one or two grid cells
    assert abs(np.argmin(np.abs(row - 0.5)) - radius) <= cell  # centred near the outline


def test_tnet_validation_scores_the_target_trimap_not_the_alpha(tmp_path):
    """The T-Net stage's checkpoint is chosen on its trimap: scored against the alpha, F + 0.5 U
    prefers a T-Net that calls a sparse hair band background (alpha there is mostly 0). A subject
    with a band of thin strands (alpha 0 between them): the validation target is the trimap the
    T-Net is trained on (levels 0 / 0.5 / 1, the strand band all 0.5), so a T-Net that says
    'unknown' over the band scores better than one that says 'background' there."""
    side = 160
    alpha = np.zeros((side, side), np.uint8)
    alpha[50:110, 50:110] = 255
    for x in range(30, 130, 6):                    # 1 px strands above the body, 5 px apart
        alpha[20:50, x] = 200
    write_image(tmp_path / "a.png", alpha)
    write_image(tmp_path / "f.png", np.full((side, side, 3), 200, np.uint8))
    write_image(tmp_path / "b.png", np.zeros((side, side, 3), np.uint8))
    source = MattingSource([MattingSample("s", tmp_path / "f.png", tmp_path / "a.png", tmp_path / "b.png")],
                           [tmp_path / "b.png"])
    item = SHMValDataset(source, "tnet", infer_size=80, tnet_trimap_spec=TrimapSpec((7, 7), (1, 1)))[0]
    target = item["alpha"][0].numpy()
    assert set(np.unique(target).tolist()) == {0.0, 0.5, 1.0}
    assert target[80, 80] == 1.0 and target[150, 5] == 0.0
    band = target[24:46, 34:126]
    assert (band == 0.5).mean() > 0.95, (band == 0.5).mean()   # the strands and the gaps between them
    says_background = np.where(alpha == 255, 1.0, 0.0)
    says_unknown = says_background.copy()
    says_unknown[20:50, 30:127] = 0.5
    sad = lambda pred, truth: np.abs(pred - truth)[10:50].sum()    # noqa: E731  (the strand rows)
    assert sad(says_unknown, target) < 0.7 * sad(says_background, target)
    # against the alpha it is the other way round: why the target is the trimap
    truth = alpha / 255.0
    assert sad(says_background, truth) < 0.7 * sad(says_unknown, truth)
