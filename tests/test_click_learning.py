"""The click network learns the task from the image, not only from the clicks.

Both tests train the click family's matting stage (its own losses, its own training samples:
new composites, crops and Geometric(1/6) simulated users every step) on small procedural
sources, and score a held-out set (other foregrounds and backgrounds) in eval mode, so the
batch-norm running statistics are the ones inference uses.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mattecli.data.samples import write_samples
from mattecli.data.sources import open_source
from mattecli.families.click.data import ClickTrainDataset
from mattecli.families.click.family import FAMILY
from mattecli.families.registry import build_model

SIZE = 64
STEPS = 50
BATCH = 8
LR = 2e-3
WHOLE = (0.8, 1.25)  # whole composites, subject scale jittered, as click-quick trains
RADIUS = 3.0
NET = {"depth": 18, "decoder_widths": [16, 16, 8, 8, 8], "refiner_channels": 8, "patch_size": 16,
       "click_radius": RADIUS, "train_size": SIZE}


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("clicklearn")
    write_samples(root / "train", seed=11, foregrounds=12, backgrounds=12, size=(64, 64))
    write_samples(root / "test", seed=12, foregrounds=6, backgrounds=6, size=(64, 64))
    train = ClickTrainDataset(open_source(root / "train"), seed=1, input_size=SIZE, radius=RADIUS,
                              whole_image_scales=WHOLE)
    test = ClickTrainDataset(open_source(root / "test"), seed=2, input_size=SIZE, radius=RADIUS,
                             whole_image_scales=WHOLE)
    held_out = _collate([test[i % len(test)] for i in range(16)])  # epoch 0 only: a fixed varied set
    return train, held_out


def _collate(items: list[dict]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def _held_out_loss(model, batch, blind: bool) -> float:
    model.eval()
    with torch.no_grad():
        b = {**batch, "image": torch.zeros_like(batch["image"]) if blind else batch["image"]}
        x = model.prepare_input(b["image"], b["clicks"])
        alpha = model(x, uncertainty=False)["alpha"]
    model.train()
    return float((alpha - b["alpha"]).abs().mean())


def _train(train_set: ClickTrainDataset, held_out: dict, blind: bool) -> tuple[float, float]:
    """(held-out whole-crop MAD before, after) STEPS Adam steps of the matting stage."""
    torch.manual_seed(0)
    model = build_model("click", NET)
    FAMILY.settings = {**FAMILY._settings({}), "transition_band": 2, "error_clicks": 0}
    optimizer = torch.optim.Adam(FAMILY.trainable_parameters(model, "matting"), lr=LR)
    before = _held_out_loss(model, held_out, blind)
    rng = np.random.default_rng(0)
    model.train()
    for step in range(STEPS):
        train_set.set_epoch(step)
        batch = _collate([train_set[int(i)] for i in rng.integers(0, len(train_set), BATCH)])
        if blind:
            batch["image"] = torch.zeros_like(batch["image"])
        loss = FAMILY.losses(model, batch, "matting")["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return before, _held_out_loss(model, held_out, blind)


@pytest.fixture(scope="module")
def seeing(sources):
    return _train(*sources, blind=False)


def test_held_out_error_falls_by_a_clear_factor(seeing):
    before, after = seeing
    print(f"held-out MAD {before:.4f} -> {after:.4f} (x{after / before:.3f}), threads {torch.get_num_threads()}")
    # measured (seeded, CPU, 50 steps): 0.398 -> 0.197 (x0.49) at 1 thread, -> 0.178 (x0.45) at 2;
    # the bound 0.7 leaves a margin of 29% or more
    assert after < 0.7 * before, (before, after)


def test_a_blind_network_does_measurably_worse_than_the_seeing_one(sources, seeing):
    _, seen = seeing
    _, blind = _train(*sources, blind=True)
    print(f"seeing {seen:.4f}, blind {blind:.4f} (x{seen / blind:.3f}), threads {torch.get_num_threads()}")
    # measured (seeded, CPU, 50 steps): 0.197 against 0.346 (x0.57) at 1 thread, 0.178 against 0.345
    # (x0.52) at 2; the bound 0.8 leaves a margin of 29% or more. Clicks alone tell the blind network
    # where the user clicked; the seeing one learns the subject's extent from the image
    assert seen < 0.8 * blind, (seen, blind)
