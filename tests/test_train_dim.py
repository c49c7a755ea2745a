"""`mattecli train dim` end to end on a tiny composed dataset, `eval --weights`, and the CLI's errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from forward_dtypes import conv_output_dtypes
from compose_helpers import composed_training_set
from mattecli.cli.app import app
from mattecli.data.manifest import read_manifest, resolve
from mattecli.data.samples import write_samples
from mattecli.io.checkpoint import load_checkpoint
from mattecli.io.images import read_alpha, read_rgb
from mattecli.families.registry import load_model
from mattecli.train.engine import train
from mattecli.families.registry import get_family  # noqa: E402
from mattecli.train.logging import read_log

#: small enough for a few steps a second on CPU: 32 px inputs from 48/64 px crops
TINY = ["--set", "input_size=32", "--set", "crop_sizes=[48, 64]", "--set", "trimap_iterations=[1, 3]",
        "--set", "workers=0", "--set", "log_every=1", "--no-progress"]
#: batch 1 at 32 px leaves one value per channel after pool5, which batch norm (dim-quick) cannot normalise
BATCH1 = ["--batch-size", "1", "--set", "batch_norm=false"]


def invoke(*args: str):
    result = CliRunner().invoke(app, list(args))
    return result


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("dimdata")
    write_samples(root / "src", seed=3, foregrounds=3, backgrounds=4, size=(72, 64))
    for name, seed in (("train", 1), ("test", 2)):
        composed_training_set(root / "src", root / name, seed)
    return {"train": root / "train", "test": root / "test"}


def test_train_dim_all_stages_then_eval_with_the_weights(datasets, tmp_path):
    run = tmp_path / "run"
    r = invoke("train", "dim", "--data", str(datasets["train"]), "--val", str(datasets["test"]), "--out", str(run),
               "--recipe", "dim-quick", "--iters", "2", "--batch-size", "2", "--seed", "5", "--device", "cpu",
               "--set", "val_every=0", *TINY)
    assert r.exit_code == 0, (r.output, r.exception)
    for stage, refine in (("encoder", False), ("refine", True), ("joint", True)):
        ckpt = load_checkpoint(run / stage / "last.pt")
        assert ckpt["step"] == 2 and ckpt["stage"] == stage and ckpt["family"] == "dim"
        assert ckpt["model_config"]["refine"] is refine
        assert ckpt["recipe"]["seed"] == 5 and ckpt["recipe"]["input_size"] == 32
        vals = [x for x in read_log(run / stage / "log.jsonl") if x["kind"] == "val"]
        assert len(vals) == 1 and vals[0]["count"] == 3
    enc = load_checkpoint(run / "encoder" / "best.pt")["model"]
    ref = load_checkpoint(run / "refine" / "last.pt")["model"]
    # the refine stage starts from the encoder stage's best and keeps stage 1 frozen
    assert all(torch.equal(enc[k], ref[k]) for k in enc if not k.startswith("refiner"))
    assert any(not torch.equal(enc[k], ref[k]) for k in enc if k.startswith("refiner"))
    best = load_checkpoint(run / "best.pt")
    assert best["stage"] == "joint"

    # eval --weights: predictions for every test composite, then the metrics of those files
    preds, report = tmp_path / "pred", tmp_path / "scores.json"
    r = invoke("eval", str(preds), "--data", str(datasets["test"]), "--weights", str(run / "best.pt"),
               "--device", "cpu", "--json", str(report), "--workers", "1")
    assert r.exit_code == 0, (r.output, r.exception)
    scores = json.loads(report.read_text())
    assert scores["count"] == 3
    # each prediction is the network's output with known regions clamped, as the checkpoint alone rebuilds it
    model, _ = load_model(run / "best.pt")
    record = read_manifest(datasets["test"])[0]
    image = torch.from_numpy(read_rgb(resolve(datasets["test"], record.merged_path))).permute(2, 0, 1)[None] / 255
    trimap = read_alpha(resolve(datasets["test"], record.trimap_path))
    alpha = model.predict(image.float(), torch.from_numpy(trimap)[None, None].float().div(255).mul(2).round().div(2))
    expected = alpha["alpha"][0, 0].numpy()
    expected = np.where(trimap == 255, 1.0, np.where(trimap == 0, 0.0, expected))
    written = read_alpha(preds / f"{record.name}.png")
    assert np.array_equal(written, np.round(expected * 255).astype(np.uint8))
    # and validation's SAD for the joint stage is what eval reports on the written files
    val = [x for x in read_log(run / "joint" / "log.jsonl") if x["kind"] == "val"][0]
    assert val["sad"] == pytest.approx(scores["mean"]["sad"], rel=1e-6, abs=1e-9)
    # without PRED_DIR the predictions go beside the checkpoint, named after the dataset
    report2 = tmp_path / "scores2.json"
    r = invoke("eval", "--data", str(datasets["test"]), "--weights", str(run / "best.pt"),
               "--device", "cpu", "--json", str(report2), "--workers", "1")
    assert r.exit_code == 0, (r.output, r.exception)
    assert json.loads(report2.read_text()) == scores
    beside = run / "predictions" / datasets["test"].name / f"{record.name}.png"
    assert np.array_equal(read_alpha(beside), written)


def test_dim_resume_equals_uninterrupted(datasets, tmp_path):
    recipe = {"family": "dim", "lr": 1e-4, "batch_size": 1, "iters": 4, "checkpoint_every": 2, "input_size": 32,
              "crop_sizes": [48, 64], "trimap_iterations": [1, 3], "workers": 0, "seed": 3}
    kwargs = dict(stage="encoder", device="cpu", show_progress=False)
    whole = train(get_family("dim"), recipe, datasets["train"], tmp_path / "whole", **kwargs)
    train(get_family("dim"), recipe, datasets["train"], tmp_path / "part", stop_after=3, **kwargs)
    resumed = train(get_family("dim"), recipe, datasets["train"], tmp_path / "part", resume=True, **kwargs)
    a = load_checkpoint(whole.stages[0].last_path)["model"]
    b = load_checkpoint(resumed.stages[0].last_path)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    la = [x["loss"] for x in read_log(tmp_path / "whole" / "encoder" / "log.jsonl")]
    lb = [x["loss"] for x in read_log(tmp_path / "part" / "encoder" / "log.jsonl")]
    assert la == lb and len(la) == 4


def test_matte_rebuilds_the_network_from_the_checkpoint(datasets, tmp_path):
    assert "--weights" in invoke("matte", "--help").output
    run = tmp_path / "run"
    r = invoke("train", "dim", "--data", str(datasets["train"]), "--out", str(run), "--recipe", "dim-quick",
               "--stage", "encoder", "--iters", "1", "--device", "cpu", *BATCH1, *TINY)
    assert r.exit_code == 0, (r.output, r.exception)
    record = read_manifest(datasets["test"])[0]
    merged, trimap = resolve(datasets["test"], record.merged_path), resolve(datasets["test"], record.trimap_path)
    r = invoke("matte", str(merged), "--trimap", str(trimap), "--weights", str(run / "best.pt"),
               "--out", str(tmp_path / "out"), "--device", "cpu")
    assert r.exit_code == 0, (r.output, r.exception)
    written = [p for p in (tmp_path / "out").rglob("*.png") if "alpha" in p.parts]
    assert len(written) == 1
    model, _ = load_model(run / "best.pt")
    image = torch.from_numpy(read_rgb(merged)).permute(2, 0, 1)[None].float() / 255
    t = read_alpha(trimap)
    alpha = model.predict(image, torch.from_numpy(t)[None, None].float().div(255).mul(2).round().div(2))["alpha"]
    expected = np.where(t == 255, 1.0, np.where(t == 0, 0.0, alpha[0, 0].numpy()))
    assert np.abs(read_alpha(written[0]).astype(int) - np.round(expected * 255)).max() <= 1


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mattecli", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_cli_errors_are_one_line(datasets, tmp_path):
    common = ["train", "dim", "--data", str(datasets["train"]), "--out", str(tmp_path / "r"), "--recipe",
              "dim-quick", "--iters", "1", "--no-progress"]
    if not torch.cuda.is_available():
        done = cli(*common, "--device", "cuda")
        assert done.returncode == 2 and "CUDA is not available" in done.stderr
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    done = cli(*common, "--set", "optimizer=lbfgs")
    assert done.returncode == 2 and "optimizer" in done.stderr and "Traceback" not in done.stderr
    done = cli(*common, "--recipe", str(tmp_path / "nope.toml"))
    assert done.returncode == 2 and "nope.toml: recipe not found" in done.stderr
    done = cli(*common[:3], str(tmp_path / "missing"), *common[4:])
    assert done.returncode == 2 and "missing" in done.stderr and "Traceback" not in done.stderr


def test_torchrun_dim_cli_two_processes(datasets, tmp_path):
    """`torchrun --nproc-per-node 2 -m mattecli train dim` on gloo: rank 0 writes, both ranks agree."""
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "mattecli",
           "train", "dim", "--data", str(datasets["train"]), "--out", str(run), "--recipe", "dim-quick",
           "--stage", "encoder", "--iters", "2", *BATCH1, "--device", "cpu", *TINY]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    ckpt = load_checkpoint(run / "encoder" / "last.pt")
    assert ckpt["step"] == 2
    summary = json.loads((run / "encoder" / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert [x["step"] for x in read_log(run / "encoder" / "log.jsonl")] == [1, 2]


def test_cli_amp_bf16_and_compile_take_effect(datasets, tmp_path, monkeypatch):
    """`train dim --amp bf16 --compile`: the network runs in bf16 and goes through torch.compile."""
    compiled = []

    def spy_compile(model, *args, **kwargs):  # records the call; a real compile takes minutes on 2 cores
        compiled.append(type(model).__name__)
        return model

    monkeypatch.setattr(torch, "compile", spy_compile)
    runs = {}
    for name, flags in (("plain", []), ("amp", ["--amp", "bf16", "--compile"])):
        seen = conv_output_dtypes(lambda: runs.setdefault(name, invoke(
            "train", "dim", "--data", str(datasets["train"]), "--out", str(tmp_path / name), "--recipe", "dim-quick",
            "--stage", "encoder", "--iters", "1", "--batch-size", "2", "--device", "cpu", *flags, *TINY)))
        assert runs[name].exit_code == 0, runs[name].output
        assert set(seen) == {torch.bfloat16 if name == "amp" else torch.float32}
    assert compiled == ["DeepImageMatting"]
    summary = json.loads((tmp_path / "amp" / "encoder" / "summary.json").read_text())
    assert summary["precision"] == "bf16"


def test_matte_precision_bf16_runs_the_network_in_bf16(datasets, tmp_path):
    run = tmp_path / "run"
    r = invoke("train", "dim", "--data", str(datasets["train"]), "--out", str(run), "--recipe", "dim-quick",
               "--stage", "encoder", "--iters", "1", "--batch-size", "2", "--device", "cpu", *TINY)
    assert r.exit_code == 0, r.output
    record = read_manifest(datasets["test"])[0]
    merged, trimap = resolve(datasets["test"], record.merged_path), resolve(datasets["test"], record.trimap_path)
    alphas = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / precision
        seen = conv_output_dtypes(lambda: alphas.setdefault(precision, invoke(
            "matte", str(merged), "--trimap", str(trimap), "--weights", str(run / "best.pt"), "--out", str(out),
            "--device", "cpu", "--precision", precision, "--output", "alpha")))
        assert alphas[precision].exit_code == 0, alphas[precision].output
        assert set(seen) == {torch.bfloat16 if precision == "bf16" else torch.float32}
        assert precision in alphas[precision].output
        alphas[precision] = read_alpha(next((out / "alpha").rglob("*.png"))).astype(int)
    diff = np.abs(alphas["fp32"] - alphas["bf16"])
    assert diff.max() <= 8  # the same network: bf16 rounding only
