"""Streaming video reading and writing through imageio-ffmpeg's ffmpeg binary.

Frames travel one at a time through pipes, so a video is never held in memory. Three
things the peers get wrong are handled here (see docs/video.md):

- the frame rate is kept exactly: it is read as a fraction (30000/1001 stays 30000/1001,
  not 29.97) from the header of a one-frame YUV4MPEG probe, and written back as a fraction;
- the source audio is copied (or, where the container cannot hold its codec, re-encoded)
  into every output container that can hold audio; a PNG sequence cannot, and says so;
- alpha-capable outputs: ProRes 4444 ``.mov``, VP9 ``.webm`` (decoded with libvpx so its
  alpha plane is not dropped) and PNG sequences; the matte itself as lossless FFV1 grey
  ``.mkv`` or near-lossless full-range H.264 ``.mp4``.

Every output is written to a temporary beside its final name and moved into place when
complete (files with ``os.replace``; PNG sequences as a folder), so an interrupted run
never leaves a truncated video that looks finished.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Self

import numpy as np

from mattecli.errors import BadInput, CannotWrite
from mattecli.io import atomic
from mattecli.io.images import write_image

# Alpha pixel formats as ffmpeg prints them in a stream line.
_ALPHA_PIXFMT = re.compile(r"\b(yuva\w*|rgba\w*|bgra|argb|abgr|gbrap\w*|ya8|ya16\w*)\b")


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@dataclass(frozen=True)
class VideoInfo:
    """What ffmpeg says about a file's first video stream and its first audio stream."""

    width: int
    height: int
    fps: Fraction  # exact, e.g. Fraction(30000, 1001)
    duration: float  # seconds, 0.0 when unknown
    codec: str  # video codec name, e.g. "h264"
    audio_codec: str | None  # e.g. "aac"; None when the file has no audio
    has_alpha: bool

    @property
    def frames_estimate(self) -> int:
        """Duration x rate, for progress bars; the true count is what decoding yields."""
        return max(0, round(self.duration * self.fps)) if self.duration else 0


def _parse_duration(text: str) -> float:
    m = re.search(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)", text)
    if not m:
        return 0.0
    h, mnt, s = m.groups()
    return int(h) * 3600 + int(mnt) * 60 + float(s)


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Probe with one decoded frame: exact rate from the YUV4MPEG header, the rest from the log.

    No ffprobe is needed (imageio-ffmpeg ships only ffmpeg). The YUV4MPEG muxer writes the
    stream's frame rate as ``F<num>:<den>``, which is the exact rational ffmpeg would use.
    """
    path = Path(path)
    if not path.is_file():
        raise BadInput(path, "no such video file")
    if path.stat().st_size == 0:
        raise BadInput(path, "empty file")
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:v:0", "-frames:v", "1",
           "-f", "yuv4mpegpipe", "-pix_fmt", "gray", "-"]
    proc = subprocess.run(cmd, capture_output=True, timeout=120)
    log = proc.stderr.decode("utf-8", "replace")
    header = proc.stdout.split(b"\n", 1)[0].decode("ascii", "replace")
    video_lines = [ln for ln in log.splitlines() if re.search(r"Stream #0:\d+.*: Video:", ln)]
    if proc.returncode != 0 or not header.startswith("YUV4MPEG2") or not video_lines:
        last = [ln.strip() for ln in log.splitlines() if ln.strip()]
        why = last[-1] if last else "ffmpeg could not decode it"
        if not video_lines:
            why = "no video stream (not a video, or corrupt)"
        raise BadInput(path, f"not a readable video: {why[:200]}")
    fields = {tok[0]: tok[1:] for tok in header.split()[1:] if tok}
    width, height = int(fields["W"]), int(fields["H"])
    num, den = (int(v) for v in fields.get("F", "0:1").split(":"))
    if num <= 0 or den <= 0:
        raise BadInput(path, "video has no usable frame rate")
    vline = video_lines[0]
    codec = vline.split("Video:", 1)[1].strip().split()[0].rstrip(",")
    after_vline = log.split(vline, 1)[1]
    has_alpha = bool(_ALPHA_PIXFMT.search(vline)) or bool(
        re.search(r"alpha_mode\s*:\s*1", after_vline.split("Stream #", 1)[0]))
    audio_lines = [ln for ln in log.splitlines() if re.search(r"Stream #0:\d+.*: Audio:", ln)]
    audio_codec = audio_lines[0].split("Audio:", 1)[1].strip().split()[0].rstrip(",") if audio_lines else None
    return VideoInfo(width, height, Fraction(num, den), _parse_duration(log), codec, audio_codec, has_alpha)


def read_frames(path: str | os.PathLike, alpha: bool = False, info: VideoInfo | None = None) -> Iterator[np.ndarray]:
    """Yield frames one by one as uint8 HxWx3 RGB (HxWx4 RGBA with ``alpha=True``).

    Every decoded frame is passed through unchanged (``-fps_mode passthrough``): no frame
    is dropped or duplicated to fit a rate, so frame i of every output is frame i of the
    input. VP8/VP9 are decoded with libvpx when alpha is wanted, because ffmpeg's native
    decoder ignores the alpha side data.
    """
    import imageio_ffmpeg

    info = info or probe_video(path)
    input_params = ["-nostdin"]
    if alpha and info.codec in ("vp9", "vp8"):
        input_params += ["-c:v", "libvpx-vp9" if info.codec == "vp9" else "libvpx"]
    channels = 4 if alpha else 3
    gen = imageio_ffmpeg.read_frames(
        str(path), pix_fmt="rgba" if alpha else "rgb24", bits_per_pixel=8 * channels,
        input_params=input_params, output_params=["-map", "0:v:0", "-fps_mode", "passthrough"])
    try:
        meta = next(gen)
        w, h = meta["size"]
        for buf in gen:
            yield np.frombuffer(buf, np.uint8).reshape(h, w, channels)
    except (OSError, RuntimeError) as exc:
        raise BadInput(path, f"decoding failed: {str(exc).splitlines()[0][:200]}") from None
    finally:
        gen.close()


def read_mattes(path: str | os.PathLike, info: VideoInfo | None = None) -> Iterator[np.ndarray]:
    """Yield a grey matte video's frames as uint8 HxW (decoded through RGB, which is exact for
    every grey output mattecli writes; ffmpeg's own palette-to-grey path rounds)."""
    for frame in read_frames(path, info=info):
        yield np.ascontiguousarray(frame[:, :, 0])


# --- writing ---------------------------------------------------------------------------

@dataclass(frozen=True)
class VideoFormat:
    """How one kind of output is encoded; ``audio_ok`` lists codecs the container takes as is."""

    suffix: str
    codec: str
    pix_fmt_in: str  # what we send: rgb24, rgba or gray
    pix_fmt_out: str
    params: tuple[str, ...]
    audio_ok: tuple[str, ...]  # copy these audio codecs
    audio_fallback: str | None  # re-encode others to this; None = container takes no audio


_MOV_AUDIO = ("aac", "mp3", "alac", "pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_s24be", "pcm_f32le", "ac3")
_MP4_AUDIO = ("aac", "mp3", "alac", "ac3", "opus", "flac")

FORMATS: dict[str, VideoFormat] = {
    # Visually lossless H.264 for colour outputs (composite, foreground): plays everywhere.
    "mp4": VideoFormat(".mp4", "libx264", "rgb24", "yuv420p",
                       ("-preset", "veryfast", "-crf", "16", "-movflags", "+faststart"), _MP4_AUDIO, "aac"),
    # ProRes 4444 with a 16-bit alpha plane: the editors' interchange format for keyed footage.
    "mov": VideoFormat(".mov", "prores_ks", "rgba", "yuva444p10le",
                       ("-profile:v", "4444", "-alpha_bits", "16", "-vendor", "apl0"), _MOV_AUDIO, "aac"),
    # VP9 with alpha (yuva420p) for the web; crf 10 keeps alpha within a few levels at hard edges.
    "webm": VideoFormat(".webm", "libvpx-vp9", "rgba", "yuva420p",
                        ("-b:v", "0", "-crf", "10", "-deadline", "good", "-cpu-used", "4", "-row-mt", "1"),
                        ("opus", "vorbis"), "libopus"),
    # The matte, lossless and fast: QuickTime Animation (RLE) in grey; editors read it, exact rate.
    "mov-alpha": VideoFormat(".mov", "qtrle", "gray", "gray", (), _MOV_AUDIO, "aac"),
    # The matte, lossless: FFV1 in 8-bit grey; Matroska takes any audio codec as is (but stores
    # millisecond timestamps, so a rate like 60000/1001 reads back only approximately).
    "mkv": VideoFormat(".mkv", "ffv1", "gray", "gray", ("-level", "3", "-g", "1", "-slices", "4"),
                       ("*",), None),
    # The matte, near-lossless and widely playable: full-range H.264 at qp 4 (errors of a grey level or two).
    "mp4-alpha": VideoFormat(".mp4", "libx264", "gray", "yuvj444p",
                             ("-preset", "veryfast", "-qp", "4", "-color_range", "pc", "-movflags", "+faststart"),
                             _MP4_AUDIO, "aac"),
}


def audio_plan(fmt: VideoFormat, audio_codec: str | None) -> str | None:
    """The audio codec argument for this container: "copy", a codec to re-encode to, or None."""
    if audio_codec is None:
        return None
    if "*" in fmt.audio_ok or audio_codec in fmt.audio_ok:
        return "copy"
    return fmt.audio_fallback


class _StagedOutput:
    """An output built in a temporary: as a context manager it is finished (``close()``, moved
    into place) when the block succeeds and discarded (``abort()``) when it raises."""

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class VideoWriter(_StagedOutput):
    """Feed frames one at a time; the file appears under its final name only on ``close()``.

    ``audio_from`` is a media file whose first audio stream is copied (or re-encoded where the
    container needs it). Use as a context manager: on an exception the temporary is removed.
    """

    def __init__(self, path: str | os.PathLike, fmt: VideoFormat, size: tuple[int, int], fps: Fraction,
                 audio_from: str | os.PathLike | None = None, audio_codec: str | None = None) -> None:
        self.path = Path(path)
        self.fmt = fmt
        self.size = size
        self.frames = 0
        self._channels = {"rgb24": 3, "rgba": 4, "gray": 1}[fmt.pix_fmt_in]
        self._tmp = atomic.temp_beside(self.path)
        self.audio = audio_plan(fmt, audio_codec) if audio_from is not None else None
        pix_fmt_out = fmt.pix_fmt_out
        if pix_fmt_out == "yuv420p" and (size[0] % 2 or size[1] % 2):
            pix_fmt_out = "yuv444p"  # 4:2:0 needs even sides; never rescale the user's frames
        if fmt.codec == "qtrle" and pix_fmt_out == "gray" and size[0] % 4:
            # QuickTime Animation's grey mode needs a width divisible by 4: the same grey in
            # three equal RGB channels instead (still lossless; read_mattes takes channel 0)
            pix_fmt_out = "rgb24"
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", fmt.pix_fmt_in, "-s", f"{size[0]}x{size[1]}",
               "-framerate", f"{fps.numerator}/{fps.denominator}", "-i", "pipe:0"]
        if self.audio:
            cmd += ["-i", str(audio_from), "-map", "0:v:0", "-map", "1:a:0", "-c:a", self.audio]
        else:
            cmd += ["-map", "0:v:0"]
        cmd += ["-c:v", fmt.codec, "-pix_fmt", pix_fmt_out, *fmt.params,
                "-r", f"{fps.numerator}/{fps.denominator}", str(self._tmp)]
        self._log = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log)
        self._closed = False

    def _ffmpeg_error(self) -> str:
        self._log.seek(0)
        lines = [ln.strip() for ln in self._log.read().decode("utf-8", "replace").splitlines() if ln.strip()]
        return lines[-1][:200] if lines else f"exit status {self._proc.returncode}"

    def _disk_full(self) -> bool:
        """Whether ffmpeg's log (any line, not only the last) reports a full disk."""
        try:
            self._log.seek(0)
            return b"No space left on device" in self._log.read()
        except (OSError, ValueError):
            return False

    def write(self, frame: np.ndarray) -> None:
        w, h = self.size
        if frame.shape[:2] != (h, w) or (frame.shape[2] if frame.ndim == 3 else 1) != self._channels:
            raise ValueError(f"frame {frame.shape} does not fit a {w}x{h} {self.fmt.pix_fmt_in} video")
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame, dtype=np.uint8).data)
        except (BrokenPipeError, OSError):
            self._proc.wait()
            self.abort()
            why = self._ffmpeg_error()
            if self._disk_full():
                raise CannotWrite(self.path, "no space left on device") from None
            raise BadInput(self.path, f"ffmpeg stopped while encoding: {why}") from None
        self.frames += 1

    def close(self) -> None:
        """Finish the file and move it into place; raises BadInput if ffmpeg failed."""
        if self._closed:
            return
        self._closed = True
        self._proc.stdin.close()
        rc = self._proc.wait()
        if rc != 0 or self.frames == 0:
            why = self._ffmpeg_error() if rc != 0 else "no frames to write"
            self._tmp.unlink(missing_ok=True)
            full = self._disk_full()
            self._log.close()
            if full:
                raise CannotWrite(self.path, "no space left on device")
            raise BadInput(self.path, f"ffmpeg failed to write it: {why}")
        self._log.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        """Stop ffmpeg and remove the temporary (after another error, which is the one reported)."""
        if not self._closed:
            self._closed = True
            try:
                self._proc.stdin.close()
            except OSError:
                pass
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
        self._tmp.unlink(missing_ok=True)


class PngSequenceWriter(_StagedOutput):
    """Frames as ``000000.png`` ... in a folder, which appears under its final name on ``close()``.

    A PNG sequence holds no audio; the caller says so in its summary.
    """

    audio = None

    def __init__(self, folder: str | os.PathLike) -> None:
        self.path = Path(folder)
        self._tmp = atomic.temp_dir_beside(self.path)
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        write_image(self._tmp / f"{self.frames:06d}.png", frame, png_compression=1)
        self.frames += 1

    def close(self) -> None:
        if self.path.is_symlink() or self.path.is_file():
            self.path.unlink()  # a link is replaced itself; what it points to is left alone
        elif self.path.exists():
            shutil.rmtree(self.path)
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)
