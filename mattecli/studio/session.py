"""The studio's state and work: the images, each image's clicks with undo/redo, previews, saving.

Everything here goes through the same core as ``mattecli matte --clicks``: the images and
their output names come from :func:`mattecli.inference.batch.plan_items`, the matte from the
method's ``run`` (:mod:`mattecli.inference.methods`, classical or a checkpoint), the files from
:class:`mattecli.inference.batch.OutputWriter` via ``write_result``, and the clicks file from
:func:`mattecli.inference.clicks.write_clicks`. So saving an image writes exactly what
``mattecli matte INPUT --clicks OUT/clicks.json --out OUT`` writes for it.

Large images: previews are computed at a *working resolution* (the longer side scaled down
to ``work_size``, clicks and click radius scaled with it; the browser upsamples the result
for display). Saving always recomputes at full resolution.
"""
from __future__ import annotations

import shlex
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from mattecli.errors import BadInput, CannotWrite, MatteError
from mattecli.inference.batch import (GuidanceSource, Item, Job, MatteOptions, OutputWriter, check_outputs,
                                      plan_items, unit_to_uint8, write_result)
from mattecli.data.clicks import Stroke, check_inside, scale_guidance
from mattecli.inference.clicks import Click, clicks_for, read_clicks, write_clicks
from mattecli.inference.methods import DEFAULT_CLICK_METHOD
from mattecli.io.atomic import all_or_nothing, is_inside
from mattecli.io.images import encode_image, read_rgb
from mattecli.io.locks import ExclusiveLock
from mattecli.report.heatmap import uncertainty_overlay

#: clicks one image may hold, and undo steps kept per image (each step is a copy of the clicks)
MAX_CLICKS = 1000
MAX_UNDO = 200
WORK_SIZE = 384  # longer side of the preview computation (about a second a click on 2 busy cores; BENCHMARKS.md)
#: longer side of the weights-free method's GrabCut in previews (saves use the method's own, 400).
#: Each click is one 2-iteration GrabCut step on the cached segmentation of the clicks before
#: (mattecli.inference.click_trimap), and an undo none; 192 px measured no cheaper (BENCHMARKS.md)
PREVIEW_SEGMENT_SIDE = 256
VIEW_SIZE = 2048  # longer side of the picture the page shows and takes clicks on
CLICKS_FILE = "clicks.json"
CLICKS_LOCK = ".mattecli-clicks.lock"  # studios sharing one --out take turns to merge clicks.json


@dataclass
class Preview:
    """The matte of one image's current clicks at the working resolution."""

    alpha: np.ndarray | None  # uint8 hxw, None when the method refused the clicks (see note)
    cutout: np.ndarray | None  # uint8 hxwx4: estimated foreground colour and alpha
    uncertainty: np.ndarray | None  # uint8 hxwx3: the network's sigma as a heat map over the image
    patches: list[list[float]]  # refined patches [x0, y0, x1, y1] (end-exclusive) in working-resolution pixels
    compute_ms: float
    note: str | None = None


@dataclass
class ImageState:
    item: Item
    clicks: list[Click | Stroke] = field(default_factory=list)  # clicks and strokes, in the order made
    undo: list[list[Click | Stroke]] = field(default_factory=list)  # a stroke is one step, like a click
    redo: list[list[Click | Stroke]] = field(default_factory=list)
    revision: int = 0  # counts changes, so the page can drop answers older than what it shows
    preview: tuple[tuple, Preview] | None = None  # (key the preview was computed for, preview)


def _patch_boxes(value) -> list[list[float]]:
    """A network's refined patches (boxes ``(y0, x0, y1, x1)``, end-exclusive, in input pixels,
    as the click family returns them) as ``[x0, y0, x1, y1]`` lists for the page."""
    arr = np.asarray(value if value is not None else [], dtype=np.float64).reshape(-1, 4)
    return [[float(x0), float(y0), float(x1), float(y1)] for y0, x0, y1, x1 in arr]


class StudioSession:
    """One studio: an input (image or folder), an output folder, a method; thread-safe."""

    def __init__(self, options: MatteOptions, method, work_size: int = WORK_SIZE, weights: Path | None = None) -> None:
        if options.clicks is not None or options.trimap is not None or options.background is not None:
            raise MatteError("the studio makes its own clicks; give no --clicks, --trimap or --background")
        if work_size < 16:
            raise MatteError(f"--work-size {work_size}: give at least 16 pixels")
        method.check_guidance("clicks")
        check_outputs(options.outputs, method)
        self.options = options
        self.method = method
        self.work_size = work_size
        self.weights = weights
        self.writer = OutputWriter(options)
        items = plan_items(options, GuidanceSource(options))
        # symbolic links that lead out of the input folder are not served (as /files/in refuses them)
        root = options.input if options.input.is_dir() else None
        self.items = [item for item in items if root is None or is_inside(item.path, root)]
        self.outside_links = [item.rel.as_posix() for item in items if item not in self.items]
        if not self.items:
            raise MatteError(f"{options.input}: every image is a symbolic link out of the folder; nothing to serve")
        self.states = [ImageState(item) for item in self.items]
        self.clicks_path = options.out / CLICKS_FILE
        self.lock = threading.RLock()
        self._waiting: dict[int, int] = {}  # per image: changes that arrived and wait for the lock
        self._waiting_lock = threading.Lock()
        self._images: OrderedDict[int, np.ndarray] = OrderedDict()
        self._views: OrderedDict[int, bytes] = OrderedDict()
        self.budget: int | None = None
        if self.supports_budget:  # --refine-patches, else the checkpoint's own budget
            given = method.refine_patches
            self.budget = int(method.model.refine_patches if given is None else given)
        self._restore_clicks()

    # -- setup ----------------------------------------------------------------------------------
    @property
    def supports_budget(self) -> bool:
        """A click network with uncertainty-guided local refinement (``LearnedMethod.refine_patches``)."""
        return hasattr(self.method, "refine_patches") and hasattr(getattr(self.method, "model", None), "refine_patches")

    def _restore_clicks(self) -> None:
        """Reopening a folder restores the clicks saved in OUT/clicks.json."""
        if not self.clicks_path.is_file():
            return
        saved = read_clicks(self.clicks_path)
        for state in self.states:
            found = clicks_for(saved, state.item.rel)
            if found is not None:
                if len(found[1]) > MAX_CLICKS:
                    raise BadInput(self.clicks_path, f"{found[0]!r} holds {len(found[1])} clicks, more than the "
                                                     f"studio's {MAX_CLICKS} per image")
                state.clicks = list(found[1])

    def set_budget(self, value: int) -> None:
        if not self.supports_budget:
            raise MatteError(f"{self.method.name} has no refinement budget")
        if value < 0:
            raise MatteError(f"refinement budget {value}: give 0 or more patches")
        with self.lock:
            self.budget = value

    # -- images ---------------------------------------------------------------------------------
    def state(self, index: int) -> ImageState:
        if not 0 <= index < len(self.states):
            raise MatteError(f"no image number {index} (there are {len(self.states)})")
        return self.states[index]

    def image(self, index: int) -> np.ndarray:
        """The full-resolution RGB image (the last few are kept)."""
        with self.lock:
            if index not in self._images:
                self._images[index] = read_rgb(self.state(index).item.path)
                while len(self._images) > 2:
                    self._images.popitem(last=False)
            self._images.move_to_end(index)
            return self._images[index]

    def view_jpeg(self, index: int) -> bytes:
        """The picture the page shows (longer side at most VIEW_SIZE), as JPEG."""
        with self.lock:
            if index not in self._views:
                image = self.image(index)
                h, w = image.shape[:2]
                s = min(1.0, VIEW_SIZE / max(h, w))
                if s < 1.0:
                    image = cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
                self._views[index] = encode_image(image, ".jpg", jpeg_quality=90)
                while len(self._views) > 4:
                    self._views.popitem(last=False)
            return self._views[index]

    def work_image(self, index: int) -> np.ndarray:
        image = self.image(index)
        h, w = image.shape[:2]
        s = self.work_size / max(h, w)
        if s >= 1.0:
            return image
        return cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)

    # -- clicks ---------------------------------------------------------------------------------
    @contextmanager
    def arriving(self, index: int):
        """Mark a change to image ``index`` as waiting until it is applied (see :meth:`superseded`)."""
        with self._waiting_lock:
            self._waiting[index] = self._waiting.get(index, 0) + 1
        try:
            yield
        finally:
            with self._waiting_lock:
                self._waiting[index] -= 1

    def superseded(self, index: int) -> bool:
        """Whether another change to the image is already waiting: its preview would be shown
        for a moment only, so fast clicks skip computing it (the last click's preview is always made)."""
        with self._waiting_lock:
            return self._waiting.get(index, 0) > 0

    def add_click(self, index: int, x: float, y: float, positive: bool) -> None:
        with self.lock:
            state = self.state(index)
            h, w = self.image(index).shape[:2]
            if not (0 <= x <= w - 1 and 0 <= y <= h - 1):
                raise MatteError(f"click at ({x:g}, {y:g}) lies outside the {w}x{h} image")
            if len(state.clicks) >= MAX_CLICKS:
                raise MatteError(f"{state.item.rel}: {MAX_CLICKS} clicks is the most an image takes; undo or clear some")
            self._change(state, state.clicks + [Click(float(x), float(y), bool(positive))])

    def add_stroke(self, index: int, points: list[tuple[float, float]], radius: float, positive: bool) -> None:
        """A brush stroke (full-resolution points and radius): one undo step."""
        with self.lock:
            state = self.state(index)
            h, w = self.image(index).shape[:2]
            stroke = Stroke(tuple((float(x), float(y)) for x, y in points), float(radius), bool(positive))
            check_inside([stroke], h, w, state.item.rel)
            if not points or radius <= 0:
                raise MatteError("a stroke needs at least one point and a positive brush radius")
            self._change(state, state.clicks + [stroke])

    def clear(self, index: int) -> None:
        with self.lock:
            state = self.state(index)
            if state.clicks:
                self._change(state, [])

    def _change(self, state: ImageState, clicks: list[Click]) -> None:
        state.undo.append(state.clicks)
        del state.undo[:-MAX_UNDO]  # the oldest steps go: memory stays bounded however long the session
        state.redo.clear()
        state.clicks = clicks
        state.revision += 1

    def undo(self, index: int) -> None:
        with self.lock:
            state = self.state(index)
            if not state.undo:
                raise MatteError("nothing to undo")
            state.redo.append(state.clicks)
            state.clicks = state.undo.pop()
            state.revision += 1

    def redo(self, index: int) -> None:
        with self.lock:
            state = self.state(index)
            if not state.redo:
                raise MatteError("nothing to redo")
            state.undo.append(state.clicks)
            state.clicks = state.redo.pop()
            state.revision += 1

    # -- matting --------------------------------------------------------------------------------
    def _configure(self, radius: float | None, want_foreground: bool, preview: bool = False) -> dict:
        """Set the method up for one run; returns what to restore."""
        m = self.method
        before = {"click_radius": m.click_radius, "want_foreground": m.want_foreground}
        m.click_radius, m.want_foreground = radius, want_foreground
        if hasattr(m, "segment_side"):
            before["segment_side"] = m.segment_side
            m.segment_side = PREVIEW_SEGMENT_SIDE if preview else m.segment_side
        if self.supports_budget:
            before["refine_patches"] = m.refine_patches
            m.refine_patches = self.budget
        return before

    def _run(self, job: Job, radius: float | None, want_foreground: bool, preview: bool = False):
        before = self._configure(radius, want_foreground, preview)
        try:
            [(_, result)] = list(self.method.run([job]))
        finally:
            for name, value in before.items():
                setattr(self.method, name, value)
        return result

    def preview(self, index: int) -> Preview | None:
        """The matte of the current clicks at the working resolution (None without clicks)."""
        with self.lock:
            state = self.state(index)
            if not state.clicks:
                return None
            key = (tuple(state.clicks), self.budget)
            if state.preview is not None and state.preview[0] == key:
                return state.preview[1]
            start = time.perf_counter()
            full_h, full_w = self.image(index).shape[:2]
            small = self.work_image(index)
            h, w = small.shape[:2]
            sx, sy = w / full_w, h / full_h
            clicks = scale_guidance(state.clicks, sx, sy, w, h)
            job = Job(state.item, small, clicks, "clicks")
            # an explicit radius scales with the image; a network's own rule (None) is applied to the small image
            radius = self.method.click_radius
            result = self._run(job, None if radius is None else radius * min(sx, sy), True, preview=True)
            if isinstance(result, Exception):
                preview = Preview(None, None, None, [], (time.perf_counter() - start) * 1000, str(result))
            else:
                alpha, fg, *rest = result
                extras = rest[0] if rest else {}
                if fg is None:
                    fg = self.method.foreground(small, alpha)
                sigma = extras.get("uncertainty")
                preview = Preview(unit_to_uint8(alpha), np.dstack([unit_to_uint8(fg), unit_to_uint8(alpha)]),
                                  None if sigma is None else uncertainty_overlay(small, sigma),
                                  _patch_boxes(extras.get("patches")), (time.perf_counter() - start) * 1000)
            state.preview = (key, preview)
            return preview

    def save(self, index: int) -> list[Path]:
        """Matte at full resolution, write the outputs ``matte`` writes and the clicks; returns the files."""
        with self.lock:
            state = self.state(index)
            if not state.clicks:
                raise MatteError(f"{state.item.rel}: no clicks to save")
            job = Job(state.item, self.image(index), list(state.clicks), "clicks")
            result = self._run(job, self.method.click_radius, self.writer.needs_foreground)
            if isinstance(result, Exception):
                raise result if isinstance(result, MatteError) else MatteError(str(result))
            kinds = list(self.writer.kinds)
            busy = f"{self.options.out}: another studio is saving into it for more than 30 s; try again"
            try:
                with ExclusiveLock(self.options.out / CLICKS_LOCK, busy, wait=30.0), all_or_nothing():
                    # merge under the lock: entries other studios saved meanwhile are kept
                    saved = read_clicks(self.clicks_path) if self.clicks_path.is_file() else {}
                    found = clicks_for(saved, state.item.rel)
                    if found is not None:
                        del saved[found[0]]
                    saved[state.item.rel.as_posix()] = list(state.clicks)
                    write_result(self.method, self.writer, job, result, kinds)
                    write_clicks(self.clicks_path, saved)
            except OSError as exc:
                raise CannotWrite(exc.filename or self.options.out, exc) from None
            return [state.item.output(self.options.out, k) for k in kinds] + [self.clicks_path]

    def batch_command(self) -> str:
        """The ``mattecli matte`` command (shell-quoted) that reproduces the saved mattes: only the
        images saved with clicks (``--clicked-only`` when some have none), so it exits 0."""
        o = self.options
        parts = ["mattecli", "matte", str(o.input), "--clicks", str(self.clicks_path), "--out", str(o.out),
                 "--output", ",".join(o.outputs)]
        saved = read_clicks(self.clicks_path) if self.clicks_path.is_file() else {}
        if any(clicks_for(saved, st.item.rel) is None for st in self.states):
            parts.append("--clicked-only")
        if self.method.click_radius is not None:  # None: the network's own radius rule, matte's default too
            parts += ["--click-radius", f"{self.method.click_radius:g}"]
        if getattr(self.method, "click_method", DEFAULT_CLICK_METHOD) != DEFAULT_CLICK_METHOD:
            parts += ["--click-method", self.method.click_method]
        if "comp" in o.outputs:
            parts += ["--bg-color", "{},{},{}".format(*o.bg_color)]
            if o.bg_image is not None:
                parts += ["--bg-image", str(o.bg_image)]
        if o.alpha_bits == 16:
            parts.append("--alpha-16bit")
        if self.weights is not None:
            parts += ["--weights", str(self.weights), "--batch-size", "1"]
            if self.supports_budget:
                parts += ["--refine-patches", str(self.budget)]
        return shlex.join(parts + ["--overwrite"])  # pastes into a shell as is, spaces and quotes included


__all__ = ["StudioSession", "Preview", "WORK_SIZE", "CLICKS_FILE"]
