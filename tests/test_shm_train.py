"""`mattecli train shm` on a tiny dataset; the checkpoint through matte, trimap, eval --weights; bad input."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from compose_helpers import composed_training_set
from mattecli.cli.app import app, main
from mattecli.data.manifest import read_manifest, resolve
from mattecli.data.samples import write_samples
from mattecli.families.registry import build_model, get_family, load_model
from mattecli.io.checkpoint import load_checkpoint, save_checkpoint
from mattecli.io.images import read_alpha, read_alpha_float, read_rgb
from mattecli.metrics import compute_metrics
from mattecli.train.engine import train
from mattecli.train.recipe import build_recipe, stage_recipe

#: the shm-quick recipe at test size: 16 px T-Net input, 64 px images, a width-4 M-Net and (as the recipe)
#: a T-Net of twice its width
TINY = {"infer_size": 16, "full_size": 64, "tnet_crop": 16, "mnet_crop": 32, "e2e_crop": 64, "tnet_width": 8,
        "mnet_width": 4, "batch_size": 2, "workers": 0, "log_every": 1, "val_every": 0, "tnet_trimap_kernel": 2}
TINY_SET = [f"{k}={v}" for k, v in TINY.items()]


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def run_main(argv: list, capsys, monkeypatch) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["mattecli", *map(str, argv)])
    with pytest.raises(SystemExit) as exc:
        main()
    return exc.value.code, capsys.readouterr().err


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("shmdata")
    write_samples(root / "src", seed=5, foregrounds=3, backgrounds=4, size=(64, 64))
    for name, seed in (("train", 1), ("test", 2)):
        composed_training_set(root / "src", root / name, seed)
    return {"train": root / "train", "test": root / "test", "root": root}


@pytest.fixture(scope="module")
def trained(datasets) -> Path:
    """All three stages, 2 steps each, through the CLI."""
    run = datasets["root"] / "run"
    set_args = [a for kv in TINY_SET for a in ("--set", kv)]
    r = invoke("train", "shm", "--data", str(datasets["train"]), "--val", str(datasets["test"]), "--out", str(run),
               "--recipe", "shm-quick", "--iters", "2", "--device", "cpu", "--no-progress", *set_args)
    assert r.exit_code == 0, (r.output, r.exception)
    return run


def _recipe(**extra) -> dict:
    return build_recipe("shm-quick", [], {**TINY, **extra})


@pytest.mark.parametrize("stage, mnet_input", [("tnet", "tnet"), ("mnet", "tnet"), ("mnet", "trimap"),
                                               ("e2e", "tnet")])
def test_a_few_steps_lower_each_stage_loss(datasets, stage, mnet_input):
    """Also the M-Net stage with each input (a perfect T-Net's probabilities, the paper's one-hot
    trimap); the soft input's loss covers every pixel that might be unknown, so it falls more slowly."""
    family = get_family("shm")
    flat = stage_recipe(_recipe(mnet_input=mnet_input), stage)
    torch.manual_seed(0)
    model = build_model("shm", family.model_config(flat)).train()
    data = family.train_dataset(flat, str(datasets["train"]), seed=3)
    batch = {k: torch.stack([data[i][k] for i in range(2)]) for k in data[0]}
    assert ("probs" in batch) == (stage == "mnet" and mnet_input == "tnet")
    params = list(family.trainable_parameters(model, stage))
    optimiser = torch.optim.Adam(params, lr=3e-3)
    losses = []
    for _ in range(16):
        loss = family.losses(model, batch, stage)["loss"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.85 * losses[0], losses
    frozen = {"tnet": model.mnet, "mnet": model.tnet, "e2e": None}[stage]
    if frozen is not None:
        assert all(not p.requires_grad for p in frozen.parameters())


def test_stages_chain_and_checkpoint_rebuilds_the_network(trained):
    tnet, mnet, e2e = (load_checkpoint(trained / s / "best.pt")["model"] for s in ("tnet", "mnet", "e2e"))
    # mnet starts from tnet's best and leaves the T-Net (and its batch-norm statistics) alone
    assert all(torch.equal(tnet[k], mnet[k]) for k in tnet if k.startswith("tnet."))
    assert any(not torch.equal(tnet[k], mnet[k]) for k in tnet if k.startswith("mnet."))
    # e2e trains both
    assert any(not torch.equal(mnet[k], e2e[k]) for k in mnet if k.startswith("tnet."))
    best = load_checkpoint(trained / "best.pt")
    assert best["family"] == "shm" and best["stage"] == "e2e" and best["model_config"]["infer_size"] == 16


def test_resume_equals_uninterrupted(datasets, tmp_path):
    recipe = _recipe(iters=3)
    train(get_family("shm"), recipe, datasets["train"], tmp_path / "a", stage="e2e", device="cpu", show_progress=False)
    train(get_family("shm"), recipe, datasets["train"], tmp_path / "b", stage="e2e", device="cpu", show_progress=False,
          stop_after=1)
    assert load_checkpoint(tmp_path / "b" / "e2e" / "last.pt")["step"] == 1
    train(get_family("shm"), recipe, datasets["train"], tmp_path / "b", stage="e2e", device="cpu", show_progress=False,
          resume=True)
    a = load_checkpoint(tmp_path / "a" / "e2e" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "b" / "e2e" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def _image(path: Path) -> torch.Tensor:
    return torch.from_numpy(read_rgb(path)).permute(2, 0, 1)[None].float() / 255


def test_matte_trimap_and_eval_with_the_checkpoint(trained, datasets, tmp_path, capsys, monkeypatch):
    weights = trained / "best.pt"
    images = datasets["test"] / "merged"
    model, _ = load_model(weights)
    code, err = run_main(["matte", images, "--weights", weights, "--out", tmp_path / "m", "--output", "alpha,trimap",
                          "--device", "cpu"], capsys, monkeypatch)
    assert code == 0, err
    names = sorted(p.name for p in images.iterdir())
    for name in names:
        out = model.predict(_image(images / name))
        want_alpha = np.rint(out["alpha"][0, 0].numpy() * 255)
        assert np.abs(read_alpha(tmp_path / "m" / "alpha" / name).astype(int) - want_alpha).max() <= 1
        want_trimap = np.array([0, 128, 255])[np.rint(out["trimap"][0, 0].numpy() * 2).astype(int)]
        assert np.array_equal(read_alpha(tmp_path / "m" / "trimap" / name), want_trimap)

    # trimap writes OUT/<name>.png, the same maps, which matte --trimap reads as they are
    code, err = run_main(["trimap", images, "--weights", weights, "--out", tmp_path / "t", "--device", "cpu"],
                         capsys, monkeypatch)
    assert code == 0, err
    for name in names:
        assert np.array_equal(read_alpha(tmp_path / "t" / name), read_alpha(tmp_path / "m" / "trimap" / name))
    code, err = run_main(["matte", images, "--trimap", tmp_path / "t", "--out", tmp_path / "c", "--output", "alpha"],
                         capsys, monkeypatch)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "c" / "alpha").iterdir()) == names

    # --infer-size reaches the T-Net
    code, err = run_main(["matte", images / names[0], "--weights", weights, "--out", tmp_path / "s", "--output",
                          "alpha", "--infer-size", "24", "--device", "cpu"], capsys, monkeypatch)
    assert code == 0, err
    model.set_infer_size(24)
    want = np.rint(model.predict(_image(images / names[0]))["alpha"][0, 0].numpy() * 255)
    assert np.abs(read_alpha(tmp_path / "s" / "alpha" / names[0]).astype(int) - want).max() <= 1

    # eval --weights predicts without guidance; --region all scores every pixel, with MAD
    report = tmp_path / "scores.json"
    code, err = run_main(["eval", tmp_path / "p", "--data", datasets["test"], "--weights", weights, "--device", "cpu",
                          "--region", "all", "--metrics", "sad,mse,mad", "--json", report, "--workers", "1"],
                         capsys, monkeypatch)
    assert code == 0, err
    scores = json.loads(report.read_text())
    assert scores["count"] == 3 and scores["region"] == "all"
    record = read_manifest(datasets["test"])[0]
    pred = read_alpha(tmp_path / "p" / f"{record.name}.png")
    gt = read_alpha_float(resolve(datasets["test"], record.alpha_path))
    mine = next(i for i in scores["images"] if i["name"] == record.name)
    assert mine["mad"] == pytest.approx(float(np.abs(pred / 255.0 - gt).mean()), abs=1e-6)
    assert mine["sad"] == pytest.approx(compute_metrics(pred, gt, None, ("sad",), region="all")["sad"])


def test_bad_input_is_one_line_and_exit_2(trained, datasets, tmp_path, capsys, monkeypatch):
    weights = trained / "best.pt"
    images = datasets["test"] / "merged"
    code, err = run_main(["matte", images, "--weights", weights, "--trimap", datasets["test"] / "trimap", "--out",
                          tmp_path / "x"], capsys, monkeypatch)
    assert code == 2 and "takes no guidance" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()
    dim = tmp_path / "dim.pt"
    save_checkpoint(dim, {"family": "dim", "model_config": {}, "model": build_model("dim").state_dict()})
    code, err = run_main(["trimap", images, "--weights", dim, "--out", tmp_path / "y"], capsys, monkeypatch)
    assert code == 2 and "predicts no trimap" in err and len(err.strip().splitlines()) == 1
    code, err = run_main(["matte", images, "--weights", dim, "--trimap", datasets["test"] / "trimap", "--out",
                          tmp_path / "z", "--infer-size", "64"], capsys, monkeypatch)
    assert code == 2 and "--infer-size" in err
    code, err = run_main(["matte", images, "--weights", weights, "--out", tmp_path / "w", "--infer-size", "20"],
                         capsys, monkeypatch)
    assert code == 2 and "multiple of 8" in err
    # --init-from with a checkpoint of another family
    r = invoke("train", "shm", "--data", str(datasets["train"]), "--out", str(tmp_path / "run2"), "--stage", "e2e",
               "--init-from", str(dim), "--recipe", "shm-quick", "--device", "cpu", "--no-progress")
    assert r.exit_code != 0 and "'dim' checkpoint" in str(r.exception)
    # an SHM run resumed with a checkpoint of another family
    (tmp_path / "run" / "e2e").mkdir(parents=True)
    save_checkpoint(tmp_path / "run" / "e2e" / "last.pt", {"family": "dim", "model_config": {}, "model": {},
                                                            "stage": "joint", "step": 1, "recipe": {}})
    r = invoke("train", "shm", "--data", str(datasets["train"]), "--out", str(tmp_path / "run"), "--stage", "e2e",
               "--resume", "--recipe", "shm-quick", "--device", "cpu", "--no-progress")
    assert r.exit_code != 0 and "holds a 'dim' run" in str(r.exception)


def test_export_and_weights_info(trained, datasets, tmp_path, capsys, monkeypatch):
    from mattecli.export.run import read_contract, run_exported

    weights = trained / "best.pt"
    model, _ = load_model(weights)
    image = _image(sorted((datasets["test"] / "merged").iterdir())[0])[..., :60, :52]  # not multiples of 16
    want = model.predict(image)
    for fmt, name in (("torchscript", "shm.ts"), ("onnx", "shm.onnx")):
        code, err = run_main(["export", weights, "--format", fmt, "--out", tmp_path / name], capsys, monkeypatch)
        assert code == 0, err
        contract = read_contract(tmp_path / name)
        assert [o["name"] for o in contract["outputs"]] == ["alpha", "trimap"]
        assert [i["name"] for i in contract["inputs"]] == ["image"] and contract["size_multiple"] == 16
        got = run_exported(tmp_path / name, image)
        assert got.shape == want["alpha"].shape
        assert float((got - want["alpha"]).abs().max()) <= 1e-4
    r = invoke("weights", "info", str(weights), "--json")
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    assert info["family"] == "shm" and info["guidance"] == "none" and info["stage"] == "e2e"
    assert info["parameters"] == sum(p.numel() for p in model.parameters())
