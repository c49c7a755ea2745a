"""The click network learns the task from the image, and it reads the clicks.

The tests train the click family's matting stage (its own losses, its own training samples:
new composites, whole-image views, Geometric(1/6) simulated users and, as click-quick, a
second unclicked subject in half the samples every step) on small procedural sources, and
score held-out sets (other foregrounds and backgrounds) in eval mode, so the batch-norm
running statistics are the ones inference uses.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from mattecli.data.clicks import Click, click_maps, interior_clicks
from mattecli.data.samples import write_samples
from mattecli.data.sources import image_tensor, open_source, read_pair
from mattecli.io.images import read_rgb
from mattecli.families.click.data import ClickTrainDataset
from mattecli.families.click.family import FAMILY
from mattecli.families.registry import build_model

SIZE = 64
STEPS = 100  # 50 were enough for the image; the clicks' U channel, alive from the start, needs more
BATCH = 8
LR = 2e-3
WHOLE = (0.8, 1.25)  # whole composites, subject scale jittered, as click-quick trains
RADIUS = 3.0
WIDE = 3 * SIZE // 2  # two-subject scenes: SIZE x WIDE, a subject in each half, at the training scale
DISTRACTOR = 0.5  # as click-quick: half the samples with a foreground click get a second subject
NET = {"depth": 18, "decoder_widths": [16, 16, 8, 8, 8], "refiner_channels": 8, "patch_size": 16,
       "click_radius": RADIUS, "train_size": SIZE}


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("clicklearn")
    write_samples(root / "train", seed=11, foregrounds=12, backgrounds=12, size=(64, 64))
    write_samples(root / "test", seed=12, foregrounds=6, backgrounds=6, size=(64, 64))
    train = ClickTrainDataset(open_source(root / "train"), seed=1, input_size=SIZE, radius=RADIUS,
                              whole_image_scales=WHOLE, distractor_prob=DISTRACTOR)
    test = ClickTrainDataset(open_source(root / "test"), seed=2, input_size=SIZE, radius=RADIUS,
                             whole_image_scales=WHOLE)
    held_out = _collate([test[i % len(test)] for i in range(16)])  # epoch 0 only: a fixed varied set
    return train, held_out, root / "test"


def _placed(fg: np.ndarray, alpha: np.ndarray, centre_x: int) -> tuple[np.ndarray, np.ndarray]:
    """A subject cut to its alpha's box, shrunk (never enlarged) to fit a (SIZE * 3/4 - 4) x (SIZE - 4)
    box, centred at (centre_x, SIZE/2) of an empty SIZE x WIDE frame: float fg HxWx3 and alpha HxW."""
    ys, xs = np.nonzero(alpha)
    fg, alpha = fg[ys.min():ys.max() + 1, xs.min():xs.max() + 1], alpha[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    k = min(1.0, (WIDE // 2 - 4) / alpha.shape[1], (SIZE - 4) / alpha.shape[0])
    w, h = max(1, round(alpha.shape[1] * k)), max(1, round(alpha.shape[0] * k))
    fg, alpha = cv2.resize(fg, (w, h), interpolation=cv2.INTER_AREA), cv2.resize(alpha, (w, h), interpolation=cv2.INTER_AREA)
    top, left = SIZE // 2 - h // 2, centre_x - w // 2
    out_fg, out_alpha = np.zeros((SIZE, WIDE, 3), np.float32), np.zeros((SIZE, WIDE), np.float32)
    out_fg[top:top + h, left:left + w] = fg / 255.0
    out_alpha[top:top + h, left:left + w] = alpha / 255.0
    return out_fg, out_alpha


@pytest.fixture(scope="module")
def two_subjects(sources) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    return _two_subject_batch(sources[2])


def _two_subject_batch(test_dir) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Held-out scenes of two subjects side by side (test foregrounds i and i + 1 at about their
    training scale, a test background), each matted twice: clicks on the left subject (a foreground click at its deepest
    point, a background click at the right one's), then on the right one. Returns the batch (all
    first clicks, then all second) and the alpha of the subject that was NOT clicked, per item."""
    source = open_source(test_dir)
    n = len(source.samples)
    images, clicks, clicked, other = [], [], [], []
    for i in range(n):
        (fg_l, a_l), (fg_r, a_r) = (_placed(*read_pair(source.samples[j]), x)
                                    for j, x in ((i, WIDE // 4), ((i + 1) % n, 3 * WIDE // 4)))
        bg = cv2.resize(read_rgb(source.backgrounds[i % len(source.backgrounds)]), (WIDE, SIZE),
                        interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        # no overlap: the right subject over the background, then the left one, computed here
        image = a_l[..., None] * fg_l + (1 - a_l[..., None]) * (a_r[..., None] * fg_r + (1 - a_r[..., None]) * bg)
        deep_l, deep_r = interior_clicks(a_l, 1, 0)[0], interior_clicks(a_r, 1, 0)[0]
        for (target, fg_click), (rest, bg_click) in (((a_l, deep_l), (a_r, deep_r)), ((a_r, deep_r), (a_l, deep_l))):
            images.append(torch.from_numpy(image.transpose(2, 0, 1).copy()))
            clicks.append(torch.from_numpy(click_maps([fg_click, Click(bg_click.x, bg_click.y, False)], SIZE, WIDE,
                                                      RADIUS)))
            clicked.append(torch.from_numpy(target)[None])
            other.append(torch.from_numpy(rest)[None])
    return {"image": torch.stack(images), "clicks": torch.stack(clicks), "alpha": torch.stack(clicked)}, \
        torch.stack(other)


def _collate(items: list[dict]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def _predict(model, image: torch.Tensor, clicks: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        alpha = model(model.prepare_input(image, clicks), uncertainty=False)["alpha"]
    model.train()
    return alpha


def _held_out_loss(model, batch, blind: bool) -> float:
    image = torch.zeros_like(batch["image"]) if blind else batch["image"]
    return float((_predict(model, image, batch["clicks"]) - batch["alpha"]).abs().mean())


def _train(train_set: ClickTrainDataset, held_out: dict, blind: bool) -> tuple[float, float, torch.nn.Module]:
    """(held-out whole-crop MAD before, after, the model) STEPS Adam steps of the matting stage."""
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
    return before, _held_out_loss(model, held_out, blind), model


@pytest.fixture(scope="module")
def seeing(sources):
    return _train(*sources[:2], blind=False)


def test_held_out_error_falls_by_a_clear_factor(seeing):
    before, after, _ = seeing
    print(f"held-out MAD {before:.4f} -> {after:.4f} (x{after / before:.3f}), threads {torch.get_num_threads()}")
    # measured (seeded, CPU, 100 steps): 0.398 -> 0.145 (x0.36) at 1 thread, -> 0.147 (x0.37) at 2;
    # the bound 0.7 leaves a margin of 47% or more
    assert after < 0.7 * before, (before, after)


def test_a_blind_network_does_measurably_worse_than_the_seeing_one(sources, seeing):
    _, seen, _ = seeing
    _, blind, _ = _train(*sources[:2], blind=True)
    print(f"seeing {seen:.4f}, blind {blind:.4f} (x{seen / blind:.3f}), threads {torch.get_num_threads()}")
    # measured (seeded, CPU, 100 steps): 0.145 against 0.291 (x0.50) at 1 thread, 0.147 against 0.233
    # (x0.63) at 2; the bound 0.8 leaves a margin of 21% or more. Clicks alone tell the blind network where
    # the user clicked; the seeing one learns the subject's extent from the image
    assert seen < 0.8 * blind, (seen, blind)


def test_swapping_the_clicks_labels_worsens_the_matte(sources, seeing):
    """The clicks are read: with every click's label swapped (foreground <-> background) the
    held-out error rises by a clear factor. A network that ignores the clicks scores the same."""
    _, seen, model = seeing
    swapped = _held_out_loss(model, {**sources[1], "clicks": sources[1]["clicks"].flip(1)}, blind=False)
    print(f"MAD with the clicks {seen:.4f}, labels swapped {swapped:.4f} (x{swapped / seen:.3f}), "
          f"threads {torch.get_num_threads()}")
    # measured (seeded, CPU, 100 steps): 0.145 -> 0.190 (x1.31) at 1 thread, 0.147 -> 0.188 (x1.28) at 2;
    # the bound 1.15 leaves a margin of 11% or more
    assert swapped > 1.15 * seen, (seen, swapped)


def test_the_prediction_follows_the_clicked_subject(seeing, two_subjects):
    """On unseen two-subject scenes the matte must follow the clicks: clicking the left subject
    (background click on the right one) must cut out the left one, and the other way round. A
    network that ignores the clicks gives the same matte both times, so its error against the
    clicked subject equals its error against the unclicked one (ratio 1)."""
    _, _, model = seeing
    batch, unclicked = two_subjects
    alpha = _predict(model, batch["image"], batch["clicks"])
    to_clicked = float((alpha - batch["alpha"]).abs().mean())
    to_unclicked = float((alpha - unclicked).abs().mean())
    print(f"MAD to the clicked subject {to_clicked:.4f}, to the unclicked one {to_unclicked:.4f} "
          f"(x{to_clicked / to_unclicked:.3f}), threads {torch.get_num_threads()}")
    # measured (seeded, CPU, 100 steps): x0.867 at 1 thread, x0.878 at 2: the matte is closer to the
    # clicked subject (bound 1.0, margin 12% or more). At this size and budget it is still a blurred pair
    # of blobs; the benchmark (BENCHMARKS.md, "train click") measures the same at click-quick's scale
    assert to_clicked < to_unclicked, (to_clicked, to_unclicked)
