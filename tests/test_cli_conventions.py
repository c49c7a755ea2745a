"""Conventions across commands: eval on single files and pair lists, one trimap warning per run in
matte and eval, plain loss lines for batch jobs."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import train_tiny_family  # noqa: F401  (registers the tiny family)
from mattecli.cli.app import main
from mattecli.io.images import write_image
from mattecli.train.engine import train
from mattecli.families.registry import get_family  # noqa: E402


def cli(monkeypatch, capsys, *args: object) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["mattecli", *map(str, args)])
    with pytest.raises(SystemExit) as exc:
        main()
    captured = capsys.readouterr()
    return int(exc.value.code or 0), " ".join((captured.out + captured.err).replace("│", " ").split())


def matlab_sad(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray) -> float:
    """SAD as evaluate.m computes it: |pred - gt| in [0, 1] summed over trimap == 128, / 1000."""
    diff = np.abs(pred.astype(np.float64) / 255 - gt.astype(np.float64) / 255)
    return float(diff[trimap == 128].sum() / 1000)


def a_case(seed: int, h: int = 24, w: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, 256, (h, w), dtype=np.uint8)
    pred = np.clip(gt.astype(int) + rng.integers(-40, 41, (h, w)), 0, 255).astype(np.uint8)
    trimap = np.full((h, w), 128, np.uint8)
    trimap[:, : w // 4], trimap[:, -w // 4:] = 0, 255
    return pred, gt, trimap


def write_case(root: Path, seed: int, pred_name: str, gt_name: str, trimap_name: str):
    pred, gt, trimap = a_case(seed)
    for name, arr in ((pred_name, pred), (gt_name, gt), (trimap_name, trimap)):
        write_image(root / name, arr)
    return pred, gt, trimap


def test_eval_one_prediction_file_against_one_ground_truth_file(tmp_path, monkeypatch, capsys):
    pred, gt, trimap = write_case(tmp_path, 1, "out/cat_v2.png", "gt/the_cat.png", "tri/cat-trimap.png")
    code, out = cli(monkeypatch, capsys, "eval", tmp_path / "out/cat_v2.png", "--gt", tmp_path / "gt/the_cat.png",
                    "--trimap", tmp_path / "tri/cat-trimap.png", "--json", tmp_path / "s.json")
    assert code == 0, out
    report = json.loads((tmp_path / "s.json").read_text())
    assert report["count"] == 1 and report["images"][0]["name"] == "cat_v2"
    assert report["images"][0]["sad"] == pytest.approx(matlab_sad(pred, gt, trimap), rel=1e-5)
    # a folder where a file belongs is one line, not a traceback
    code, out = cli(monkeypatch, capsys, "eval", tmp_path / "out/cat_v2.png", "--gt", tmp_path / "gt",
                    "--trimap", tmp_path / "tri/cat-trimap.png")
    assert code == 2 and "--gt" in out and "single file" in out and "Traceback" not in out


@pytest.mark.parametrize("kind", ["csv", "json"])
def test_eval_pairs_list_pairs_differently_named_files(tmp_path, monkeypatch, capsys, kind):
    cases = {f"img{i}": write_case(tmp_path, i, f"preds/p_{i}.png", f"truth/alpha-{i}.png", f"tri/{i}_t.png")
             for i in range(3)}
    rows = [{"pred": f"preds/p_{i}.png", "gt": f"truth/alpha-{i}.png", "trimap": f"tri/{i}_t.png", "name": f"img{i}"}
            for i in range(3)]
    rows.append({"pred": "preds/nope.png", "gt": "truth/alpha-0.png", "trimap": "tri/0_t.png", "name": "gone"})
    listing = tmp_path / f"pairs.{kind}"
    if kind == "json":
        listing.write_text(json.dumps(rows))
    else:
        with listing.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["pred", "gt", "trimap", "name"])
            writer.writeheader()
            writer.writerows(rows)
    code, out = cli(monkeypatch, capsys, "eval", "--pairs", listing)
    assert code == 2 and "gone: no prediction" in out and "--skip-missing" in out
    code, out = cli(monkeypatch, capsys, "eval", "--pairs", listing, "--skip-missing", "--json", tmp_path / "s.json")
    assert code == 0, out
    scored = {r["name"]: r["sad"] for r in json.loads((tmp_path / "s.json").read_text())["images"]}
    assert scored == pytest.approx({name: matlab_sad(*case) for name, case in cases.items()}, rel=1e-5)


def test_eval_pairs_list_problems_are_one_line(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "pairs.csv"
    bad.write_text("prediction,truth\na.png,b.png\n")
    code, out = cli(monkeypatch, capsys, "eval", "--pairs", bad)
    assert code == 2 and "pairs.csv" in out and "pred,gt" in out and "Traceback" not in out
    code, out = cli(monkeypatch, capsys, "eval", tmp_path, "--pairs", bad)
    assert code == 2 and "--pairs names every file" in out


def test_matte_warns_once_per_run_about_trimaps_off_the_three_levels(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(0)
    for i in range(3):
        write_image(tmp_path / "in" / f"im{i}.png", rng.integers(0, 256, (20, 24, 3), dtype=np.uint8))
        trimap = np.zeros((20, 24), np.uint8)
        trimap[:, 8:16] = 102 if i < 2 else 128  # PyMatting's unknown grey in two of the three
        trimap[:, 16:] = 255
        write_image(tmp_path / "tri" / f"im{i}.png", trimap)
    code, out = cli(monkeypatch, capsys, "matte", tmp_path / "in", "--trimap", tmp_path / "tri",
                    "--out", tmp_path / "out", "--output", "alpha")
    assert code == 0, out
    assert out.count("use values other than 0/128/255") == 1
    assert "2 trimap(s)" in out and f"({20 * 8} pixels)" in out
    # a run whose trimaps are all 0/128/255 says nothing
    code, out = cli(monkeypatch, capsys, "matte", tmp_path / "in" / "im2.png", "--trimap", tmp_path / "tri" / "im2.png",
                    "--out", tmp_path / "out2", "--output", "alpha")
    assert code == 0 and "0/128/255" not in out


def test_without_progress_display_training_prints_a_loss_line_every_n_steps(tmp_path, capsys):
    recipe = {"lr": 0.01, "iters": 5, "batch_size": 2, "checkpoint_every": 5, "log_every": 1, "train_samples": 10}
    train(get_family("tiny"), recipe, ".", tmp_path / "run", stage="base", device="cpu", show_progress=False, print_every=2)
    lines = [line for line in capsys.readouterr().err.splitlines() if " loss " in line]  # the console is stderr
    assert [line.split(" loss ")[0] for line in lines] == ["tiny base step 2/5", "tiny base step 4/5",
                                                           "tiny base step 5/5"]
    logged = [json.loads(x) for x in (tmp_path / "run" / "base" / "log.jsonl").read_text().splitlines()]
    losses = {r["step"]: r["loss"] for r in logged if r.get("kind") == "train"}
    for line in lines:  # the printed loss is the logged one
        step = int(line.split(" step ")[1].split("/")[0])
        assert float(line.split(" loss ")[1].split()[0]) == pytest.approx(losses[step], abs=1e-4)
    # with the live display, no plain lines
    train(get_family("tiny"), recipe, ".", tmp_path / "run2", stage="base", device="cpu", show_progress=True, print_every=2)
    assert "tiny base step" not in capsys.readouterr().err


def test_print_every_is_refused_with_the_live_display(tmp_path, monkeypatch, capsys):
    code, out = cli(monkeypatch, capsys, "train", "dim", "--data", tmp_path, "-o", tmp_path / "run", "--print-every", 3)
    assert code == 2 and out == "error: --print-every applies only with --no-progress (the live display shows the loss)"
    assert not (tmp_path / "run").exists()
