"""Which background each composite gets, which composites a shard makes, and how work is chunked.

The plan depends only on the inputs, the seed and ``per_fg``: never on the shard or the worker
count, so every shard computes the same full plan and takes its own slice of it.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

from mattecli.compose.inputs import Foreground, Problems, read_name_list
from mattecli.data.backgrounds import BackgroundSource
from mattecli.seeding import rng_for


MIN_TASK = 4


@dataclass(frozen=True)
class Composite:
    index: int  # position in the full plan
    fg: int  # index into the foreground list
    k: int  # index among this foreground's backgrounds
    name: str  # <fg stem>_<k>, as in the published sets
    bg_name: str  # name within the background source


def per_fg_count(requested: int | None, foregrounds: int, bg_lines: int | None, default: int,
                 report: Problems) -> int:
    """--per-fg, else bg-names lines / foregrounds (100 for Adobe training, 20 for test), else default."""
    if requested is not None:
        return requested
    if bg_lines is not None and foregrounds:
        if bg_lines % foregrounds:
            report.problems.append(f"--bg-names has {bg_lines} lines, not a multiple of the {foregrounds} "
                                   f"foregrounds; give --per-fg")
            return max(1, bg_lines // foregrounds)
        return bg_lines // foregrounds
    return default


def assign_backgrounds(foregrounds: list[Foreground], source: BackgroundSource, per_fg: int, seed: int,
                       bg_names: Path | None, report: Problems) -> list[Composite]:
    """Foreground i takes backgrounds ``per_fg*i .. per_fg*i + per_fg - 1`` of a background sequence.

    With ``bg_names`` the sequence is the list, line by line (Adobe's name lists). Without,
    it is a seeded permutation of the source, cycled when there are fewer backgrounds than
    composites (each foreground still gets ``per_fg`` distinct ones).
    """
    total = len(foregrounds) * per_fg
    if bg_names is not None:
        listed = read_name_list(bg_names, "background")
        if len(listed) < total:
            report.problems.append(f"{bg_names}: {len(listed)} lines, too few for {len(foregrounds)} foregrounds "
                                   f"x {per_fg} backgrounds = {total}")
            return []
        sequence = []
        for lineno, line in enumerate(listed[:total], 1):
            found = source.resolve(line)
            if found is None:
                report.add("listed backgrounds missing",
                           f"{bg_names}:{lineno}: {line} is not in the background source {source.spec}")
            sequence.append(found or "")
    else:
        n = len(source.names)
        if n == 0:
            report.problems.append(f"{source.spec}: no background images")
            return []
        if n < per_fg:
            report.problems.append(f"{source.spec}: {n} background images, too few for {per_fg} distinct "
                                   f"backgrounds per foreground (--per-fg)")
            return []
        if n < total:
            report.notes.append(f"{n} backgrounds for {total} composites: backgrounds are reused "
                                f"(each foreground still gets {per_fg} different ones)")
        order = rng_for(seed, "backgrounds").permutation(n)
        sequence = [source.names[order[i % n]] for i in range(total)]
    return [Composite(fi * per_fg + k, fi, k, f"{fg.stem}_{k}", sequence[fi * per_fg + k])
            for fi, fg in enumerate(foregrounds) for k in range(per_fg)]


def chunk(composites: list[Composite], workers: int) -> list[list[Composite]]:
    """Tasks of consecutive composites of one foreground: a worker decodes the fg/alpha once per task.

    Tasks are cut small enough that every worker gets about four, so the pool stays balanced,
    but never below ``MIN_TASK`` composites, so a foreground is decoded at most every few.
    """
    if not composites:
        return []
    size = max(MIN_TASK, math.ceil(len(composites) / (workers * 4)))
    tasks: list[list[Composite]] = []
    for c in composites:
        if tasks and tasks[-1][0].fg == c.fg and len(tasks[-1]) < size:
            tasks[-1].append(c)
        else:
            tasks.append([c])
    return tasks


def plan_digest(foregrounds: list[Foreground], composites: list[Composite]) -> str:
    """A fingerprint of what the plan pairs with what, to refuse mixing two plans in one folder."""
    h = hashlib.sha256()
    for c in composites:
        fg = foregrounds[c.fg]
        h.update(f"{c.name}\t{fg.fg_out}\t{fg.alpha_out}\t{c.bg_name}\n".encode())
    return h.hexdigest()[:16]
