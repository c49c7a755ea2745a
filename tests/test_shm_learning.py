"""SHM learns from the image: the T-Net's loss on a varied set falls by a clear factor, and a
blind T-Net (image zeroed) trained the same way ends with a clearly higher loss on that set.

Fresh procedural foregrounds and backgrounds (seeds no other test uses), composited on the fly by
the family's own tnet-stage pipeline (random backgrounds, scales 0.75-1.25, flips) over several
epochs, 48 px T-Net inputs, a width-8 T-Net, 150 Adam steps of batch 8. Measured at 1 / 2
threads: the seeing network's loss falls to 0.56x / 0.54x its start (bound 0.7x) and ends at
0.71x / 0.69x the blind one's (bound 0.85x). About 15 CPU-seconds per network. On 8 held-out composites this small T-Net
does NOT beat the blind one (cross-entropy with batch statistics 0.62 against 0.57): at this
scale it learns the training composites faster than the task (the benchmark, not this test,
measures generalisation: BENCHMARKS.md).
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mattecli.data.samples import write_samples
from mattecli.data.sources import find_samples
from mattecli.families.registry import build_model, get_family

SIDE = 48
STEPS = 150
BATCH = 8
FALL_BOUND = 0.7     # the seeing network's late training loss / its early loss
BLIND_BOUND = 0.85   # the seeing network's late training loss / the blind network's


def _composites(root: Path, seed: int, foregrounds: int, epochs: int) -> dict[str, torch.Tensor]:
    write_samples(root / f"src{seed}", seed=seed, foregrounds=foregrounds, backgrounds=2 * foregrounds,
                  size=(96, 96))
    recipe = {"infer_size": SIDE, "tnet_crop": SIDE, "tnet_trimap_kernel": 2, "tnet_trimap_iterations": 1,
              "check_files": False}
    data = get_family("shm").train_dataset({**recipe, "stage": "tnet"}, str(root / f"src{seed}"), seed=seed)
    items = []
    for epoch in range(epochs):
        data.set_epoch(epoch)
        items += [data[i] for i in range(len(data))]
    return {k: torch.stack([it[k] for it in items]) for k in ("image", "classes")}


@pytest.fixture(scope="module")
def varied(tmp_path_factory) -> dict:
    return _composites(tmp_path_factory.mktemp("shm-learning"), 71, 12, 4)


def _train(train: dict, blind: bool) -> tuple[float, float]:
    """Mean training loss of the first 10 and the last 20 steps."""
    family = get_family("shm")
    torch.manual_seed(0)
    model = build_model("shm", {"infer_size": SIDE, "tnet_width": 8, "mnet_width": 4}).train()
    optimiser = torch.optim.Adam(list(family.trainable_parameters(model, "tnet")), lr=3e-3)
    picks = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(STEPS):
        idx = torch.randint(len(train["image"]), (BATCH,), generator=picks)
        image = train["image"][idx]
        batch = {"image": torch.zeros_like(image) if blind else image, "classes": train["classes"][idx]}
        loss = family.losses(model, batch, "tnet")["loss"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return sum(losses[:10]) / 10, sum(losses[-20:]) / 20


def test_tnet_loss_falls_and_a_blind_tnet_does_worse(varied):
    early, late = _train(varied, blind=False)
    assert late < FALL_BOUND * early, (early, late)
    _, blind_late = _train(varied, blind=True)
    assert late < BLIND_BOUND * blind_late, (late, blind_late)
