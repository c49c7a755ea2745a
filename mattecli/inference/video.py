"""The video pipeline: decode, matte and encode overlapped, with model and end-to-end time apart.

Three stages run at once, joined by bounded queues (so memory stays flat whatever the
length): a reader thread decodes the input (and the plate or background videos, if any),
the calling thread runs the matting method, and a writer thread composes every requested
output and pipes it into its own ffmpeg encoder process. The matting loop's time less its
waits for frames and for the encoder is the "model time" (fair to a method that batches); the end-to-end time runs from the first decode to the
last file moved into place. Peers quote the first and users experience the second, so both
are reported.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Iterator, Protocol, Sequence

import cv2
import numpy as np

from mattecli.errors import BadInput, MatteError
from mattecli.inference.temporal import TemporalFilter, TemporalSettings
from mattecli.io import atomic
from mattecli.io.locks import ExclusiveLock
from mattecli.io.video import FORMATS, PngSequenceWriter, VideoInfo, VideoWriter, probe_video, read_frames

OUTPUT_KINDS = ("comp", "alpha", "rgba", "fg")
RGBA_FORMATS = ("mov", "webm", "png")
ALPHA_FORMATS = ("mov", "mkv", "mp4")
DEFAULT_BG_COLOUR = (120, 255, 155)  # the green of BGMv2 and RVM composites
_QUEUE_DEPTH = 6
_STOP = object()


class FrameMethod(Protocol):
    """Matting for one frame: (frame uint8 HxWx3, plate uint8 HxWx3) -> (alpha float32 HxW, fg uint8 HxWx3).

    A method that batches frames instead has ``stream(items)`` (see :class:`LearnedFrames`)."""

    def __call__(self, frame: np.ndarray, plate: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


# --- frame sources (plates and backgrounds) ---------------------------------------------

def fit_cover(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale to cover width x height keeping the aspect, then crop the centre."""
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    scale = max(width / w, height / h)
    nw, nh = max(width, round(w * scale)), max(height, round(h * scale))
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    x, y = (nw - width) // 2, (nh - height) // 2
    return np.ascontiguousarray(resized[y:y + height, x:x + width])


class StillSource:
    """The same image for every frame (``path``: the file it came from, for error messages)."""

    def __init__(self, image: np.ndarray, path: Path | None = None) -> None:
        self.image = image
        self.path = path

    def frames(self) -> Iterator[np.ndarray]:
        while True:
            yield self.image


class VideoSource:
    """Frames of another video, resized to the input's size; at its end it holds the last frame
    (``loop=False``, for a plate video) or starts again (``loop=True``, for a background video)."""

    def __init__(self, path: Path, size: tuple[int, int], loop: bool, cover: bool = True) -> None:
        self.path = path
        self.info = probe_video(path)
        self.size = size
        self.loop = loop
        self.cover = cover

    def _fit(self, frame: np.ndarray) -> np.ndarray:
        w, h = self.size
        if self.cover:
            return fit_cover(frame, w, h)
        return frame if frame.shape[:2] == (h, w) else cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)

    def frames(self) -> Iterator[np.ndarray]:
        last = None
        while True:
            for frame in read_frames(self.path, info=self.info):
                last = self._fit(frame)
                yield last
            if last is None:
                raise BadInput(self.path, "video has no frames")
            if not self.loop:
                while True:
                    yield last


# --- the job ------------------------------------------------------------------------------

@dataclass
class VideoJob:
    """What ``mattecli video`` asks for, resolved to files and sources."""

    input: Path
    out_dir: Path
    plate: StillSource | VideoSource
    outputs: tuple[str, ...] = ("comp", "alpha")
    background: StillSource | VideoSource | None = None  # None: the colour below
    bg_colour: tuple[int, int, int] = DEFAULT_BG_COLOUR
    rgba_format: str = "mov"
    alpha_format: str = "mov"
    overwrite: bool = False

    def output_path(self, kind: str) -> Path:
        stem = self.input.stem
        if kind == "rgba":
            suffix = "" if self.rgba_format == "png" else FORMATS[self.rgba_format].suffix
        elif kind == "alpha":
            suffix = FORMATS[self.format_for("alpha")].suffix
        else:
            suffix = FORMATS["mp4"].suffix
        return self.out_dir / f"{stem}_{kind}{suffix}"

    def format_for(self, kind: str) -> str:
        if kind == "rgba":
            return self.rgba_format
        if kind == "alpha":
            return {"mov": "mov-alpha", "mkv": "mkv", "mp4": "mp4-alpha"}[self.alpha_format]
        return "mp4"


@dataclass
class OutputReport:
    kind: str
    path: Path
    audio: str  # "copied", "re-encoded to X", "none in source", "not possible (PNG sequence)", "skipped"


@dataclass
class VideoReport:
    """Timings and what was written; fps figures count frames over seconds."""

    input: Path
    info: VideoInfo
    frames: int = 0
    model_seconds: float = 0.0
    total_seconds: float = 0.0
    alignment_failures: int = 0
    outputs: list[OutputReport] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)

    @property
    def model_fps(self) -> float:
        return self.frames / self.model_seconds if self.model_seconds > 0 else 0.0

    @property
    def end_to_end_fps(self) -> float:
        return self.frames / self.total_seconds if self.total_seconds > 0 else 0.0


def _audio_note(writer: VideoWriter | PngSequenceWriter, source_audio: str | None) -> str:
    if isinstance(writer, PngSequenceWriter):
        return "not possible (PNG sequence)" if source_audio else "none in source"
    if source_audio is None:
        return "none in source"
    return "copied" if writer.audio == "copy" else f"re-encoded to {writer.audio}"


def _open_writer(job: VideoJob, kind: str, info: VideoInfo) -> VideoWriter | PngSequenceWriter:
    path = job.output_path(kind)
    atomic.remove_stale_temps(path.parent, output=path)  # what a killed run of this output left
    if kind == "rgba" and job.rgba_format == "png":
        return PngSequenceWriter(path)
    return VideoWriter(path, FORMATS[job.format_for(kind)], (info.width, info.height), info.fps,
                       audio_from=job.input if info.audio_codec else None, audio_codec=info.audio_codec)


def compose_outputs(kinds: tuple[str, ...], alpha: np.ndarray, fg: np.ndarray,
                    background: np.ndarray | None) -> dict[str, np.ndarray]:
    """The frames each output kind gets: alpha uint8, fg RGB, rgba straight (not premultiplied),
    comp = alpha*F + (1-alpha)*background using the estimated foreground, rounded."""
    a8 = np.clip(alpha * np.float32(255.0) + np.float32(0.5), 0, 255).astype(np.uint8)
    out: dict[str, np.ndarray] = {}
    if "alpha" in kinds:
        out["alpha"] = a8
    if "fg" in kinds:
        out["fg"] = fg
    if "rgba" in kinds:
        out["rgba"] = np.dstack([fg, a8])
    if "comp" in kinds:
        bg = background.astype(np.float32)
        comp = bg + alpha[:, :, None] * (fg.astype(np.float32) - bg)
        out["comp"] = np.clip(comp + 0.5, 0, 255).astype(np.uint8)
    return out


def _stream(method: FrameMethod | Callable, items: Iterator[tuple]) -> Iterator[tuple[tuple, object]]:
    """(item, result) per decoded (frame, plate, background): a method with ``stream`` (one that
    batches frames) gets the whole iterator, a per-frame callable is called on each."""
    if hasattr(method, "stream"):
        return method.stream(items)
    return ((item, method(item[0], item[1])) for item in items)


class LearnedFrames:
    """A trained background-guided network run on video frames through ``matte --weights``'s
    ``LearnedMethod``: the same loading, batching (``batch_size`` frames at once), precision and
    foreground estimation (when the network gives none) as for images; the plate is aligned
    and exposure-matched per frame first, as for the plate method."""

    def __init__(self, method, align: bool = False, exposure: bool = False, segmentation: Path | None = None,
                 motion_offsets: Sequence[int] = (-40, -20, 20, 40), segmenter: Path | None = None,
                 temporal: TemporalSettings = TemporalSettings()) -> None:
        from mattecli.inference.plate import PlateAligner

        if method.model.guidance != "background":
            raise MatteError(f"{method.name} needs {method.model.guidance} guidance; `mattecli video` "
                             "gives a background plate (use `mattecli matte` on frames instead)")
        method.check_guidance("background")
        method.want_foreground = True
        self.method = method
        self.align = align
        self.exposure = exposure
        self.aligner = PlateAligner() if align else None
        self.temporal = TemporalFilter(temporal)  # the network sees one frame: steady it as the plate method
        cues = getattr(method.model, "cues", ())
        from mattecli.inference.segmenter import segmenter_for

        self.segmenter = segmenter_for(method, segmentation, segmenter)
        self.masks: list[Path] | None = None
        if segmentation is not None:
            from mattecli.io.images import list_images

            if not Path(segmentation).is_dir():
                raise BadInput(segmentation, "--segmentation for a video must be a folder of masks, one per frame")
            self.masks = list_images(segmentation)
            if not self.masks:
                raise BadInput(segmentation, "holds no mask images")
        self.motion_offsets = tuple(int(o) for o in motion_offsets)
        frames = getattr(method.model, "motion_frames", 0)
        self.motion = "motion" in cues
        if self.motion and len(self.motion_offsets) != frames:
            raise MatteError(f"--motion-offsets: the network takes {frames} motion frames, "
                             f"not {len(self.motion_offsets)}")

    def reset(self) -> None:
        self.temporal.reset()

    def describe(self) -> str:
        extra = ""
        if self.motion:
            extra = f", motion cue at frame offsets {', '.join(f'{o:+d}' for o in self.motion_offsets)}"
        seg = ", segmentation masks" if self.masks else ""
        if self.segmenter is not None:
            seg = f", segmentation by the '{self.segmenter.family}' network"
        return self.method.describe() + extra + seg

    def _cues(self, index: int, frame: np.ndarray, window: list[np.ndarray] | None) -> dict | None:
        cues: dict = {}
        if window is not None:
            cues["motion"] = np.stack(window, axis=2)
        if self.masks is not None or self.segmenter is not None:
            from mattecli.inference.segmenter import segmentation_cue

            if self.masks is not None and index >= len(self.masks):
                raise BadInput(self.masks[0].parent, f"has {len(self.masks)} masks; the video has more frames")
            path = None if self.masks is None else self.masks[index]
            cues["segmentation"] = segmentation_cue(frame, self.segmenter, path, "the video")
        return cues or None

    def stream(self, items: Iterator[tuple]) -> Iterator[tuple[tuple, object]]:
        import warnings
        from pathlib import PurePosixPath

        from mattecli.inference.batch import Item, Job
        from mattecli.inference.plate import PlateResult, prepare_plate

        source: dict[int, tuple[tuple, object]] = {}  # id(job) -> (item, alignment), at most a batch

        if self.motion:
            from mattecli.families.bgm.cues import grey_uint8

            windowed = motion_windows(items, self.motion_offsets, lambda it: grey_uint8(it[0]))
        else:
            windowed = ((item, None) for item in items)

        def jobs() -> Iterator[Job]:
            for index, (item, window) in enumerate(windowed):
                frame, plate, _ = item
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # failed alignments are counted from the result
                    used, alignment = prepare_plate(frame, plate, self.align, self.exposure, aligner=self.aligner)
                name = PurePosixPath(f"frame {index}")
                job = Job(Item(Path(f"frame {index}"), name, name), frame, used, "background",
                          self._cues(index, frame, window))
                source[id(job)] = (item, alignment)
                yield job

        for job, result in self.method.run(jobs()):
            item, alignment = source.pop(id(job))
            if isinstance(result, Exception):
                raise MatteError(f"{job.item.rel}: {result}")
            alpha, fg = result
            if fg is None:
                fg = self.method.foreground(job.image, alpha)
            fg8 = np.clip(fg * np.float32(255.0) + np.float32(0.5), 0, 255).astype(np.uint8)
            alpha = alpha.astype(np.float32)
            if self.temporal.enabled:
                alpha, fg8 = self.temporal(job.image, alpha, fg8, self.temporal.frame_motion(alignment))
            yield item, PlateResult(alpha, fg8, job.guidance, alignment)


def motion_windows(items: Iterable[tuple], offsets: Sequence[int],
                   grey: Callable[[tuple], np.ndarray]) -> Iterator[tuple[tuple, list[np.ndarray]]]:
    """(item, [grey frame at i + offset for each offset]) for a stream, through a bounded buffer.

    Background Matting's motion cue needs frames up to ``max(offsets)`` ahead and
    ``-min(offsets)`` behind; this holds exactly those (the greys behind, the items ahead),
    never the whole clip. At the clip's ends the neighbour index is mirrored
    (:func:`mattecli.families.bgm.cues.window_index`): the official script wraps around the
    clip instead, which needs its end before its start.
    """
    from collections import deque

    from mattecli.families.bgm.cues import window_index

    ahead = max(0, max(offsets))
    behind = max(0, -min(offsets))  # greys are kept max(ahead, behind) back: mirroring at the end reads back
    greys: dict[int, np.ndarray] = {}
    pending: deque[tuple[int, tuple]] = deque()
    source = iter(items)
    count: int | None = None  # known once the stream ends
    read = 0
    current = 0
    while True:
        while count is None and read <= max(current + ahead, behind):
            try:
                item = next(source)
            except StopIteration:
                count = read
                break
            greys[read] = grey(item)
            pending.append((read, item))
            read += 1
        if not pending:
            return
        index, item = pending.popleft()
        total = count if count is not None else index + ahead + behind + 2  # no mirroring before the end
        window = [greys[window_index(index, o, total)] for o in offsets]
        yield item, window
        current = index + 1
        for old in [k for k in greys if k < current - max(behind, ahead)]:
            del greys[old]


def check_plate(job: VideoJob, info: VideoInfo, align: bool) -> None:
    """A still plate must have the video's size unless it is registered onto every frame."""
    if isinstance(job.plate, StillSource) and job.plate.image.shape[:2] != (info.height, info.width) and not align:
        h, w = job.plate.image.shape[:2]
        problem = (f"the plate is {w}x{h} but {job.input} is {info.width}x{info.height}; "
                   "pass --align to register a differently framed plate")
        raise BadInput(job.plate.path, problem) if job.plate.path else MatteError(problem)


def run_video(job: VideoJob, method: FrameMethod | Callable, progress: Callable[[int], None] | None = None,
              on_frame_result: Callable[[np.ndarray, object], None] | None = None,
              info: VideoInfo | None = None) -> VideoReport:
    """Matte ``job.input`` into the requested outputs. ``progress(n)`` is called as frames are written;
    ``on_frame_result(frame, result)`` sees every method result (e.g. to keep frames for a contact sheet);
    ``info``: the input's probe, when the caller has it already.

    Outputs that already exist are skipped unless ``job.overwrite``; nothing half-written is
    ever left under a final name (see mattecli.io.video).
    """
    start = time.perf_counter()
    info = info or probe_video(job.input)
    report = VideoReport(job.input, info)
    kinds = []
    for kind in job.outputs:
        if job.output_path(kind).exists() and not job.overwrite:
            report.skipped.append(job.output_path(kind))
        else:
            kinds.append(kind)
    if not kinds:
        return report
    # One run at a time per input name and folder: a second run would delete the first's
    # temporaries (they carry the output's name) and race it to the final names.
    atomic.ensure_folder(job.out_dir)
    lock_path = job.out_dir / f".mattecli-video-{job.input.stem}.lock"
    with ExclusiveLock(lock_path, f"{job.out_dir}: another mattecli video run is writing {job.input.stem}_* "
                                  f"outputs there; wait for it to finish or choose another --out"):
        return _run_locked(job, method, tuple(kinds), report, start, info, progress, on_frame_result)


def _run_locked(job: VideoJob, method: FrameMethod | Callable, kinds_t: tuple[str, ...], report: VideoReport,
                start: float, info: VideoInfo, progress: Callable[[int], None] | None,
                on_frame_result: Callable[[np.ndarray, object], None] | None) -> VideoReport:
    check_plate(job, info, getattr(method, "align", False))
    if hasattr(method, "reset"):
        method.reset()  # a method with temporal state starts the clip afresh
    colour = np.empty((info.height, info.width, 3), np.uint8)
    colour[:] = job.bg_colour
    background = job.background or StillSource(colour)

    q_in: queue.Queue = queue.Queue(_QUEUE_DEPTH)
    q_out: queue.Queue = queue.Queue(_QUEUE_DEPTH)
    errors: list[BaseException] = []
    stop = threading.Event()

    def put(q: queue.Queue, item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def reader() -> None:
        try:
            plates = job.plate.frames()
            bgs = background.frames() if "comp" in kinds_t else None
            for frame in read_frames(job.input, info=info):
                item = (frame, next(plates), next(bgs) if bgs is not None else None)
                if not put(q_in, item):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)
        finally:
            put(q_in, _STOP)

    writers: dict[str, VideoWriter | PngSequenceWriter] = {}

    def writer() -> None:
        try:
            while True:
                item = q_out.get()
                if item is _STOP:
                    return
                alpha, fg, bg = item
                for kind, frame in compose_outputs(kinds_t, alpha, fg, bg).items():
                    writers[kind].write(frame)
                if progress:
                    progress(1)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
            stop.set()

    outside = 0.0  # seconds of the matting loop spent waiting for frames or for the encoder

    def decoded() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        nonlocal outside
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                item = q_in.get(timeout=0.1)
            except queue.Empty:
                outside += time.perf_counter() - t0
                if not threads[1].is_alive():
                    return
                continue
            outside += time.perf_counter() - t0
            if item is _STOP:
                return
            yield item

    try:
        for kind in kinds_t:
            writers[kind] = _open_writer(job, kind, info)
        threads = [threading.Thread(target=reader, daemon=True, name="mattecli-decode"),
                   threading.Thread(target=writer, daemon=True, name="mattecli-encode")]
        for t in threads:
            t.start()
        # Model time = the loop's time minus its waits, so a batching method is timed fairly too.
        loop_start = time.perf_counter()
        for (frame, plate, bg), result in _stream(method, decoded()):
            t0 = time.perf_counter()
            alpha, fg = (result.alpha, result.fg) if hasattr(result, "alpha") else result
            if getattr(result, "alignment", None) is not None and not result.alignment.found:
                report.alignment_failures += 1
            if on_frame_result is not None:
                on_frame_result(frame, result)
            report.frames += 1
            delivered = put(q_out, (alpha, fg, bg))
            outside += time.perf_counter() - t0
            if not delivered:
                break
        report.model_seconds = time.perf_counter() - loop_start - outside
        put(q_out, _STOP)
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        if report.frames == 0:
            raise BadInput(job.input, "video has no frames")
        for kind in kinds_t:
            writers[kind].close()
            report.outputs.append(OutputReport(kind, writers[kind].path, _audio_note(writers[kind], info.audio_codec)))
    except BaseException:
        stop.set()
        for w in writers.values():
            w.abort()
        raise
    report.total_seconds = time.perf_counter() - start
    return report


def plate_source(path: Path, size: tuple[int, int]) -> StillSource | VideoSource:
    """A plate from an image (fixed camera) or a video (frame i for frame i, the last one held)."""
    from mattecli.io.images import is_image, read_rgb

    if is_image(path):
        return StillSource(read_rgb(path), path)
    return VideoSource(path, size, loop=False, cover=False)


def background_source(path: Path, size: tuple[int, int]) -> StillSource | VideoSource:
    """A composite background from an image or a (looping) video, scaled to cover the frame."""
    from mattecli.io.images import is_image, read_rgb

    if is_image(path):
        return StillSource(fit_cover(read_rgb(path), *size))
    return VideoSource(path, size, loop=True, cover=True)


def fps_text(fps: Fraction) -> str:
    return f"{fps.numerator}/{fps.denominator} ({float(fps):.3f})" if fps.denominator != 1 else str(fps.numerator)
