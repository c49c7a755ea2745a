"""Contact sheets: layout, labels, letterboxing, checkerboard composites."""
from __future__ import annotations

import numpy as np
import pytest

from mattecli.report import alpha_display, checkerboard, checkerboard_composite, contact_sheet, write_contact_sheet
from mattecli.report.sheet import SHEET_BACKGROUND, cell_origin, sheet_layout


def solid(h: int, w: int, colour) -> np.ndarray:
    img = np.empty((h, w, 3), np.uint8)
    img[:] = colour
    return img


def test_checkerboard_pattern():
    board = checkerboard(40, 50, square=10)
    assert board.shape == (40, 50, 3) and board.dtype == np.uint8
    assert tuple(board[0, 0]) == (204, 204, 204)
    assert tuple(board[0, 10]) == (153, 153, 153)
    assert tuple(board[10, 10]) == (204, 204, 204)
    assert tuple(board[39, 49]) == (153, 153, 153)  # square (3, 4): odd, dark


def test_checkerboard_composite_is_the_over_operator():
    rng = np.random.default_rng(0)
    fg = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    alpha8 = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    board = checkerboard(20, 30, 8).astype(np.float64)
    a = alpha8.astype(np.float64)[:, :, None] / 255
    want = np.floor(a * fg + (1 - a) * board + 0.5)
    np.testing.assert_array_equal(checkerboard_composite(fg, alpha8, square=8), want.astype(np.uint8))
    # float alpha gives the same picture
    np.testing.assert_array_equal(checkerboard_composite(fg, alpha8 / 255.0, square=8), want.astype(np.uint8))


def test_alpha_display_is_grey():
    shown = alpha_display(np.array([[0.0, 0.5, 1.0]], np.float32))
    assert shown.shape == (1, 3, 3)
    assert shown[0, :, 0].tolist() == [0, 128, 255] and (shown[..., 0] == shown[..., 2]).all()


def test_grid_layout_cells_and_labels():
    colours = [[(255, 0, 0), (0, 255, 0), (0, 0, 255)], [(255, 255, 0), (0, 255, 255), None]]
    rows = [[solid(30, 40, c) if c else None for c in row] for row in colours]
    sheet = contact_sheet(rows, ["input", "alpha", ""], cell_width=80, label_height=20, gap=4)
    # 40x30 images at width 80 -> cells 80x60
    assert sheet.shape[:2] == sheet_layout(2, 3, (80, 60), 20, 4) == (2 * (20 + 60 + 4) + 4, 3 * (80 + 4) + 4)
    for r, row in enumerate(colours):
        for c, colour in enumerate(row):
            y, x = cell_origin(r, c, (80, 60), 20, 4)
            cell = sheet[y:y + 60, x:x + 80]
            want = colour if colour else SHEET_BACKGROUND
            assert (cell == np.array(want, np.uint8)).all(), (r, c)
            strip = sheet[y - 20:y, x:x + 80]
            has_text = (strip != np.array(SHEET_BACKGROUND, np.uint8)).any()
            assert has_text == (c < 2), (r, c)  # the third column's label is empty


def test_per_cell_labels_letterbox_and_rgba():
    tall = solid(100, 20, (10, 200, 10))
    rgba = np.zeros((30, 40, 4), np.uint8)  # fully transparent: shows the checkerboard
    sheet = contact_sheet([[tall, rgba]], [["a tall one", "transparent"]], cell_width=60, cell_height=60,
                          label_height=16, gap=2)
    y, x = cell_origin(0, 0, (60, 60), 16, 2)
    cell = sheet[y:y + 60, x:x + 60]
    # 20x100 fits as 12x60, centred: background bars on both sides
    assert (cell[:, :20] == np.array(SHEET_BACKGROUND, np.uint8)).all()
    assert (cell[:, 24:36] == np.array((10, 200, 10), np.uint8)).all()
    y, x = cell_origin(0, 1, (60, 60), 16, 2)
    shown = sheet[y + 10:y + 50, x:x + 60]
    assert set(np.unique(shown)) <= {153, 204} | set(SHEET_BACKGROUND)


def test_write_contact_sheet_round_trips(tmp_path):
    from mattecli.io.images import read_rgb

    sheet = write_contact_sheet(tmp_path / "s.png", [[solid(8, 8, (1, 2, 3))]], cell_width=16)
    np.testing.assert_array_equal(read_rgb(tmp_path / "s.png"), sheet)


def test_empty_sheet_is_refused():
    with pytest.raises(ValueError):
        contact_sheet([[]])
