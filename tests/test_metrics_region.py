"""MAD and whole-image scoring (`eval --region all`), against sums done by hand."""
from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from mattecli.cli.app import app
from mattecli.io.images import write_image
from mattecli.metrics import compute_metrics

PRED = np.array([[0, 51, 255], [102, 255, 0]], np.uint8)       # 0, .2, 1 / .4, 1, 0
GT = np.array([[0, 102, 204], [102, 0, 0]], np.uint8)           # 0, .4, .8 / .4, 0, 0
TRIMAP = np.array([[0, 128, 128], [255, 128, 0]], np.uint8)


def test_mad_and_sad_by_hand_in_both_regions():
    diffs = [0.0, 0.2, 0.2, 0.0, 1.0, 0.0]  # |pred - gt| per pixel, row by row
    unknown = [1, 2, 4]
    band = compute_metrics(PRED, GT, TRIMAP, ("sad", "mse", "mad"))
    assert band["mad"] == pytest.approx(sum(diffs[i] for i in unknown) / 3, abs=1e-6)
    assert band["sad"] == pytest.approx(sum(diffs[i] for i in unknown) / 1000, abs=1e-8)
    whole = compute_metrics(PRED, GT, TRIMAP, ("sad", "mse", "mad"), region="all")
    assert whole["mad"] == pytest.approx(sum(diffs) / 6, abs=1e-6)
    assert whole["sad"] == pytest.approx(sum(diffs) / 1000, abs=1e-8)
    assert whole["mse"] == pytest.approx(sum(d * d for d in diffs) / 6, abs=1e-6)
    # no trimap is needed for the whole image
    assert compute_metrics(PRED, GT, None, ("mad",), region="all")["mad"] == pytest.approx(whole["mad"])
    with pytest.raises(ValueError, match="region"):
        compute_metrics(PRED, GT, TRIMAP, region="edges")
    with pytest.raises(ValueError, match="matlab"):
        compute_metrics(PRED, GT, TRIMAP, convention="mmagic", region="all")


def test_eval_region_all_needs_only_ground_truth(tmp_path):
    for name, arr in (("pred", PRED), ("gt", GT), ("tri", TRIMAP)):
        write_image(tmp_path / name / "a.png", arr)
    out = tmp_path / "s.json"
    r = CliRunner().invoke(app, ["eval", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--region", "all",
                                 "--metrics", "sad,mad", "--json", str(out), "--workers", "1"])
    assert r.exit_code == 0, r.output
    scores = json.loads(out.read_text())
    assert scores["region"] == "all" and scores["mean"]["mad"] == pytest.approx(1.4 / 6, abs=1e-6)
    r = CliRunner().invoke(app, ["eval", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--trimap",
                                 str(tmp_path / "tri"), "--metrics", "mad", "--json", str(out), "--workers", "1"])
    assert r.exit_code == 0, r.output
    assert json.loads(out.read_text())["mean"]["mad"] == pytest.approx(1.4 / 3, abs=1e-6)
    r = CliRunner().invoke(app, ["eval", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt")])
    assert r.exit_code != 0 and "--trimap" in str(r.exception)
