"""Background Matting training: both stages lower their loss, the adversarial step, resume, the captures layout."""
from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mattecli.cli.app import main
from mattecli.data.samples import write_samples
from mattecli.errors import BadInput
from mattecli.families.bgm.data import find_captures
from mattecli.families.registry import build_model, get_family
from mattecli.io.checkpoint import load_checkpoint, save_checkpoint
from mattecli.io.images import write_image
from mattecli.train.engine import train
from mattecli.train.recipe import build_recipe, stage_recipe

TINY = ["ngf=4", "nf_part=4", "n_blocks1=1", "n_blocks2=1", "input_size=32", "crop_sizes=[32, 40]", "base_size=0",
        "batch_size=2", "workers=0", "val_every=0", "checkpoint_every=1", "log_every=1", "lr=1e-3",
        "trimap_iterations=[1, 3]", "cue_scale=0.0625"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bgmdata")
    write_samples(root / "src", seed=4, foregrounds=4, backgrounds=4, size=(48, 40))
    # captures: one clip of a square moving over a plate, two target backgrounds
    rng = np.random.default_rng(0)
    plate = (rng.random((40, 48, 3)) * 255).astype(np.uint8)
    clip = root / "cap" / "clips" / "c1"
    for i in range(5):
        frame = plate.copy()
        frame[10:30, 8 + 3 * i:24 + 3 * i] = (200, 60, 40)
        write_image(clip / "frames" / f"{i:03d}.png", frame)
    write_image(clip / "background.png", plate)
    for i in range(2):
        write_image(root / "cap" / "targets" / f"t{i}.png", (rng.random((40, 48, 3)) * 255).astype(np.uint8))
    return {"adobe": root / "src", "captures": root / "cap", "root": root}


def recipe(*extra: str, stage: str = "adobe") -> dict:
    return stage_recipe(build_recipe("bgm-quick", TINY + list(extra), {}), stage)


def _batch(ds, n: int = 2) -> dict:
    items = [ds[i] for i in range(n)]
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def test_adobe_steps_lower_the_loss(data):
    fam = get_family("bgm")
    r = recipe()
    torch.manual_seed(0)
    model = build_model("bgm", fam.model_config(r)).train()
    params = list(fam.trainable_parameters(model, "adobe"))
    batch = _batch(fam.train_dataset(r, str(data["adobe"]), 0))
    assert batch["motion"].shape[1] == 4 and batch["segmentation"].shape[1] == 1
    opt = torch.optim.Adam(params, lr=1e-3)
    losses = []
    for _ in range(8):
        loss = fam.losses(model, batch, "adobe")["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


@pytest.fixture(scope="module")
def teacher(data) -> Path:
    fam = get_family("bgm")
    config = fam.model_config(recipe())
    torch.manual_seed(1)
    net = build_model("bgm", config)
    path = data["root"] / "teacher.pt"
    save_checkpoint(path, {"family": "bgm", "model_config": config, "model": net.state_dict()})
    return path


def test_real_step_updates_d_and_g_as_specified(data, teacher):
    fam = get_family("bgm")
    r = recipe(f'teacher="{teacher}"', stage="real")
    config = fam.model_config(r)
    assert config["discriminator"] is True
    torch.manual_seed(0)
    model = build_model("bgm", config).train()
    # the engine loads the previous stage's weights: the family must re-initialise the student
    model.load_state_dict(load_checkpoint(teacher)["model"], strict=False)
    params = list(fam.trainable_parameters(model, "real"))
    assert not any(torch.equal(model.alpha_head[9].weight, fam._teacher.alpha_head[9].weight) for _ in [0])
    assert all(not p.requires_grad for p in model.discriminator.parameters())
    ds = fam.train_dataset(r, str(data["captures"]), 0)
    batch = _batch(ds)
    opt = torch.optim.Adam(params, lr=1e-3)
    d_before = copy.deepcopy(model.discriminator.patch)
    g_before = [p.detach().clone() for p in params]
    losses = []
    for step in range(7):
        d_prev = [p.detach().clone() for p in model.discriminator.parameters()]
        if step == 0:  # L_G's adversarial term uses D before this step's update
            with torch.no_grad():
                alpha, fg = model(*fam._inputs(batch))
        parts = fam.losses(model, batch, "real")
        if step == 0:
            from mattecli.families.bgm.family import adversarial_composite
            from mattecli.families.bgm.losses import lsgan
            from mattecli.families.bgm.model import to_signed
            fake = adversarial_composite(alpha, fg, to_signed(batch["image"]), to_signed(batch["plate"]),
                                         to_signed(batch["target"]), batch["use_target"], batch["shift"])
            assert parts["gan"].item() == pytest.approx(lsgan(d_before(fake), True).item(), rel=1e-4)
        opt.zero_grad()
        parts["loss"].backward()
        opt.step()
        losses.append(parts["loss"].item())
        moved = any(not torch.equal(a, b) for a, b in zip(d_prev, model.discriminator.parameters()))
        assert moved == (step % 5 == 0), step  # D once every 5 G steps
        assert all(p.grad is None for p in model.discriminator.parameters() if not moved)
    assert any(not torch.equal(a, b) for a, b in zip(g_before, params))
    assert parts["pseudo_weight"].item() == pytest.approx(0.05)
    assert losses[-1] < losses[0]
    # the teacher never moves
    t_state = load_checkpoint(teacher)["model"]
    assert all(torch.equal(v, t_state[k]) for k, v in fam._teacher.state_dict().items())


def _weights(path: Path) -> dict:
    return load_checkpoint(path)["model"]


@pytest.mark.parametrize("stage", ["adobe", "real"])
def test_resume_matches_an_uninterrupted_run(data, teacher, tmp_path, stage):
    extra = [f'stages.real.teacher="{teacher}"', "d_every=2"]
    r = build_recipe("bgm-quick", TINY + extra + [f"stages.{stage}.iters=3"], {})
    source = data["adobe"] if stage == "adobe" else data["captures"]
    train(get_family("bgm"), r, source, tmp_path / "a", stage=stage, show_progress=False)
    train(get_family("bgm"), r, source, tmp_path / "b", stage=stage, show_progress=False, stop_after=2)
    train(get_family("bgm"), r, source, tmp_path / "b", stage=stage, show_progress=False, resume=True)
    a, b = _weights(tmp_path / "a" / stage / "last.pt"), _weights(tmp_path / "b" / stage / "last.pt")
    for k in a:
        if torch.is_tensor(a[k]):
            assert torch.allclose(a[k].float(), b[k].float(), atol=1e-6), k
    if stage == "real":
        assert int(a["discriminator.generator_steps"]) == 3
        assert float(a["discriminator.adam_step"]) == 2  # D's Adam (steps 0 and 2 with d_every=2) travels with the weights


def run_cli(args, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["mattecli", *map(str, args)])
    with pytest.raises(SystemExit) as exc:
        main()
    return exc.value.code, capsys.readouterr().err


def test_captures_layout_is_checked(data, tmp_path, capsys, monkeypatch):
    caps = find_captures(data["captures"])
    assert len(caps.clips) == 1 and len(caps.clips[0].frames) == 5 and len(caps.targets) == 2
    bad = tmp_path / "cap"
    (bad / "clips" / "c1" / "frames").mkdir(parents=True)
    write_image(bad / "clips" / "c1" / "frames" / "0.png", np.zeros((8, 8, 3), np.uint8))
    write_image(bad / "targets" / "t.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(BadInput, match="background.png"):
        find_captures(bad)
    write_image(bad / "clips" / "c1" / "background.png", np.zeros((9, 8, 3), np.uint8))
    with pytest.raises(BadInput, match="is 8x8, the plate"):
        find_captures(bad)
    for args, problem in ((["--data", str(tmp_path)], "no clips/"),
                          (["--data", str(data["captures"])], "no adobe-stage teacher")):
        code, err = run_cli(["train", "bgm", *args, "--out", str(tmp_path / "run"), "--stage", "real",
                             "--recipe", "bgm-quick", "--no-progress"], capsys, monkeypatch)
        assert code == 2 and problem in err and "Traceback" not in err and len(err.strip().splitlines()) <= 2
