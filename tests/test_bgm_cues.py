"""Background Matting's cues: simulated S and M statistics, the test-time cues, the streaming motion window."""
from __future__ import annotations

import numpy as np
import pytest

from mattecli.data.trimap import BACKGROUND, FOREGROUND, UNKNOWN
from mattecli.families.bgm.cues import (SegmentationSpec, motion_affine, plate_mask, segmentation_from_plate,
                                        simulate_motion, simulate_segmentation, still_motion, subject_box,
                                        window_index)
from mattecli.inference.video import motion_windows
from mattecli.seeding import rng_for


def disk(size=200, r=50):
    yy, xx = np.mgrid[:size, :size]
    d = np.hypot(yy - size / 2, xx - size / 2)
    alpha = (np.clip(r + 0.5 - d, 0, 1) * 255).astype(np.uint8)
    trimap = np.full(alpha.shape, UNKNOWN, np.uint8)
    trimap[d < r - 4] = FOREGROUND
    trimap[d > r + 4] = BACKGROUND
    return alpha, trimap, d


def test_simulated_segmentation_statistics():
    alpha, trimap, d = disk()
    radii, softs, holes = [], [], 0
    for seed in range(24):
        seg = simulate_segmentation(alpha, trimap, rng_for(seed, "s"), SegmentationSpec(holes=(0, 0)))
        radii.append(np.sqrt((seg > 127).sum() / np.pi) - 50)
        softs.append(((seg > 10) & (seg < 245)).mean())
        holed = simulate_segmentation(alpha, trimap, rng_for(seed, "h"), SegmentationSpec(holes=(2, 2), blur_sizes=(3,)))
        unholed = simulate_segmentation(alpha, trimap, rng_for(seed, "h"), SegmentationSpec(holes=(0, 0), blur_sizes=(3,)))
        holes += int((unholed.astype(int) - holed > 100).sum() > 0)
    radii = np.array(radii)
    # erosion 10-19 and dilation 15-29 iterations of a radius-2 ellipse: net growth 2*(dilate - erode) px,
    # from -8 to +38, mean 2 * (22 - 14.5) = 15
    assert radii.min() > -8 - 3 and radii.max() < 38 + 3
    assert 8 < radii.mean() < 22
    assert np.std(radii) > 4  # the iterations are random
    assert min(softs) > 0.01  # blurred: a soft band
    assert holes >= 20  # two holes cut out of the band (rarely both fall outside S)


def test_motion_affine_has_real_rotation_and_official_spreads():
    rng = rng_for(0, "m")
    mats = np.array([motion_affine(rng) for _ in range(3000)])
    angles = np.degrees(np.arctan2(mats[:, 1, 0] - mats[:, 0, 1], mats[:, 0, 0] + mats[:, 1, 1]))
    assert abs(np.std(angles) - 7.0) < 0.6 and abs(np.mean(angles)) < 0.5
    assert abs(mats[:, :, 2].std() - 5.0) < 0.3
    # the official element-wise product would leave the off-diagonals 0 (no rotation)
    assert np.mean(np.abs(mats[:, 0, 1])) > 0.05


def test_simulated_motion_frames():
    alpha, _, _ = disk(64, 16)
    rng = np.random.default_rng(0)
    fg = np.zeros((64, 64, 3), np.uint8)
    fg[:] = (250, 30, 30)
    bg = np.full((64, 64, 3), 30, np.uint8)
    m = simulate_motion(fg, alpha, bg, rng_for(1, "m"))
    assert m.shape == (64, 64, 4) and m.dtype == np.uint8
    # each frame shows the subject (grey of this red ~ 96) moved a little: about the disk's area each
    subject = [(np.abs(m[:, :, t].astype(int) - 96) < 4).sum() for t in range(4)]
    assert all(0.6 * np.pi * 16 ** 2 < s < 1.5 * np.pi * 16 ** 2 for s in subject)
    assert len({m[:, :, t].tobytes() for t in range(4)}) == 4
    still = still_motion(fg)
    assert still.shape == (64, 64, 4) and (still == still[:, :, :1]).all()
    del rng


def test_plate_cue_and_subject_box():
    rng = np.random.default_rng(0)
    plate = (rng.random((80, 100, 3)) * 255).astype(np.uint8)
    image = plate.copy()
    image[20:60, 30:50] = (10, 200, 10)
    mask = plate_mask(image, plate)
    assert (mask[25:55, 35:45] == 255).all() and (mask[:, :20] == 0).all()
    seg = segmentation_from_plate(image, plate)
    assert seg.dtype == np.float32 and 0.9 < seg[40, 40] <= 1.0 and seg[5, 5] < 0.05
    # side 40 -> 10% margin 4 px up/left, 48 px square
    box = np.zeros((80, 100), np.float32)
    box[20:60, 30:50] = 1
    assert subject_box(box) == (16, 64, 26, 74)
    assert subject_box(np.zeros((8, 9))) == (0, 8, 0, 9)


def test_window_index_mirrors_at_both_ends():
    assert [window_index(0, o, 100) for o in (-40, -20, 20, 40)] == [40, 20, 20, 40]
    assert [window_index(99, o, 100) for o in (-40, -20, 20, 40)] == [59, 79, 79, 59]
    assert [window_index(50, o, 100) for o in (-40, -20, 20, 40)] == [10, 30, 70, 90]
    assert [window_index(1, o, 3) for o in (-40, 40)] == [0, 0]  # reflected, then clamped, in a very short clip


@pytest.mark.parametrize("count", [3, 7, 30])
def test_motion_window_streams_with_a_bounded_buffer(count):
    offsets = (-4, -2, 2, 4)
    consumed = []

    def items():
        for i in range(count):
            consumed.append(i)
            yield (i,)

    seen = []
    for item, window in motion_windows(items(), offsets, lambda it: np.array([it[0]])):
        i = item[0]
        # look-ahead is bounded: never more than 4 frames past the one being yielded
        assert max(consumed) <= i + 4
        assert [int(w[0]) for w in window] == [window_index(i, o, count) for o in offsets]
        seen.append(i)
    assert seen == list(range(count))
