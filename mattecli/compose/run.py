"""Orchestration of a compose run: validate, plan, skip what is done, work in a pool, rebuild.

The order matters for the user: every input problem is found (cheaply) before any work,
then the bar runs, then the manifest and dataset card are rebuilt from what is on disk.
"""
from __future__ import annotations

import multiprocessing
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from rich.text import Text

from mattecli import __version__
from mattecli.compose import state
from mattecli.compose.inputs import Foreground, Problems, find_foregrounds, read_name_list
from mattecli.compose.layout import SAMPLES_DIR
from mattecli.compose.options import DEFAULT_PER_FG, SAMPLES_PER_FG, ComposeOptions
from mattecli.compose.plan import Composite, assign_backgrounds, chunk, per_fg_count, plan_digest
from mattecli.compose.worker import Job, Outcome, run_task
from mattecli.data.backgrounds import BackgroundSource, open_source, samples_source
from mattecli.data.composite import CONVENTIONS
from mattecli.errors import MatteError
from mattecli.io import atomic
from mattecli.parallel import single_threaded_worker
from mattecli.shards import shard_range


@dataclass
class ComposeSummary:
    out: Path
    foregrounds: int
    backgrounds_available: int
    per_fg: int
    planned: int  # composites in the full plan
    in_shard: int  # composites this run is responsible for
    already_done: int
    written: int
    failures: list[tuple[str, str]] = field(default_factory=list)
    upscaled: int = 0
    manifest_records: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # composites of this run not on disk after it

    @property
    def complete(self) -> bool:
        return self.manifest_records == self.planned


class InputProblems(MatteError):
    """All validation problems, one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        head = f"{len(problems)} problem{'s' if len(problems) > 1 else ''} in the inputs, nothing was written:"
        super().__init__("\n".join([head] + [f"  {p}" for p in problems]))


def _sources(o: ComposeOptions) -> tuple[Path, Path, BackgroundSource]:
    """Resolve --fg/--alpha/--bg, writing the built-in samples when asked (deterministic, once)."""
    if o.samples and (o.fg or o.alpha or o.bg):
        raise MatteError("--samples brings its own foregrounds and backgrounds: drop --fg/--alpha/--bg")
    needs_samples = o.samples or o.bg == "samples"
    if needs_samples:
        from mattecli.data.samples import write_samples

        root = o.out / SAMPLES_DIR
        marker = root / f".complete-seed-{o.seed}"
        if not marker.exists():
            write_samples(root, seed=o.seed)
            atomic.write_text(marker, "")
    if o.samples:
        return o.out / SAMPLES_DIR / "fg", o.out / SAMPLES_DIR / "alpha", samples_source(o.out / SAMPLES_DIR / "bg")
    missing = [flag for flag, v in (("--fg", o.fg), ("--alpha", o.alpha), ("--bg", o.bg)) if not v]
    if missing:
        raise MatteError(f"missing {', '.join(missing)} (or use --samples for the built-in samples)")
    if o.bg == "samples":
        source = samples_source(o.out / SAMPLES_DIR / "bg")
    else:
        source = open_source(o.bg, o.bg_root, tuple(o.exclude_categories), o.min_bg_size, o.voc_split)
    return Path(o.fg), Path(o.alpha), source


def _fingerprint(o: ComposeOptions, digest: str) -> dict:
    """Everything that changes the bytes of an existing output; reruns must match it."""
    t, p = o.trimap_spec, o.plate_spec
    return {"plan": digest, "seed": o.seed, "crop": o.crop, "convention": o.convention,
            "trimap_spec": {"kernel": list(t.kernel), "iterations": list(t.iterations)},
            "plate_spec": {"shift": p.shift, "blur": p.blur, "shadow": p.shadow},
            "png_level": o.png_level}


def _card(o: ComposeOptions, fingerprint: dict, foregrounds: list[Foreground], source: BackgroundSource,
          plan: list[Composite], per_fg: int, present: int) -> dict:
    return {
        "tool": "mattecli compose",
        "version": __version__,
        "command": o.command,
        "convention": {"name": o.convention, "resize": CONVENTIONS[o.convention].resize,
                       "blend": CONVENTIONS[o.convention].blend,
                       "description": CONVENTIONS[o.convention].description},
        "crop": "top-left (published)" if o.crop == "topleft" else "random position, seeded per composite",
        "seed": o.seed,
        "per_fg": per_fg,
        "trimaps": ({"kernel": list(o.trimap_spec.kernel), "iterations": list(o.trimap_spec.iterations),
                     "values": [0, 128, 255]} if o.trimaps else None),
        "plates": o.plate_spec.describe() if o.plates else None,
        "png_level": o.png_level,
        "counts": {"foregrounds": len(foregrounds), "composites_planned": len(plan),
                   "composites_present": present, "complete": present == len(plan),
                   "backgrounds_used": len({c.bg_name for c in plan})},
        "sources": {
            "foregrounds": {"fg": str(o.fg or o.out / SAMPLES_DIR / "fg"),
                            "alpha": str(o.alpha or o.out / SAMPLES_DIR / "alpha"),
                            "fg_names": str(o.fg_names) if o.fg_names else None,
                            "converted_fg": sum(f.fg_convert for f in foregrounds),
                            "converted_alpha": sum(f.alpha_convert for f in foregrounds)},
            "backgrounds": {"kind": source.kind, "spec": source.spec,
                            "bg_names": str(o.bg_names) if o.bg_names else None, **source.stats},
        },
        "fingerprint": fingerprint,
    }


def _work(job: Job, foregrounds: list[Foreground], tasks: list[list[Composite]], workers: int,
          on_done: Callable[[list[Outcome]], None]) -> None:
    if workers == 1 or len(tasks) <= 1:
        for t in tasks:
            on_done(run_task(job, foregrounds[t[0].fg], t))
        return
    # This process is one of the workers: it starts on the first task at once, while the others
    # start up, and no core is left to a process that only collects results. The others are
    # spawned, not forked: OpenCV's thread pool (and rich's refresh thread) in this process make
    # a forked child deadlock; a spawned worker imports only NumPy/OpenCV (no torch), ~0.3 s.
    import cv2

    pending = deque(tasks)
    helpers = min(workers, len(tasks)) - 1
    ctx = multiprocessing.get_context("spawn")
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # as in the spawned workers: the processes are the parallelism
    try:
        with ctx.Pool(helpers, initializer=single_threaded_worker) as pool:
            running: list = []

            def hand_out() -> None:  # two tasks queued per helper: it never waits for this process
                while pending and len(running) < 2 * helpers:
                    t = pending.popleft()
                    running.append(pool.apply_async(run_task, (job, foregrounds[t[0].fg], t)))

            def collect(wait: bool) -> None:
                for r in [r for r in running if wait or r.ready()]:
                    on_done(r.get())
                    running.remove(r)

            hand_out()
            while pending:
                t = pending.popleft()
                on_done(run_task(job, foregrounds[t[0].fg], t))
                collect(wait=False)
                hand_out()
            collect(wait=True)
    finally:
        cv2.setNumThreads(threads)


def compose_dataset(o: ComposeOptions, say: Callable[[str], None] | None = None) -> ComposeSummary:
    """Build (or finish) a Composition-1k-style dataset under ``o.out``; returns what happened.

    Raises ``MatteError`` for bad input, before anything is written. Composites that fail at
    work time (a broken background file) are reported in ``summary.failures``; the others
    are made and listed in the manifest, and a rerun retries only the failed ones.
    """
    from mattecli.console import console, progress

    say = say or (lambda line: console.print(line, soft_wrap=True, markup=False))
    started = time.perf_counter()
    if o.out.is_dir():
        state.check_output_folders(o.out)  # before anything is written (the samples too)
    fg_dir, alpha_dir, source = _sources(o)
    report = Problems()
    foregrounds = find_foregrounds(fg_dir, alpha_dir, o.fg_names, report)
    bg_lines = None
    if o.bg_names is not None:
        bg_lines = len(read_name_list(o.bg_names, "background"))
    per_fg = per_fg_count(o.per_fg, len(foregrounds), bg_lines,
                          SAMPLES_PER_FG if o.samples else DEFAULT_PER_FG, report)
    plan = assign_backgrounds(foregrounds, source, per_fg, o.seed, o.bg_names, report) if foregrounds else []
    report.finish()
    if report.problems:
        raise InputProblems(report.problems)
    for note in report.notes:
        say(f"note: {note}")

    fingerprint = _fingerprint(o, plan_digest(foregrounds, plan))
    atomic.ensure_folder(o.out)
    lock = state.RunLock(o.out)
    try:
        if lock.try_exclusive():  # alone in this folder: safe to clean up after killed runs
            removed = atomic.remove_stale_temps(o.out)
            if removed:
                say(f"note: removed {removed} partial files left by an interrupted run")
            state.check_compatible(o.out, fingerprint, o.overwrite)
            if o.overwrite:
                state.remove_unplanned(o.out, foregrounds, plan)
            state.write_card(o.out, _card(o, fingerprint, foregrounds, source, plan, per_fg,
                                          present=(state.read_card(o.out) or {}).get("counts", {})
                                          .get("composites_present", 0)))
        else:
            state.check_compatible(o.out, fingerprint, o.overwrite)
        lock.share()

        mine = [plan[i] for i in shard_range(len(plan), o.shard)]
        if o.overwrite:  # the fg/ and alpha/ copies are redone too: the inputs may have changed
            state.remove_foreground_files(o.out, [foregrounds[i] for i in sorted({c.fg for c in mine})])
        todo = mine if o.overwrite else [c for c in mine
                                         if not state.is_done(o.out, foregrounds[c.fg], c, o.trimaps, o.plates)]
        summary = ComposeSummary(o.out, len(foregrounds), len(source.names), per_fg, len(plan), len(mine),
                                 len(mine) - len(todo), 0, notes=list(report.notes))
        workers = o.worker_count()
        convention = CONVENTIONS[o.convention]
        job = Job(o.out, source.root, o.seed, o.crop, convention.resize, convention.blend, o.trimaps,
                  o.trimap_spec, o.plates, o.plate_spec, o.png_level, o.link)
        tasks = chunk(todo, workers)
        interrupted = False
        try:
            with progress("img", disable=not o.show_progress) as bar:
                task_id = bar.add_task("compose", total=len(todo))

                def on_done(outcomes: list[Outcome]) -> None:
                    for r in outcomes:
                        if r.error:
                            summary.failures.append((r.name, r.error))
                            bar.console.print(Text.assemble(("failed ", "red"), f"{r.name}: {r.error}"),
                                              soft_wrap=True)
                        else:
                            summary.written += 1
                            summary.upscaled += r.upscaled
                    bar.advance(task_id, len(outcomes))

                _work(job, foregrounds, tasks, workers, on_done)
        except KeyboardInterrupt:
            interrupted = True
            raise
        finally:
            with state.exclusive(o.out):
                listed = state.rebuild_manifest(o.out, foregrounds, plan, o.trimaps, o.plates)
                summary.manifest_records = len(listed)
                failed = {name for name, _ in summary.failures}
                summary.missing = [c.name for c in mine if c.name not in failed and c.name not in listed]
                state.write_card(o.out, _card(o, fingerprint, foregrounds, source, plan, per_fg,
                                              summary.manifest_records))
            summary.seconds = time.perf_counter() - started
            if not interrupted and lock.try_exclusive():
                atomic.remove_stale_temps(o.out)
    finally:
        lock.release()
    return summary
