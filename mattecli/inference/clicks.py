"""Clicks: the ``--clicks`` JSON file, and the maps methods read them as.

File format: ``{"<image>": [{"x": 12, "y": 30.5, "label": "fg"}, ...], ...}`` where
``<image>`` is the image's path relative to the input folder (or its file name when the
input is one image), with or without the extension, ``x``/``y`` are pixel coordinates
(column, row; 0-based, origin top-left) and ``label`` is "fg" or "bg".

Strokes (the studio's drags; docs/studio.md) extend the format compatibly: an entry of the
list may instead be ``{"label": "fg"|"bg", "radius": r, "points": [[x, y], ...]}``, the
pixels within ``r`` of the polyline through the points. Entries keep their order (a later
entry wins where two overlap), so old files load unchanged and files without strokes are
written exactly as before.

The maps a method reads clicks as (the signed map U, the 2-channel network guidance, the
classical method's constraints) are drawn by :mod:`mattecli.data.clicks`, one implementation
for every user; they are re-exported here.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path, PurePosixPath


from mattecli.data.clicks import (DEFAULT_RADIUS, Click, Stroke, check_inside, click_maps,  # noqa: F401
                                  constraint_map, signed_click_map)
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


def _parse_stroke(path: Path, where: str, entry: dict) -> Stroke:
    label, radius, points = entry.get("label"), entry.get("radius"), entry["points"]
    if label not in LABELS:
        raise BadInput(path, f"{where}: label must be \"fg\" or \"bg\", not {label!r}")
    try:
        brush = coordinate(path, where, "radius", radius)
    except BadInput:
        brush = 0.0
    if brush <= 0:
        raise BadInput(path, f"{where}: a stroke needs a positive number \"radius\" (its brush radius in pixels)")
    if not isinstance(points, list) or not points:
        raise BadInput(path, f"{where}: \"points\" must be a non-empty list of [x, y] pairs")
    for p in points:
        if not (isinstance(p, list) and len(p) == 2):
            raise BadInput(path, f"{where}: stroke point {str(p)[:40]} is not an [x, y] pair of numbers")
    return Stroke(tuple((coordinate(path, where, "a stroke point's x", x),
                         coordinate(path, where, "a stroke point's y", y)) for x, y in points), brush, LABELS[label])


def _parse_click(path: Path, key: str, i: int, entry: object) -> Click | Stroke:
    where = f"entry {i} of {key!r}"
    if not isinstance(entry, dict):
        raise BadInput(path, f"{where} is not an object with x, y and label (or a stroke with points)")
    if "points" in entry:
        return _parse_stroke(path, where, entry)
    try:
        x, y, label = entry["x"], entry["y"], entry["label"]
    except KeyError as exc:
        raise BadInput(path, f"{where} lacks {exc.args[0]!r}") from None
    x, y = coordinate(path, where, "x", x), coordinate(path, where, "y", y)
    if label not in LABELS:
        raise BadInput(path, f"{where}: label must be \"fg\" or \"bg\", not {label!r}")
    return Click(float(x), float(y), LABELS[label])


def read_clicks(path: str | os.PathLike) -> dict[str, list[Click | Stroke]]:
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


def entry_to_json(entry: Click | Stroke) -> dict[str, object]:
    """One click or stroke as its JSON object (floats round-trip exactly)."""
    if isinstance(entry, Stroke):
        return {"label": entry.label, "radius": entry.radius, "points": [[x, y] for x, y in entry.points]}
    return {"x": entry.x, "y": entry.y, "label": entry.label}


def clicks_to_json(clicks: dict[str, list[Click | Stroke]]) -> dict[str, list[dict[str, object]]]:
    """The JSON object :func:`read_clicks` reads back to the same clicks and strokes."""
    return {key: [entry_to_json(c) for c in entries] for key, entries in clicks.items()}


def write_clicks(path: str | os.PathLike, clicks: dict[str, list[Click | Stroke]]) -> None:
    """Write a clicks file atomically, in the format ``matte --clicks`` reads."""
    from mattecli.io.atomic import write_json

    write_json(path, clicks_to_json(clicks))


def clicks_for(clicks: dict[str, list[Click]], rel: PurePosixPath) -> tuple[str, list[Click]] | None:
    """The (key, clicks) naming the image at ``rel``: with its extension first, then without."""
    for key in (rel.as_posix(), rel.with_suffix("").as_posix()):
        if key in clicks:
            return key, clicks[key]
    return None
