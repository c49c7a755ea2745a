"""Streaming video I/O: exact frame rate, frame count, audio kept, alpha surviving each container."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from video_clips import NTSC, decode_raw, ffmpeg, make_pattern_clip

from mattecli.errors import BadInput
from mattecli.io.atomic import TEMP_MARK
from mattecli.io.video import FORMATS, PngSequenceWriter, VideoWriter, probe_video, read_frames, read_mattes

W, H, N = 64, 48, 12


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_pattern_clip(tmp_path_factory.mktemp("clip") / "src.mp4", frames=N, size=(W, H))


def alpha_ramp(i: int) -> np.ndarray:
    """A different horizontal ramp per frame, covering 0..255 with sharp steps too."""
    yy, xx = np.mgrid[0:H, 0:W]
    a = (xx * 4 + i * 7) % 256
    a[yy < 8] = 255
    a[yy >= H - 8] = 0
    return a.astype(np.uint8)


def test_probe_reads_the_exact_rational_rate_and_audio(clip):
    info = probe_video(clip)
    assert (info.width, info.height) == (W, H)
    assert info.fps == NTSC and isinstance(info.fps, Fraction)
    assert info.audio_codec == "aac"
    assert not info.has_alpha


def test_read_frames_yields_every_frame_like_plain_ffmpeg(clip):
    frames = list(read_frames(clip))
    reference = decode_raw(clip, "rgb24", 3, (W, H))
    assert len(frames) == N == len(reference)
    assert all(f.shape == (H, W, 3) and f.dtype == np.uint8 for f in frames)
    np.testing.assert_array_equal(np.stack(frames), reference)


@pytest.mark.parametrize("key, audio_codec, tol", [
    ("mov", "aac", (1, 0.5)),        # ProRes 4444, 16-bit alpha plane: at most one level off (10-bit path)
    ("webm", "opus", (5, 1.0)),      # VP9 yuva420p, lossy: a few levels at the hard steps; AAC is not
                                     # allowed in WebM, so the audio is re-encoded to Opus
    ("mov-alpha", "aac", (0, 0.0)),  # QuickTime Animation grey: lossless
    ("mkv", "aac", (0, 0.0)),        # FFV1 grey: lossless
    ("mp4-alpha", "aac", (2, 0.5)),  # full-range H.264 at qp 4: near-lossless
])
def test_alpha_survives_with_rate_count_and_audio(clip, tmp_path, key, audio_codec, tol):
    info = probe_video(clip)
    fmt = FORMATS[key]
    frames = list(read_frames(clip))
    out = tmp_path / f"out{fmt.suffix}"
    with VideoWriter(out, fmt, (W, H), info.fps, audio_from=clip, audio_codec=info.audio_codec) as writer:
        for i, frame in enumerate(frames):
            a = alpha_ramp(i)
            writer.write(np.dstack([frame, a]) if fmt.pix_fmt_in == "rgba" else a)
    got = probe_video(out)
    assert got.fps == NTSC
    assert got.audio_codec == audio_codec
    assert got.has_alpha == (fmt.pix_fmt_in == "rgba")
    if fmt.pix_fmt_in == "rgba":
        decoder = "libvpx-vp9" if key == "webm" else None  # decoded independently, alpha plane included
        back = decode_raw(out, "rgba", 4, (W, H), decoder)[..., 3]
        ours = np.stack([f[..., 3] for f in read_frames(out, alpha=True)])
        np.testing.assert_array_equal(ours, back)
    else:
        # Decoded through RGB: ffmpeg's palette-to-grey conversion of QuickTime Animation rounds.
        back = decode_raw(out, "rgb24", 3, (W, H))[..., 0]
        np.testing.assert_array_equal(np.stack(list(read_mattes(out))), back)
    assert back.shape[0] == N
    err = np.abs(back.astype(int) - np.stack([alpha_ramp(i) for i in range(N)]).astype(int))
    assert err.max() <= tol[0] and err.mean() <= tol[1]
    assert not list(tmp_path.glob(f"{TEMP_MARK}*"))


def test_colour_mp4_keeps_rate_and_copies_aac(clip, tmp_path):
    info = probe_video(clip)
    out = tmp_path / "comp.mp4"
    with VideoWriter(out, FORMATS["mp4"], (W, H), info.fps, audio_from=clip, audio_codec="aac") as writer:
        for frame in read_frames(clip):
            writer.write(frame)
    assert writer.audio == "copy"
    got = probe_video(out)
    assert (got.fps, got.audio_codec, got.codec) == (NTSC, "aac", "h264")
    back = np.stack(list(read_frames(out)))
    assert back.shape == (N, H, W, 3)
    # 4:2:0 halves the colour resolution of testsrc2's sharp colour bars; compare brightness.
    luma = np.array([0.299, 0.587, 0.114])
    src = np.stack(list(read_frames(clip)))
    assert np.abs(back @ luma - src @ luma).mean() < 2


def test_other_rates_stay_exact(tmp_path):
    for rate, expected in (("24000/1001", Fraction(24000, 1001)), ("25", Fraction(25)), ("60000/1001", Fraction(60000, 1001))):
        src = tmp_path / f"r{expected.numerator}.mov"
        ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=32x24:rate={rate}", "-frames:v", "5", "-c:v", "qtrle", str(src))
        out = tmp_path / f"o{expected.numerator}.mov"
        info = probe_video(src)
        assert info.fps == expected and info.audio_codec is None
        with VideoWriter(out, FORMATS["mov-alpha"], (32, 24), info.fps) as writer:
            for frame in read_frames(src):
                writer.write(frame[..., 0])
        assert probe_video(out).fps == expected
        assert writer.frames == 5


def test_png_sequence_is_lossless_and_appears_whole(clip, tmp_path):
    folder = tmp_path / "seq"
    with PngSequenceWriter(folder) as writer:
        for i, frame in enumerate(read_frames(clip)):
            assert not folder.exists()  # only the finished sequence gets the final name
            writer.write(np.dstack([frame, alpha_ramp(i)]))
    files = sorted(folder.glob("*.png"))
    assert [f.name for f in files[:2]] == ["000000.png", "000001.png"] and len(files) == N
    from mattecli.io.images import read_raw
    np.testing.assert_array_equal(read_raw(files[5])[..., 3], alpha_ramp(5))


def test_interrupted_writer_leaves_nothing(clip, tmp_path):
    out = tmp_path / "never.mov"
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(out, FORMATS["mov"], (W, H), NTSC) as writer:
            writer.write(np.zeros((H, W, 4), np.uint8))
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_wrong_frame_shape_is_refused(tmp_path):
    with VideoWriter(tmp_path / "x.mkv", FORMATS["mkv"], (W, H), NTSC) as writer:
        with pytest.raises(ValueError, match="does not fit"):
            writer.write(np.zeros((H, W, 3), np.uint8))
        writer.write(np.zeros((H, W), np.uint8))
    assert probe_video(tmp_path / "x.mkv").width == W


def test_not_a_video_is_one_clear_error(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video\n")
    with pytest.raises(BadInput, match="notes.mp4: not a readable video"):
        probe_video(bad)
    with pytest.raises(BadInput, match="no such video file"):
        probe_video(tmp_path / "missing.mp4")
    truncated = tmp_path / "cut.mp4"
    make_pattern_clip(tmp_path / "full.mp4")
    truncated.write_bytes((tmp_path / "full.mp4").read_bytes()[:600])
    with pytest.raises(BadInput):
        probe_video(truncated)
