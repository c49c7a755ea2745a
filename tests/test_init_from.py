"""`train --init-from CKPT`: the first stage starts from a checkpoint's weights (not its optimiser)."""
from __future__ import annotations

import sys

import pytest
import torch

import train_tiny_family as tiny
from mattecli.errors import MatteError
from mattecli.io.checkpoint import load_checkpoint, save_checkpoint
from mattecli.train.engine import train
from mattecli.families.registry import get_family  # noqa: E402

BASE = {"iters": 3, "batch_size": 2, "checkpoint_every": 3, "log_every": 1, "train_samples": 6}


def _source(path, family="tiny"):
    torch.manual_seed(123)
    model = tiny.TinyMatter(width=6)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5)  # far from any init the engine would draw
    save_checkpoint(path, {"family": family, "model_config": {"width": 6, "refine": False}, "stage": "imported",
                           "model": model.state_dict()})
    return model.state_dict()


def test_init_from_loads_weights_and_starts_a_fresh_optimiser(tmp_path):
    src = _source(tmp_path / "src.pt")
    # lr 1e-30: updates vanish in float32, so the weights stay exactly what --init-from gave
    train(get_family("tiny"), {**BASE, "lr": 1e-30}, ".", tmp_path / "a", stage="base", device="cpu", show_progress=False,
          init_from=tmp_path / "src.pt")
    last = load_checkpoint(tmp_path / "a" / "base" / "last.pt")
    for k, v in src.items():
        assert torch.equal(last["model"][k], v), k
    assert last["step"] == 3
    assert all(int(s["step"]) == 3 for s in last["optimizer"]["state"].values())  # not a resumed optimiser
    # with a learning rate it trains on from there; without --init-from it starts elsewhere
    train(get_family("tiny"), {**BASE, "lr": 0.01}, ".", tmp_path / "b", stage="base", device="cpu", show_progress=False,
          init_from=tmp_path / "src.pt")
    train(get_family("tiny"), {**BASE, "lr": 0.01}, ".", tmp_path / "c", stage="base", device="cpu", show_progress=False)
    b = load_checkpoint(tmp_path / "b" / "base" / "last.pt")["model"]
    c = load_checkpoint(tmp_path / "c" / "base" / "last.pt")["model"]
    w = "body.0.weight"
    assert (b[w] - src[w]).abs().max() < 0.1 < (c[w] - src[w]).abs().max()


def test_init_from_refuses_another_family(tmp_path):
    _source(tmp_path / "dim.pt", family="dim")
    with pytest.raises(MatteError, match=r"a 'dim' checkpoint; --init-from needs a 'tiny' one"):
        train(get_family("tiny"), {**BASE, "lr": 1e-30}, ".", tmp_path / "a", stage="base", device="cpu", show_progress=False,
              init_from=tmp_path / "dim.pt")
    assert not (tmp_path / "a").exists()


def test_cli_init_from_errors_are_one_line(tmp_path, monkeypatch, capsys):
    from mattecli.cli.app import main

    _source(tmp_path / "tiny.pt")
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("COLUMNS", "250")
    for ckpt, expected in ((tmp_path / "tiny.pt", "a 'tiny' checkpoint; --init-from needs a 'dim' one"),
                           (tmp_path / "missing.pt", "missing.pt: checkpoint not found")):
        monkeypatch.setattr(sys, "argv", ["mattecli", "train", "dim", "--data", str(tmp_path / "data"),
                                          "--out", str(tmp_path / "run"), "--init-from", str(ckpt), "--no-progress"])
        with pytest.raises(SystemExit) as exc:
            main()
        err = capsys.readouterr().err
        assert exc.value.code == 2, err
        assert expected in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1


def test_weights_info_of_a_trained_checkpoint(tmp_path):
    from mattecli.weights.info import checkpoint_info

    train(get_family("tiny"), {**BASE, "lr": 0.01, "val_every": 0}, ".", tmp_path / "r", stage="base", val_dir=".",
          device="cpu", show_progress=False)
    info = checkpoint_info(tmp_path / "r" / "base" / "best.pt")
    assert info["family"] == "tiny" and info["stage"] == "base" and info["guidance"] == "trimap"
    assert info["steps_trained"] == 3 and info["provenance"] == {"origin": "trained here"}
    assert set(info["validation"]) >= {"sad", "mse", "grad", "conn"}
    assert info["best_sad"] == info["validation"]["sad"]
    assert info["recipe"]["lr"] == 0.01 and info["resumable"] is True
    assert info["parameters"] == sum(p.numel() for p in tiny.TinyMatter(width=6).parameters())
