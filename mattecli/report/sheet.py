"""Contact sheets: a labelled grid of images that shows a result at a glance.

Used by ``mattecli video``/``matte``/``demo``/``train`` to render input, guidance, alpha and
a composite over a checkerboard side by side. Every cell is scaled (keeping its aspect) to
fit a common cell size and centred on a neutral background; labels are drawn in a strip
above each cell. Inputs may be RGB, RGBA (shown over a checkerboard), grey, or float in
[0, 1]; ``None`` leaves a cell empty.
"""
from __future__ import annotations

import os
from typing import Sequence

import cv2
import numpy as np

from mattecli.io.images import write_image

SHEET_BACKGROUND = (32, 32, 32)
LABEL_COLOUR = (235, 235, 235)
CHECKER_LIGHT, CHECKER_DARK = 204, 153
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def checkerboard(height: int, width: int, square: int = 16) -> np.ndarray:
    """uint8 HxWx3 grey checkerboard (204/153, the editors' transparency grid); top-left light."""
    yy, xx = np.indices((height, width))
    dark = ((yy // square) + (xx // square)) % 2 == 1
    board = np.where(dark, CHECKER_DARK, CHECKER_LIGHT).astype(np.uint8)
    return np.repeat(board[:, :, None], 3, axis=2)


def _unit_alpha(alpha: np.ndarray) -> np.ndarray:
    if alpha.ndim == 3:
        alpha = alpha[:, :, 0]
    if alpha.dtype == np.uint8:
        return alpha.astype(np.float32) / 255.0
    return np.clip(alpha.astype(np.float32), 0.0, 1.0)


def checkerboard_composite(fg: np.ndarray, alpha: np.ndarray, square: int = 16) -> np.ndarray:
    """uint8 RGB: ``alpha * fg + (1 - alpha) * checkerboard``, rounded; alpha uint8 or float [0, 1]."""
    fg_f = _to_rgb(fg).astype(np.float32)
    a = _unit_alpha(alpha)[:, :, None]
    board = checkerboard(fg_f.shape[0], fg_f.shape[1], square).astype(np.float32)
    return np.clip(a * fg_f + (1.0 - a) * board + 0.5, 0, 255).astype(np.uint8)


def alpha_display(alpha: np.ndarray) -> np.ndarray:
    """A matte (uint8 or float [0, 1]) as a grey RGB image."""
    a = np.clip(_unit_alpha(alpha) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(a[:, :, None], 3, axis=2)


def _to_rgb(image: np.ndarray) -> np.ndarray:
    """Any displayable array as uint8 RGB; RGBA goes over a checkerboard."""
    if image.dtype != np.uint8:
        image = np.clip(image.astype(np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    if image.shape[2] == 4:
        return checkerboard_composite(image[:, :, :3], image[:, :, 3])
    return image


def _fit(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale to fit inside width x height keeping the aspect; centred on the sheet background."""
    rgb = _to_rgb(image)
    h, w = rgb.shape[:2]
    scale = min(width / w, height / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST
    resized = cv2.resize(rgb, (nw, nh), interpolation=interp)
    cell = np.empty((height, width, 3), np.uint8)
    cell[:] = SHEET_BACKGROUND
    y, x = (height - nh) // 2, (width - nw) // 2
    cell[y:y + nh, x:x + nw] = resized
    return cell


def _label(strip: np.ndarray, text: str) -> None:
    """Draw ``text`` left-aligned and vertically centred, shrinking it to fit the strip."""
    h, w = strip.shape[:2]
    scale = h / 36.0
    (tw, th), base = cv2.getTextSize(text, _FONT, scale, 1)
    if tw > w - 8:
        scale *= (w - 8) / tw
        (tw, th), base = cv2.getTextSize(text, _FONT, scale, 1)
    y = (h + th) // 2
    cv2.putText(strip, text, (4, y), _FONT, scale, LABEL_COLOUR, 1, cv2.LINE_AA)


def sheet_layout(rows: int, cols: int, cell: tuple[int, int], label_height: int, gap: int) -> tuple[int, int]:
    """(height, width) of a sheet: cells of cell=(w, h) under label strips, ``gap`` px around each."""
    cw, ch = cell
    return rows * (label_height + ch + gap) + gap, cols * (cw + gap) + gap


def cell_origin(row: int, col: int, cell: tuple[int, int], label_height: int, gap: int) -> tuple[int, int]:
    """(y, x) of a cell's image area (below its label strip) in the sheet."""
    cw, ch = cell
    return gap + row * (label_height + ch + gap) + label_height, gap + col * (cw + gap)


def contact_sheet(rows: Sequence[Sequence[np.ndarray | None]],
                  labels: Sequence[str] | Sequence[Sequence[str]] | None = None,
                  cell_width: int = 320, cell_height: int | None = None,
                  label_height: int = 24, gap: int = 4) -> np.ndarray:
    """uint8 RGB grid: ``rows[r][c]`` in row r, column c, each under its label.

    ``labels`` is either one label per column (repeated on every row) or one per cell.
    ``cell_height`` defaults to the tallest aspect among the images at ``cell_width``.
    """
    if not rows or not any(len(r) for r in rows):
        raise ValueError("a contact sheet needs at least one image")
    cols = max(len(r) for r in rows)
    images = [im for r in rows for im in r if im is not None]
    if cell_height is None:
        cell_height = max(round(cell_width * im.shape[0] / im.shape[1]) for im in images)
    cell = (cell_width, cell_height)
    per_cell = bool(labels) and not isinstance(labels[0], str)
    height, width = sheet_layout(len(rows), cols, cell, label_height if labels else 0, gap)
    lh = label_height if labels else 0
    sheet = np.empty((height, width, 3), np.uint8)
    sheet[:] = SHEET_BACKGROUND
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            y, x = cell_origin(r, c, cell, lh, gap)
            if labels:
                text = labels[r][c] if per_cell else (labels[c] if c < len(labels) else "")
                if text:
                    _label(sheet[y - lh:y, x:x + cell_width], str(text))
            if image is not None:
                sheet[y:y + cell_height, x:x + cell_width] = _fit(image, cell_width, cell_height)
    return sheet


def write_contact_sheet(path: str | os.PathLike, rows: Sequence[Sequence[np.ndarray | None]],
                        labels: Sequence[str] | Sequence[Sequence[str]] | None = None, **layout: int) -> np.ndarray:
    """Render and write (atomically, format from the extension); returns the sheet."""
    sheet = contact_sheet(rows, labels, **layout)
    write_image(path, sheet, png_compression=9)
    return sheet
