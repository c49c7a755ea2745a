"""Image I/O and atomic writes: depths, channel layouts, formats, truncated files, atomicity."""
from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from mattecli.errors import BadInput
from mattecli.io import atomic
from mattecli.io.images import (encode_image, list_images, probe_image, read_alpha, read_alpha_float, read_raw,
                                read_rgb, to_uint8, write_image)

RNG = np.random.default_rng(0)
RGB8 = RNG.integers(0, 256, (12, 17, 3), dtype=np.uint8)
RGBA8 = RNG.integers(0, 256, (12, 17, 4), dtype=np.uint8)
GREY8 = RNG.integers(0, 256, (12, 17), dtype=np.uint8)
GREY16 = RNG.integers(0, 65536, (12, 17), dtype=np.uint16)
RGB16 = RNG.integers(0, 65536, (12, 17, 3), dtype=np.uint16)


def _cv_write(path, arr):
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR if arr.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
    assert cv2.imwrite(str(path), arr)


@pytest.mark.parametrize("ext", [".png", ".tif", ".webp"])
@pytest.mark.parametrize("arr", [RGB8, RGBA8, GREY8], ids=["rgb", "rgba", "grey"])
def test_lossless_roundtrip_and_probe(tmp_path, ext, arr):
    if ext == ".webp" and arr.ndim == 2:
        pytest.skip("WebP has no grey mode")
    p = tmp_path / f"x{ext}"
    write_image(p, arr)
    back = read_raw(p)
    assert np.array_equal(back, arr)
    info = probe_image(p)
    assert (info.width, info.height, info.bit_depth) == (17, 12, 8)
    assert info.channels == (1 if arr.ndim == 2 else arr.shape[2])


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16_bit(tmp_path, ext):
    for arr in (GREY16, RGB16):
        p = tmp_path / f"x{arr.ndim}{ext}"
        _cv_write(p, arr)
        assert np.array_equal(read_raw(p), arr)
        assert probe_image(p).bit_depth == 16
    p = tmp_path / f"x2{ext}"
    assert np.array_equal(read_alpha(p), ((GREY16.astype(np.int64) + 128) // 257).astype(np.uint8))
    assert np.allclose(read_alpha_float(p), GREY16 / 65535.0, atol=1e-7)
    rgb = read_rgb(tmp_path / f"x3{ext}")
    assert rgb.dtype == np.uint8 and np.array_equal(rgb, to_uint8(RGB16))


def test_conversions(tmp_path):
    _cv_write(tmp_path / "g.png", GREY8)
    assert np.array_equal(read_rgb(tmp_path / "g.png"), np.repeat(GREY8[:, :, None], 3, axis=2))
    _cv_write(tmp_path / "rgba.png", RGBA8)
    assert np.array_equal(read_rgb(tmp_path / "rgba.png"), RGBA8[:, :, :3])
    assert np.array_equal(read_alpha(tmp_path / "rgba.png"), RGBA8[:, :, 3])
    _cv_write(tmp_path / "a_rgb.png", RGB8)
    assert np.array_equal(read_alpha(tmp_path / "a_rgb.png"), RGB8[:, :, 0])
    assert np.allclose(read_alpha_float(tmp_path / "g.png"), GREY8 / 255.0)


def test_jpeg_read_and_probe(tmp_path):
    _cv_write(tmp_path / "x.jpg", RGB8)
    info = probe_image(tmp_path / "x.jpg")
    assert (info.width, info.height, info.channels) == (17, 12, 3)
    ref = cv2.cvtColor(cv2.imread(str(tmp_path / "x.jpg")), cv2.COLOR_BGR2RGB)
    assert np.array_equal(read_rgb(tmp_path / "x.jpg"), ref)


@pytest.mark.parametrize("ext,cut,msg", [(".png", 20, "truncated PNG"), (".jpg", 10, "truncated JPEG")])
def test_truncated_files_are_named(tmp_path, ext, cut, msg):
    p = tmp_path / f"x{ext}"
    _cv_write(p, np.tile(RGB8, (8, 8, 1)))
    p.write_bytes(p.read_bytes()[:-cut])
    with pytest.raises(BadInput, match=msg) as exc:
        probe_image(p)
    assert str(p) in str(exc.value)


@pytest.mark.parametrize("ext,cut,msg", [(".png", 20, "truncated PNG"), (".jpg", 10, "truncated JPEG"),
                                         (".png", 12, "truncated PNG"), (".jpg", 2, "truncated JPEG")])
def test_decoding_a_truncated_file_names_the_truncation(tmp_path, ext, cut, msg, capfd):
    """Readers that do not probe first (eval, matte) still say what is wrong, without codec noise."""
    p = tmp_path / f"x{ext}"
    _cv_write(p, np.tile(RGB8, (8, 8, 1)))
    p.write_bytes(p.read_bytes()[:-cut])
    for reader in (read_raw, read_rgb, read_alpha):
        with pytest.raises(BadInput, match=msg) as exc:
            reader(p)
        assert str(p) in str(exc.value)
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("content,msg", [(b"", "empty file"), (b"hello world, not an image", "not a readable image")])
def test_unreadable_files(tmp_path, content, msg):
    p = tmp_path / "bad.png"
    p.write_bytes(content)
    with pytest.raises(BadInput, match=msg):
        read_rgb(p)
    with pytest.raises(BadInput):
        probe_image(p)
    with pytest.raises(BadInput, match="cannot open"):
        read_rgb(tmp_path / "missing.png")


def test_png_levels_are_lossless_and_cheaper_levels_bigger():
    img = np.tile(RGB8, (20, 20, 1))
    sizes = {}
    for level in (1, 9):
        data = encode_image(img, ".png", png_compression=level)
        dec = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(cv2.cvtColor(dec, cv2.COLOR_BGR2RGB), img)
        sizes[level] = len(data)
    assert sizes[1] >= sizes[9]


def _png_row_filters(data: bytes, row_bytes: int) -> set[int]:
    """The filter type byte of every scanline (PNG spec: one byte before each row of the inflated IDAT)."""
    import struct
    import zlib

    idat, pos = b"", 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(idat)
    return {raw[i] for i in range(0, len(raw), row_bytes + 1)}


def test_png_fast_level_uses_the_sub_filter_and_keeps_the_pixels():
    """Level 1 (compose's default) is zlib's RLE strategy with every row Sub-filtered (issue 20: about
    twice as fast to encode as zlib's defaults at level 1); other levels keep the encoder's adaptive filters."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:48, :64]
    img = np.stack([(xx * 3) % 256, (yy * 5) % 256, rng.integers(0, 256, (48, 64))], axis=2).astype(np.uint8)
    fast = encode_image(img, ".png", png_compression=1)
    dec = cv2.imdecode(np.frombuffer(fast, np.uint8), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(cv2.cvtColor(dec, cv2.COLOR_BGR2RGB), img)
    assert _png_row_filters(fast, 64 * 3) == {1}  # Sub on every row
    assert _png_row_filters(encode_image(img, ".png", png_compression=3), 64 * 3) != {1}


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    p = tmp_path / "sub" / "f.bin"
    atomic.write_bytes(p, b"old")
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(p) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert p.read_bytes() == b"old"
    assert [q.name for q in p.parent.iterdir()] == ["f.bin"]


def test_stale_temps_are_removed_and_never_listed(tmp_path):
    write_image(tmp_path / "a.png", GREY8)
    stale = tmp_path / "d" / f"{atomic.TEMP_MARK}xyz.png"
    stale.parent.mkdir()
    stale.write_bytes(b"partial")
    assert [p.name for p in list_images(tmp_path)] == ["a.png"]
    assert atomic.remove_stale_temps(tmp_path) == 1
    assert not stale.exists()
    atomic.write_json(tmp_path / "j.json", {"a": 1})
    assert (tmp_path / "j.json").read_text().strip().startswith("{")
    assert os.listdir(tmp_path / "d") == []


def test_list_images_sorted_recursive(tmp_path):
    for rel in ("b/z.png", "a.jpg", "b/a.png", "notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    assert [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)] == ["a.jpg", "b/a.png", "b/z.png"]
    assert [p.name for p in list_images(tmp_path, recursive=False)] == ["a.jpg"]
    with pytest.raises(BadInput, match="not a folder"):
        list_images(tmp_path / "nope")


def test_a_jpeg_with_data_after_its_end_marker_is_not_called_truncated(tmp_path):
    """Phones append motion-photo data after the end-of-image marker; the image is complete."""
    image = (np.random.default_rng(3).random((40, 60, 3)) * 255).astype(np.uint8)
    write_image(tmp_path / "a.jpg", image)
    data = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "trailer.jpg").write_bytes(data + b"MotionPhoto_Data" * 500)
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    assert probe_image(tmp_path / "trailer.jpg").width == 60
    assert read_rgb(tmp_path / "trailer.jpg").shape == (40, 60, 3)
    with pytest.raises(BadInput, match="truncated JPEG"):
        probe_image(tmp_path / "cut.jpg")


def test_stale_temporaries_of_one_output_are_removed_and_others_kept(tmp_path):
    """A killed run leaves temp files/folders named after their output; a rerun clears its own."""
    out = tmp_path / "clip_rgba"
    other = tmp_path / "clip_alpha.mov"
    stale_dir = atomic.temp_dir_beside(out)
    (stale_dir / "000000.png").write_bytes(b"x")
    stale_file = atomic.temp_beside(out)
    keep = atomic.temp_beside(other)
    assert atomic.remove_stale_temps(tmp_path, output=out) == 2
    assert not stale_dir.exists() and not stale_file.exists() and keep.exists()
    assert atomic.remove_stale_temps(tmp_path) == 1 and not keep.exists()
