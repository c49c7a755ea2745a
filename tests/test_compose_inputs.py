"""mattecli compose: every bad input is one line, exit 2, nothing written; COCO and VOC sources."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from compose_helpers import imwrite, make_inputs, run_cli
from mattecli.compose import ComposeOptions, compose_dataset
from mattecli.data.backgrounds import coco_source, voc_source
from mattecli.data.manifest import read_manifest


def _args(tmp: Path, *extra: str) -> list[str]:
    return ["compose", "--fg", str(tmp / "in_fg"), "--alpha", str(tmp / "in_alpha"), "--bg", str(tmp / "in_bg"),
            "--out", str(tmp / "ds"), "--per-fg", "2", "-q", "-j", "1", *extra]


def _expect_error(tmp: Path, capsys, args: list[str], *fragments: str) -> str:
    code, err = run_cli(args, capsys)
    assert code == 2, err
    assert "Traceback" not in err
    for f in fragments:
        assert f in err, err
    assert not (tmp / "ds" / "merged").exists()
    return err


def test_foreground_without_alpha(tmp_path, capsys):
    make_inputs(tmp_path)
    (tmp_path / "in_alpha" / "fg1.png").unlink()
    _expect_error(tmp_path, capsys, _args(tmp_path), "fg1.png: foreground without an alpha")


def test_size_mismatch(tmp_path, capsys):
    make_inputs(tmp_path)
    imwrite(tmp_path / "in_alpha" / "fg0.png", np.zeros((10, 10), np.uint8))
    _expect_error(tmp_path, capsys, _args(tmp_path), "fg0.png: alpha is 10x10 but its foreground")


def test_truncated_and_unreadable_images_all_reported(tmp_path, capsys):
    make_inputs(tmp_path)
    p = tmp_path / "in_fg" / "fg0.png"
    p.write_bytes(p.read_bytes()[:-30])
    (tmp_path / "in_alpha" / "fg2.png").write_bytes(b"not an image at all")
    _expect_error(tmp_path, capsys, _args(tmp_path), "2 problems", "fg0.png: truncated PNG", "fg2.png")


def test_name_list_naming_missing_files(tmp_path, capsys):
    make_inputs(tmp_path)
    (tmp_path / "fgn.txt").write_text("fg0.png\nnope.png\n")
    (tmp_path / "bgn.txt").write_text("bg0.jpg\nbg1.jpg\nmissing.jpg\nbg2.jpg\n")
    _expect_error(tmp_path, capsys, _args(tmp_path, "--fg-names", str(tmp_path / "fgn.txt"),
                                          "--bg-names", str(tmp_path / "bgn.txt")),
                  "fgn.txt:2: nope.png is not in the --fg folder")
    (tmp_path / "fgn.txt").write_text("fg0.png\nfg1.png\n")
    _expect_error(tmp_path, capsys, _args(tmp_path, "--fg-names", str(tmp_path / "fgn.txt"),
                                          "--bg-names", str(tmp_path / "bgn.txt")),
                  "bgn.txt:3: missing.jpg is not in the background source")


def test_too_few_backgrounds(tmp_path, capsys):
    make_inputs(tmp_path, n_bg=4)
    args = _args(tmp_path)
    args[args.index("--per-fg") + 1] = "5"
    _expect_error(tmp_path, capsys, args, "4 background images, too few for 5")


def test_empty_and_missing_folders(tmp_path, capsys):
    make_inputs(tmp_path)
    for p in (tmp_path / "in_alpha").iterdir():
        p.unlink()
    _expect_error(tmp_path, capsys, _args(tmp_path), "--alpha folder holds no images")
    make_inputs(tmp_path)
    args = _args(tmp_path)
    args[args.index("--bg") + 1] = str(tmp_path / "nowhere")
    _expect_error(tmp_path, capsys, args, "nowhere: background folder does not exist")


def test_bad_shard(tmp_path, capsys):
    make_inputs(tmp_path)
    for bad in ("0/4", "5/4", "x", "1/0"):
        _expect_error(tmp_path, capsys, _args(tmp_path, "--shard", bad), f"--shard {bad!r}")


def test_bad_convention(tmp_path, capsys):
    make_inputs(tmp_path)
    err = _expect_error(tmp_path, capsys, _args(tmp_path, "--convention", "lanczos"), "'--convention'")
    assert "'lanczos' is not one of 'published', 'opencv-float32'" in " ".join(err.replace("│", " ").split())


def test_cli_convention_flag_reaches_the_dataset_card(tmp_path, capsys):
    make_inputs(tmp_path)
    code, err = run_cli(_args(tmp_path, "--convention", "opencv-float32"), capsys)
    assert code == 0, err
    card = json.loads((tmp_path / "ds" / "compose.json").read_text())
    assert card["convention"]["name"] == "opencv-float32" and card["convention"]["blend"] == "float32"
    assert card["fingerprint"]["convention"] == "opencv-float32"


def test_cli_success_prints_summary(tmp_path, capsys):
    make_inputs(tmp_path)
    code, err = run_cli(_args(tmp_path, "--trimaps"), capsys)
    assert code == 0, err
    assert "composites planned" in err and "manifest.json" in err
    assert len(read_manifest(tmp_path / "ds")) == 6


# --- COCO and VOC sources ---------------------------------------------------------------

def _coco_fixture(tmp: Path) -> Path:
    rng = np.random.default_rng(0)
    images, anns = [], []
    sizes = {1: (80, 60), 2: (100, 90), 3: (30, 20), 4: (90, 70), 5: (70, 70)}
    for i, (w, h) in sizes.items():
        name = f"COCO_train2014_{i:012d}.jpg"
        images.append({"id": i, "file_name": name, "width": w, "height": h})
        if i != 5:  # image 5 is listed but not downloaded
            imwrite(tmp / "coco" / name, rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    anns.append({"id": 1, "image_id": 2, "category_id": 1, "bbox": [0, 0, 5, 5], "area": 25, "iscrowd": 0,
                 "segmentation": [[0, 0, 5, 0, 5, 5]]})
    anns.append({"id": 2, "image_id": 4, "category_id": 2, "bbox": [0, 0, 5, 5], "area": 25, "iscrowd": 0,
                 "segmentation": [[0, 0, 5, 0, 5, 5]]})
    ann = {"images": images, "annotations": anns,
           "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "dog"}]}
    path = tmp / "instances.json"
    path.write_text(json.dumps(ann))
    return path


def test_coco_source_filters_categories_size_and_missing(tmp_path):
    ann = _coco_fixture(tmp_path)
    src = coco_source(ann, tmp_path / "coco", ("person",), min_size=40)
    assert src.names == ["COCO_train2014_000000000001.jpg", "COCO_train2014_000000000004.jpg"]
    assert src.stats == {"listed": 5, "excluded_by_category": 1, "too_small": 1, "missing_on_disk": 1,
                         "available": 2}
    # a COCO 2014 name resolves to the same image stored under its 2017 name
    assert coco_source(ann, tmp_path / "coco").resolve("COCO_train2014_000000000004.jpg") is not None


def test_coco_unknown_category_is_one_line(tmp_path, capsys):
    make_inputs(tmp_path)
    ann = _coco_fixture(tmp_path)
    args = _args(tmp_path)
    args[args.index("--bg") + 1] = f"coco:{ann}"
    _expect_error(tmp_path, capsys, args + ["--bg-root", str(tmp_path / "coco"), "--exclude-category", "cat"],
                  "no category named 'cat'")


def test_compose_from_coco_and_voc(tmp_path):
    make_inputs(tmp_path, n_fg=1)
    ann = _coco_fixture(tmp_path)
    s = compose_dataset(ComposeOptions(out=tmp_path / "c", fg=tmp_path / "in_fg", alpha=tmp_path / "in_alpha",
                                       bg=f"coco:{ann}", bg_root=tmp_path / "coco", exclude_categories=("person",),
                                       per_fg=3, workers=1, show_progress=False))
    assert s.written == 3
    used = {r.bg_source for r in read_manifest(tmp_path / "c")}
    assert used == {f"COCO_train2014_{i:012d}.jpg" for i in (1, 3, 4)}
    card = json.loads((tmp_path / "c" / "compose.json").read_text())
    assert card["sources"]["backgrounds"]["excluded_by_category"] == 1

    voc = tmp_path / "VOC2012"
    rng = np.random.default_rng(1)
    for vid in ("2007_000027", "2007_000032", "2008_000001"):
        imwrite(voc / "JPEGImages" / f"{vid}.jpg", rng.integers(0, 256, (50, 70, 3), dtype=np.uint8))
    (voc / "ImageSets" / "Main").mkdir(parents=True)
    (voc / "ImageSets" / "Main" / "val.txt").write_text("2007_000027\n2008_000001\n")
    (voc / "ImageSets" / "Main" / "trainval.txt").write_text("2007_000027\n2007_000032\n2008_000001\n")
    assert voc_source(voc, "val").names == ["2007_000027.jpg", "2008_000001.jpg"]
    (tmp_path / "bgn.txt").write_text("2008_000001.jpg\n2007_000032.jpg\n")
    s = compose_dataset(ComposeOptions(out=tmp_path / "v", fg=tmp_path / "in_fg", alpha=tmp_path / "in_alpha",
                                       bg=f"voc:{voc}", bg_names=tmp_path / "bgn.txt", workers=1,
                                       show_progress=False))
    assert s.per_fg == 2
    assert [r.bg_source for r in read_manifest(tmp_path / "v")] == ["2008_000001.jpg", "2007_000032.jpg"]
