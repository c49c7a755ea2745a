"""Clicks: the ``--clicks`` JSON file, and the maps methods read them as.

File format: ``{"<image>": [{"x": 12, "y": 30.5, "label": "fg"}, ...], ...}`` where
``<image>`` is the image's path relative to the input folder (or its file name when the
input is one image), with or without the extension, ``x``/``y`` are pixel coordinates
(column, row; 0-based, origin top-left) and ``label`` is "fg" or "bg".

The maps a method reads clicks as (the signed map U, the 2-channel network guidance, the
classical method's constraints) are drawn by :mod:`mattecli.data.clicks`, one implementation
for every user; they are re-exported here.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path, PurePosixPath

from mattecli.data.clicks import (DEFAULT_RADIUS, Click, check_inside, click_maps, constraint_map,  # noqa: F401
                                  signed_click_map)
from mattecli.errors import BadInput

LABELS = {"fg": True, "bg": False}


def coordinate(path: Path, where: str, name: str, value: object) -> float:
    """A point's x or y from a clicks file: a finite number (NaN or 1e400 would reach the maps and the page).

    Shared by every kind of entry a clicks file holds (clicks; strokes' points), so each
    is validated the same way."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadInput(path, f"{where}: {name} must be a number, not {str(value)[:40]!r}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise BadInput(path, f"{where}: {name} must be a finite number, not {str(value)[:40]}")
    return number


def _parse_click(path: Path, key: str, i: int, entry: object) -> Click:
    where = f"entry {i} of {key!r}"
    if not isinstance(entry, dict):
        raise BadInput(path, f"{where} is not an object with x, y and label")
    try:
        x, y, label = entry["x"], entry["y"], entry["label"]
    except KeyError as exc:
        raise BadInput(path, f"{where} lacks {exc.args[0]!r}") from None
    x, y = coordinate(path, where, "x", x), coordinate(path, where, "y", y)
    if label not in LABELS:
        raise BadInput(path, f"{where}: label must be \"fg\" or \"bg\", not {label!r}")
    return Click(float(x), float(y), LABELS[label])


def read_clicks(path: str | os.PathLike) -> dict[str, list[Click]]:
    """Parse and validate a clicks file; keys are normalised to POSIX relative paths."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadInput(path, f"cannot open ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(path, f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BadInput(path, "expected a JSON object mapping image names to lists of clicks")
    out: dict[str, list[Click]] = {}
    for key, entries in data.items():
        if not isinstance(entries, list):
            raise BadInput(path, f"{key!r} must map to a list of clicks")
        name = PurePosixPath(key.replace("\\", "/")).as_posix()  # also drops a leading "./"
        out[name] = [_parse_click(path, key, i, e) for i, e in enumerate(entries)]
    return out


def clicks_to_json(clicks: dict[str, list[Click]]) -> dict[str, list[dict[str, object]]]:
    """The JSON object :func:`read_clicks` reads back to the same clicks (floats round-trip exactly)."""
    return {key: [{"x": c.x, "y": c.y, "label": "fg" if c.positive else "bg"} for c in entries]
            for key, entries in clicks.items()}


def write_clicks(path: str | os.PathLike, clicks: dict[str, list[Click]]) -> None:
    """Write a clicks file atomically, in the format ``matte --clicks`` reads."""
    from mattecli.io.atomic import write_json

    write_json(path, clicks_to_json(clicks))


def clicks_for(clicks: dict[str, list[Click]], rel: PurePosixPath) -> tuple[str, list[Click]] | None:
    """The (key, clicks) naming the image at ``rel``: with its extension first, then without."""
    for key in (rel.as_posix(), rel.with_suffix("").as_posix()):
        if key in clicks:
            return key, clicks[key]
    return None
