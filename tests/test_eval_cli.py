"""`mattecli eval` end to end: pairing, outputs, and one clear line per bad input."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from mattecli.cli.app import main
from mattecli.data.manifest import Record, write_manifest
from mattecli.io.images import write_image
from mattecli.metrics import compute_metrics
from test_metrics import random_case


def run(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["mattecli", "eval", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    return exc.value.code, capsys.readouterr().err


def make_set(root: Path, count: int = 3, gt_ext: str = ".tif", trimap_ext: str = ".bmp") -> dict:
    """pred/*.png, gt/*<gt_ext>, trimap/*<trimap_ext>; returns name -> arrays."""
    cases = {}
    for i in range(count):
        pred, gt, trimap = random_case(100 + i, 30, 40)
        name = f"img_{i}"
        write_image(root / "pred" / f"{name}.png", pred)
        write_image(root / "gt" / f"{name}{gt_ext}", gt)
        write_image(root / "trimap" / f"{name}{trimap_ext}", trimap)
        cases[name] = (pred, gt, trimap)
    return cases


def folder_args(root: Path, *extra: str) -> list[str]:
    return [str(root / "pred"), "--gt", str(root / "gt"), "--trimap", str(root / "trimap"), "--workers", "1", *extra]


def test_json_and_csv_hold_the_metrics_of_each_pair(tmp_path, monkeypatch, capsys):
    cases = make_set(tmp_path)
    code, err = run(monkeypatch, capsys, *folder_args(tmp_path, "--json", str(tmp_path / "r.json"),
                                                      "--csv", str(tmp_path / "r.csv")))
    assert code == 0, err
    report = json.loads((tmp_path / "r.json").read_text())
    assert set(report) == {"count", "region", "mean", "images"} and report["count"] == 3 and report["region"] == "unknown"
    for item in report["images"]:
        want = compute_metrics(*cases[item["name"]])
        assert {k: item[k] for k in want} == pytest.approx(want, rel=1e-12)
    for k in ("sad", "mse", "grad", "conn"):
        assert report["mean"][k] == pytest.approx(np.mean([i[k] for i in report["images"]]), rel=1e-12)
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert [r["name"] for r in rows] == sorted(cases)
    assert float(rows[1]["conn"]) == report["images"][1]["conn"]
    assert "SAD" in err and "worst" in err


def test_metric_subset(tmp_path, monkeypatch, capsys):
    make_set(tmp_path, 2)
    code, _ = run(monkeypatch, capsys, *folder_args(tmp_path, "--metrics", "conn,sad", "--json", str(tmp_path / "r.json")))
    report = json.loads((tmp_path / "r.json").read_text())
    assert code == 0 and set(report["mean"]) == {"sad", "conn"} and set(report["images"][0]) == {"name", "sad", "conn"}
    code, err = run(monkeypatch, capsys, *folder_args(tmp_path, "--metrics", "sad,psnr"))
    assert code == 2 and "psnr" in err and "Traceback" not in err


def test_missing_files_are_listed_and_fail_unless_skipped(tmp_path, monkeypatch, capsys):
    make_set(tmp_path, 3)
    (tmp_path / "pred" / "img_1.png").unlink()
    (tmp_path / "trimap" / "img_2.bmp").unlink()
    code, err = run(monkeypatch, capsys, *folder_args(tmp_path))
    assert code == 2
    assert "img_1: no prediction" in err and "img_2: no trimap" in err and "--skip-missing" in err
    code, err = run(monkeypatch, capsys, *folder_args(tmp_path, "--skip-missing", "--json", str(tmp_path / "r.json")))
    assert code == 0, err
    assert [i["name"] for i in json.loads((tmp_path / "r.json").read_text())["images"]] == ["img_0"]


def test_bad_files_get_one_line_each_and_the_rest_is_scored(tmp_path, monkeypatch, capsys):
    cases = make_set(tmp_path, 4)
    write_image(tmp_path / "pred" / "img_0.png", np.zeros((31, 40), np.uint8))  # size mismatch
    (tmp_path / "pred" / "img_1.png").write_bytes(b"not an image at all")  # unreadable
    colour = np.stack([cases["img_2"][0]] * 3, axis=2)
    colour[0, 0, 1] ^= 1
    write_image(tmp_path / "pred" / "img_2.png", colour)  # real colour
    code, err = run(monkeypatch, capsys, *folder_args(tmp_path, "--json", str(tmp_path / "r.json")))
    assert code == 2 and "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error")]
    assert len(lines) == 4, err  # three files + the summary
    assert "img_0.png: prediction is 40x31 but the ground truth" in err
    assert "img_1.png: not a readable image" in err
    assert "img_2.png: prediction has 3 different colour channels" in err
    assert json.loads((tmp_path / "r.json").read_text())["count"] == 1


def test_grey_stored_as_rgb_is_accepted_with_a_note(tmp_path, monkeypatch, capsys):
    cases = make_set(tmp_path, 1)
    pred = cases["img_0"][0]
    write_image(tmp_path / "pred" / "img_0.png", np.stack([pred] * 3, axis=2))
    code, err = run(monkeypatch, capsys, *folder_args(tmp_path, "--json", str(tmp_path / "r.json")))
    assert code == 0 and "read as one" in err
    assert json.loads((tmp_path / "r.json").read_text())["images"][0]["sad"] == compute_metrics(*cases["img_0"])["sad"]


def test_trimaps_off_the_three_levels_are_normalised_with_a_warning(tmp_path, monkeypatch, capsys):
    cases = make_set(tmp_path, 1, trimap_ext=".png")
    pred, gt, trimap = cases["img_0"]
    odd = trimap.copy()
    odd[trimap == 128] = 102  # PyMatting's unknown value
    odd[0, :3] = (30, 200, 250)  # anti-aliased edge pixels
    write_image(tmp_path / "trimap" / "img_0.png", odd)
    code, err = run(monkeypatch, capsys, *folder_args(tmp_path, "--json", str(tmp_path / "r.json")))
    changed = int(np.count_nonzero(trimap == 128)) + int(np.count_nonzero(odd[0, :3] != trimap[0, :3]))
    flat = " ".join(err.split())
    assert code == 0 and "1 trimap(s) use values other than 0/128/255" in flat and f"({changed} pixels)" in flat
    from mattecli.data.trimap import normalise_trimap
    want = compute_metrics(pred, gt, normalise_trimap(odd)[0])
    assert json.loads((tmp_path / "r.json").read_text())["images"][0]["sad"] == want["sad"]


def test_composition_1k_layout_one_alpha_per_foreground(tmp_path, monkeypatch, capsys):
    pred, gt, trimap = random_case(5, 30, 40)
    write_image(tmp_path / "gt" / "dog.png", gt)
    for k in range(2):
        write_image(tmp_path / "pred" / f"dog_{k}.png", np.roll(pred, k, axis=1))
        write_image(tmp_path / "trimap" / f"dog_{k}.png", trimap)
    code, err = run(monkeypatch, capsys, *folder_args(tmp_path, "--json", str(tmp_path / "r.json")))
    assert code == 0, err
    images = json.loads((tmp_path / "r.json").read_text())["images"]
    assert [i["name"] for i in images] == ["dog_0", "dog_1"]
    assert images[1]["sad"] == compute_metrics(np.roll(pred, 1, axis=1), gt, trimap)["sad"]


def test_dataset_manifest(tmp_path, monkeypatch, capsys):
    data, preds = tmp_path / "data", tmp_path / "preds"
    records, want = [], {}
    for f in range(2):
        _, gt, _ = random_case(20 + f, 30, 40)
        write_image(data / "alpha" / f"fg{f}.png", gt)
        for k in range(2):
            pred, _, trimap = random_case(30 + 2 * f + k, 30, 40)
            name = f"fg{f}_{k}"
            write_image(data / "trimap" / f"{name}.png", trimap)
            write_image(preds / f"{name}.png", pred)
            records.append(Record(alpha_path=f"alpha/fg{f}.png", fg_path=f"fg/fg{f}.png",
                                  merged_path=f"merged/{name}.png", trimap_path=f"trimap/{name}.png"))
            want[name] = compute_metrics(pred, gt, trimap)
    write_manifest(data, records)
    code, err = run(monkeypatch, capsys, str(preds), "--data", str(data), "--workers", "1",
                    "--json", str(tmp_path / "r.json"))
    assert code == 0, err
    images = json.loads((tmp_path / "r.json").read_text())["images"]
    assert {i["name"]: i["conn"] for i in images} == {n: w["conn"] for n, w in want.items()}
    (preds / "fg1_1.png").unlink()
    code, err = run(monkeypatch, capsys, str(preds), "--data", str(data))
    assert code == 2 and "fg1_1: no prediction" in err


def test_parallel_equals_sequential_and_conventions_differ(tmp_path, monkeypatch, capsys):
    make_set(tmp_path, 6)
    results = {}
    for tag, extra in (("one", ["--workers", "1"]), ("two", ["--workers", "2"]),
                       ("mmagic", ["--workers", "1", "--convention", "mmagic"])):
        args = folder_args(tmp_path, "--json", str(tmp_path / f"{tag}.json"))
        args = [a for a in args if a not in ("--workers", "1")] + extra
        code, err = run(monkeypatch, capsys, *args)
        assert code == 0, err
        results[tag] = json.loads((tmp_path / f"{tag}.json").read_text())
    assert results["one"] == results["two"]
    assert results["one"]["mean"]["sad"] != results["mmagic"]["mean"]["sad"]


def test_usage_errors(tmp_path, monkeypatch, capsys):
    make_set(tmp_path, 1)
    code, err = run(monkeypatch, capsys, str(tmp_path / "pred"))
    assert code == 2 and "--gt" in err and "--data" in err
    code, err = run(monkeypatch, capsys, *folder_args(tmp_path, "--convention", "gca"))
    assert code == 2 and "gca" in err
    code, err = run(monkeypatch, capsys, str(tmp_path / "nowhere"), "--gt", str(tmp_path / "gt"),
                    "--trimap", str(tmp_path / "trimap"))
    assert code == 2 and "nowhere: not a folder" in err and "Traceback" not in err
