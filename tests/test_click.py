"""Click matting (Wei et al. 2021): click maps, losses, patches, simulated users, the protocol, training."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from mattecli.data.clicks import Click, click_maps, constraint_map, first_click, next_click, signed_click_map
from mattecli.errors import BadInput
from mattecli.families.click.data import simulate_clicks
from mattecli.families.click.losses import (gradient_loss, laplace_nll, refinement_loss, regression_loss,
                                            transition_band)
from mattecli.families.click.model import ClickMatting, paste_patches, select_patches
from mattecli.families.registry import build_model

TINY = {"decoder_widths": [16, 16, 8, 8, 8], "refiner_channels": 8, "patch_size": 16, "train_size": 32,
        "click_radius": 3.0}


# ----------------------------------------------------------------------------- click maps

def test_click_map_radius_sign_and_overlap():
    # a disk of radius 2 around (5, 4): pixel (7, 4) is at distance 2 (in), (7, 5) at sqrt(5) (out)
    u = signed_click_map([Click(5, 4, True)], 10, 12, radius=2)
    assert u[4, 7] == 1 and u[4, 3] == 1 and u[6, 5] == 1 and u[5, 7] == 0 and u[4, 8] == 0
    assert u.sum() == 13  # the lattice points within distance 2: 1 + 4 + 4 + 4
    u = signed_click_map([Click(5, 4, False)], 10, 12, radius=2)
    assert set(np.unique(u)) == {-1.0, 0.0} and u[4, 5] == -1
    # overlap: the later click wins, in every encoding
    clicks = [Click(3, 3, True), Click(5, 3, False)]
    u = signed_click_map(clicks, 8, 10, radius=2)
    assert u[3, 4] == -1 and u[3, 1] == 1 and u[3, 7] == -1
    assert signed_click_map(clicks[::-1], 8, 10, radius=2)[3, 4] == 1
    maps = click_maps(clicks, 8, 10, radius=2)
    assert np.array_equal(maps[0] - maps[1], u) and not np.any(maps[0] * maps[1])
    labels = constraint_map(clicks, 8, 10, radius=2)
    assert labels[3, 4] == 0 and labels[3, 1] == 255 and labels[0, 9] == 128


def test_click_outside_the_image_is_one_line():
    with pytest.raises(BadInput) as exc:
        signed_click_map([Click(12, 3, True)], 8, 12, radius=2, path="clicks.json")
    assert "outside the 12x8 image" in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(BadInput):
        click_maps([Click(0, -0.5, False)], 8, 12)


def test_inference_radius_is_the_training_radius_in_network_pixels():
    # the global pass shrinks images longer than global_side; the disk must still cover r network pixels
    model = ClickMatting(**{**TINY, "click_radius": 15.0, "train_size": 320, "global_side": 1024})
    assert model.click_radius_for(1080, 1920) == pytest.approx(15.0 * 1920 / 1024)
    assert model.click_radius_for(720, 1280) == pytest.approx(15.0 * 1280 / 1024)
    assert model.click_radius_for(200, 300) == 15.0 and model.click_radius_for(1024, 640) == 15.0


def _disk_pixels(radius: float) -> int:
    """Lattice points within ``radius`` of a pixel centre, counted here from the definition."""
    r = int(math.floor(radius))
    return sum(1 for dy in range(-r, r + 1) for dx in range(-r, r + 1) if dx * dx + dy * dy <= radius * radius)


def test_the_same_click_covers_the_same_disk_in_network_space_at_training_and_inference(dataset, tmp_path,
                                                                                       monkeypatch):
    """A foreground click at training (disk drawn on the resized crop) and through ``matte
    --clicks --weights`` (LearnedMethod, on images smaller and larger than global_side) covers
    the same number of pixels of the network's input: click_radius network pixels."""
    import mattecli.families.click.data as click_data
    from mattecli.families.click.data import ClickTrainDataset
    from mattecli.data.sources import open_source
    from mattecli.inference.batch import Item, Job
    from mattecli.inference.methods import LearnedMethod
    from mattecli.io.checkpoint import save_checkpoint

    radius = 6.0
    expected = _disk_pixels(radius)
    monkeypatch.setattr(click_data, "simulate_clicks", lambda alpha, rng, *a, **k: [Click(16.0, 16.0, True)])
    train_set = ClickTrainDataset(open_source(dataset), seed=0, crop_sizes=(40,), input_size=32, radius=radius)
    assert int(train_set[0]["clicks"][0].sum()) == expected

    torch.manual_seed(0)
    model = build_model("click", {**TINY, "click_radius": radius, "train_size": 32, "global_side": 96})
    save_checkpoint(tmp_path / "c.pt", {"family": "click", "model_config": model.config, "model": model.state_dict(),
                                        "stage": "matting"})
    method = LearnedMethod(tmp_path / "c.pt", torch.device("cpu"))
    seen = []
    method.model.encoder.register_forward_pre_hook(lambda module, args: seen.append(args[0][0, 3].clone()))
    for h, w in ((64, 80), (192, 288), (300, 120)):  # native, shrunk by 1/3, shrunk by 0.32
        click = Click(w / 2, h / 2, True)
        job = Job(Item(tmp_path / "x.png", Path("x.png"), Path("x.png")), np.zeros((h, w, 3), np.uint8), [click],
                  "clicks")
        seen.clear()
        result = list(method.run(iter([job])))[0][1]
        assert not isinstance(result, Exception), result
        covered = int((seen[0] > 0).sum())
        assert abs(covered - expected) <= 0.12 * expected, (h, w, covered, expected)


# ----------------------------------------------------------------------------- losses by hand

def test_regression_loss_l1_on_transition_l2_elsewhere():
    gt = torch.tensor([[[[0.0, 0.5, 1.0, 1.0]]]])
    pred = torch.tensor([[[[0.2, 0.1, 0.7, 1.0]]]])
    band = transition_band(gt, band=0)
    assert band.flatten().tolist() == [0, 1, 0, 0]
    expected = abs(0.1 - 0.5) / 1 + (0.2 ** 2 + 0.3 ** 2 + 0.0) / 3
    assert regression_loss(pred, gt, band).item() == pytest.approx(expected, rel=1e-6)
    assert transition_band(gt, band=1).flatten().tolist() == [1, 1, 1, 0]


def test_gradient_loss_by_hand():
    gt = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])
    pred = torch.tensor([[[[0.0, 0.5], [0.5, 0.5]]]])
    # dx errors: (0.5 - 1), (0 - 1) -> mean 0.75; dy errors: (0.5 - 0), (0 - 0) -> mean 0.25
    assert gradient_loss(pred, gt).item() == pytest.approx(1.0)


def test_laplace_nll_by_hand_and_minimised_at_the_error():
    pred = torch.tensor([0.2, 0.9])
    gt = torch.tensor([0.5, 0.8])
    sigma = torch.tensor([0.1, 0.4])
    expected = (math.log(0.1) + 0.3 / 0.1 + math.log(0.4) + 0.1 / 0.4) / 2
    assert laplace_nll(sigma, pred, gt).item() == pytest.approx(expected, abs=1e-6)
    for error in (0.05, 0.3, 0.7):
        grid = torch.linspace(0.01, 1.5, 1491)
        values = torch.stack([laplace_nll(s.view(1), torch.zeros(1), torch.full((1,), error)) for s in grid])
        assert grid[int(values.argmin())].item() == pytest.approx(error, abs=1e-3)
        s = torch.tensor([error], requires_grad=True)
        laplace_nll(s, torch.zeros(1), torch.full((1,), error)).backward()
        assert abs(s.grad.item()) < 1e-5


def test_refinement_loss_mines_the_hardest_fifth():
    pred = torch.zeros(1, 1, 2, 5)
    gt = torch.tensor([[[[0.1, 0.2, 0.3, 0.4, 0.5], [0.6, 0.7, 0.8, 0.9, 1.0]]]])
    # 10 pixels: mean error 0.55; the 2 hardest (20%) are 1.0 and 0.9 -> 0.95
    assert refinement_loss(pred, gt, 0.2, 1.0).item() == pytest.approx(0.55 + 0.95)
    assert refinement_loss(pred, gt, 0.2, 0.5).item() == pytest.approx(0.55 + 0.475)


# ----------------------------------------------------------------------------- patches

def test_patch_selection_takes_the_most_uncertain_without_overlap():
    sigma = torch.zeros(64, 64)
    sigma[40:48, 40:48] = 5.0   # the hottest spot
    sigma[0:8, 0:8] = 3.0
    sigma[44:52, 20:28] = 2.0   # near the first: its best window overlaps the first's
    boxes = select_patches(sigma, 16, budget=2, stride=4)
    assert len(boxes) == 2
    (y0, x0, y1, x1), second = boxes
    assert y1 - y0 == 16 and x1 - x0 == 16 and y0 <= 40 and y1 >= 48 and x0 <= 40 and x1 >= 48
    assert second == (0, 0, 16, 16)
    many = select_patches(sigma, 16, budget=100, stride=4)
    assert 9 <= len(many) <= 16  # greedy packing: at most 16 disjoint 16x16 windows in 64x64
    grid = select_patches(sigma, 16, budget=100, stride=16)
    assert len(grid) == 16 and grid[0] == (32, 32, 48, 48)  # on a stride-k grid every tile is taken
    for i, a in enumerate(many):
        for b in many[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
    assert select_patches(sigma, 16, budget=0) == []
    assert select_patches(torch.rand(10, 12), 16, budget=3) == [(0, 0, 10, 12)]  # smaller than a patch


def test_refinement_pastes_only_inside_the_patches():
    torch.manual_seed(0)
    model = build_model("click", {**TINY, "refine_patches": 2}).eval()
    torch.nn.init.constant_(model.refiner.out.bias, 2.0)  # a refiner that changes every patch pixel
    image = torch.rand(1, 3, 40, 48)
    alpha = torch.rand(1, 1, 40, 48) * 0.8 + 0.1
    sigma = torch.zeros(1, 1, 40, 48)
    sigma[..., 30:36, 30:40] = 1.0
    refined, boxes = model.refine(image, alpha, sigma, budget=2)
    assert len(boxes[0]) == 2
    inside = torch.zeros(40, 48, dtype=torch.bool)
    for y0, x0, y1, x1 in boxes[0]:
        inside[y0:y1, x0:x1] = True
    assert torch.equal(refined[0, 0][~inside], alpha[0, 0][~inside])
    assert torch.all(refined[0, 0][inside] > alpha[0, 0][inside])
    plain = paste_patches(alpha[0], [(0, 0, 2, 2)], torch.ones(1, 1, 2, 2))
    assert plain[0, :2, :2].eq(1).all() and torch.equal(plain[0, 2:], alpha[0, 0, 2:])


def test_an_untrained_refiner_and_budget_zero_leave_alpha_unchanged():
    torch.manual_seed(0)
    model = build_model("click", TINY).eval()
    image, clicks = torch.rand(1, 3, 36, 40), torch.zeros(1, 2, 36, 40)
    clicks[0, 0, 10:14, 10:14] = 1
    a = model.predict(image, clicks, refine_patches=0)
    b = model.predict(image, clicks, refine_patches=3)
    assert a["patches"] == [[]] and len(b["patches"][0]) >= 1
    assert torch.allclose(a["alpha"], b["alpha"], atol=1e-6)  # the last conv starts at zero
    assert a["uncertainty"].min() > 0


# ----------------------------------------------------------------------------- simulated users

def test_training_click_count_is_the_papers_geometric_one_sixth():
    """m ~ Geometric(1/6) on {1, 2, ...} (mean 6) as the paper states, through the family's own
    defaults; the recipe's cap only clips the tail (formula computed here)."""
    from mattecli.families.click.family import FAMILY

    settings = FAMILY._settings({})
    p, cap, fg_prob = settings["geometric_p"], settings["max_clicks"], settings["fg_prob"]
    assert p == pytest.approx(1 / 6)
    alpha = np.zeros((40, 40), np.float32)
    alpha[10:30, 10:30] = 1.0  # both regions present: no click is ever left out
    rng = np.random.default_rng(7)
    n = 20000
    draws = [simulate_clicks(alpha, rng, p, cap, fg_prob) for _ in range(n)]
    counts = np.array([len(d) for d in draws])
    top = cap if cap else counts.max()
    freq = np.bincount(counts, minlength=top + 1)[1:] / n
    pmf = np.array([p * (1 - p) ** (k - 1) for k in range(1, top + 1)])
    if cap:
        pmf[-1] = (1 - p) ** (cap - 1)  # the clipped tail lands on the cap
    assert np.abs(freq - pmf).max() < 0.01, (freq[:6], pmf[:6])
    mean = float((np.arange(1, top + 1) * pmf).sum())
    assert mean > 5.9 and counts.mean() == pytest.approx(mean, abs=0.12)
    # no click has a forced label: the first one is foreground with probability fg_prob
    first_fg = np.mean([d[0].positive for d in draws])
    assert abs(first_fg - fg_prob) < 0.02


def test_training_clicks_land_on_opaque_and_clear_pixels():
    alpha = np.zeros((32, 32), np.float32)
    alpha[8:24, 8:24] = 1.0
    alpha[8:24, 6:8] = 0.5
    rng = np.random.default_rng(3)
    seen = {True: 0, False: 0}
    for _ in range(200):
        clicks = simulate_clicks(alpha, rng)
        for c in clicks:
            assert alpha[int(c.y), int(c.x)] == (1.0 if c.positive else 0.0)
            seen[c.positive] += 1
    assert seen[True] > 0 and seen[False] > 0


def test_protocol_clicks_the_deepest_point_of_the_larger_error():
    gt = np.zeros((21, 31), np.float32)
    gt[5:16, 5:16] = 1.0                       # an 11x11 square centred at (10, 10)
    assert first_click(gt) == Click(10.0, 10.0, True)
    pred = gt.copy()
    pred[5:12, 5:12] = 0.0                     # missed: a 7x7 block (49 pixels) centred at (8, 8)
    pred[0:3, 20:31] = 1.0                     # taken: 3 x 11 = 33 pixels, fewer
    assert next_click(pred, gt) == Click(8.0, 8.0, True)
    pred = gt.copy()
    pred[6:15, 20:29] = 0.9                    # only background taken: a 9x9 block centred at (24, 10)
    assert next_click(pred, gt) == Click(24.0, 10.0, False)
    assert next_click(gt, gt) is None


def test_simulate_records_scores_per_click_and_stops_when_right(tmp_path):
    from mattecli.inference.click_protocol import ProtocolImage, simulate
    from mattecli.inference.methods import Method
    from mattecli.io.images import write_image

    gt = np.zeros((24, 24), np.float32)
    gt[4:20, 4:20] = 1.0
    write_image(tmp_path / "a.png", np.zeros((24, 24, 3), np.uint8))
    write_image(tmp_path / "a_gt.png", (gt * 255).astype(np.uint8))

    class GrowingMethod(Method):
        """Alpha = the fg click disks of radius 3 * clicks (a method that gets better with clicks)."""

        name = "fake"
        guidance_kinds = ("clicks",)
        seen: list = []

        def run(self, jobs):
            for job in jobs:
                self.seen.append(list(job.guidance))
                u = signed_click_map(job.guidance, 24, 24, radius=4 * len(job.guidance))
                yield job, ((u > 0).astype(np.float32) * gt, None)

    method = GrowingMethod(torch.device("cpu"))
    curve = simulate(method, [ProtocolImage("a", tmp_path / "a.png", tmp_path / "a_gt.png")], 5, ("sad", "mse"))
    im = curve.images[0]
    assert len(im.scores) == 5 and method.seen[0] == [Click(11.0, 11.0, True)]
    sads = [s["sad"] for s in im.scores]
    assert sads[0] > sads[1] and all(b <= a for a, b in zip(sads, sads[1:]))
    # with 2 clicks of radius 8 the square is found; the user stops and later scores repeat
    assert im.stopped_at is not None and sads[-1] == sads[im.stopped_at - 1]
    assert len(method.seen) == im.stopped_at
    assert curve.clicks_to_reach(sads[1]) == [2] and curve.clicks_to_reach(-1.0) == [6]
    again = simulate(GrowingMethod(torch.device("cpu")), [ProtocolImage("a", tmp_path / "a.png", tmp_path / "a_gt.png")],
                     5, ("sad", "mse"))
    first, second = curve.to_json(1.0), again.to_json(1.0)
    first.pop("seconds_per_click"), second.pop("seconds_per_click")
    assert first == second  # deterministic


# ----------------------------------------------------------------------------- training

def _batch(n: int = 2, size: int = 32):
    g = torch.Generator().manual_seed(0)
    alpha = torch.zeros(n, 1, size, size)
    alpha[:, :, 8:24, 10:22] = 1.0
    alpha[:, :, 8:24, 8:10] = 0.5
    image = alpha * torch.tensor([0.9, 0.2, 0.1]).view(1, 3, 1, 1) + (1 - alpha) * torch.rand(n, 3, size, size, generator=g)
    clicks = torch.from_numpy(np.stack([click_maps([Click(15, 15, True), Click(2, 2, False)], size, size, 3)] * n))
    return {"image": image, "alpha": alpha, "clicks": clicks, "seed": torch.arange(n, dtype=torch.int64),
            "radius": torch.full((n,), 3.0)}


@pytest.mark.parametrize("stage", ["matting", "uncertainty", "refine"])
def test_a_few_steps_lower_each_stage_loss(stage):
    from mattecli.families.click.family import FAMILY

    torch.manual_seed(0)
    model = build_model("click", TINY)
    FAMILY.settings = {**FAMILY._settings({}), "patch_size": 16, "transition_band": 1, "error_clicks": 1}
    params = list(FAMILY.trainable_parameters(model, stage))
    optimizer = torch.optim.Adam(params, lr=1e-2 if stage == "refine" else 3e-3)
    batch = _batch()
    model.train()
    losses = []
    for _ in range(6):
        loss = FAMILY.losses(model, batch, stage)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.95, losses
    trained = {id(p) for p in params}
    part = {"matting": model.alpha_decoder, "uncertainty": model.uncertainty_decoder, "refine": model.refiner}[stage]
    assert all(id(p) in trained for p in part.parameters())
    assert len(trained) == len(list(part.parameters())) + (len(list(model.encoder.parameters())) if stage == "matting" else 0)


def test_error_driven_clicks_are_added_where_the_prediction_is_wrong():
    from mattecli.families.click.family import FAMILY

    torch.manual_seed(0)
    model = build_model("click", TINY)
    batch = _batch(n=3)
    batch["clicks"].zero_()
    a = FAMILY.add_error_clicks(model, batch, max_extra=2)
    b = FAMILY.add_error_clicks(model, batch, max_extra=2)
    assert torch.equal(a, b)  # seeded by the sample
    assert a.sum() > 0 and torch.equal(FAMILY.add_error_clicks(model, batch, 0), batch["clicks"])


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    from compose_helpers import composed_training_set
    from mattecli.data.samples import write_samples

    root = tmp_path_factory.mktemp("clickdata")
    write_samples(root / "src", seed=3, foregrounds=2, backgrounds=3, size=(48, 40))
    return composed_training_set(root / "src", root / "data")


RECIPE = {"family": "click", "lr": 1e-3, "batch_size": 2, "iters": 2, "checkpoint_every": 1, "input_size": 32,
          "crop_sizes": [32, 40], "workers": 0, "seed": 4, "decoder_widths": [16, 16, 8, 8, 8], "refiner_channels": 8,
          "patch_size": 16, "click_radius": 3.0, "error_clicks": 1, "log_every": 1}


def test_resume_equals_uninterrupted(dataset, tmp_path):
    from mattecli.io.checkpoint import load_checkpoint
    from mattecli.train.engine import train
    from mattecli.families.registry import get_family  # noqa: E402
    from mattecli.train.logging import read_log

    kwargs = dict(stage="matting", device="cpu", show_progress=False)
    whole = train(get_family("click"), RECIPE, dataset, tmp_path / "whole", **kwargs)
    train(get_family("click"), RECIPE, dataset, tmp_path / "part", stop_after=1, **kwargs)
    resumed = train(get_family("click"), RECIPE, dataset, tmp_path / "part", resume=True, **kwargs)
    a = load_checkpoint(whole.stages[0].last_path)["model"]
    b = load_checkpoint(resumed.stages[0].last_path)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    la = [x["loss"] for x in read_log(tmp_path / "whole" / "matting" / "log.jsonl")]
    lb = [x["loss"] for x in read_log(tmp_path / "part" / "matting" / "log.jsonl")]
    assert la == lb and len(la) == 2


def test_train_cli_all_stages_then_matte_and_simulated_clicks(dataset, tmp_path):
    import json

    from typer.testing import CliRunner

    from mattecli.cli.app import app
    from mattecli.data.manifest import read_manifest
    from mattecli.io.checkpoint import load_checkpoint
    from mattecli.io.images import read_raw

    run = tmp_path / "run"
    sets = [a for k, v in RECIPE.items() if k not in ("family", "seed", "iters", "batch_size")
            for a in ("--set", f"{k}={json.dumps(v)}")]
    r = CliRunner().invoke(app, ["train", "click", "--data", str(dataset), "--val", str(dataset), "--out", str(run),
                                 "--recipe", "click-quick", "--iters", "1", "--batch-size", "2", "--device", "cpu",
                                 "--no-progress", *sets, "--set", "refine_patches=2"])
    assert r.exit_code == 0, (r.output, r.exception)
    for stage in ("matting", "uncertainty", "refine"):
        ckpt = load_checkpoint(run / stage / "last.pt")
        assert ckpt["stage"] == stage and ckpt["model_config"]["refine_patches"] == (2 if stage == "refine" else 0)
    record = read_manifest(dataset)[0]
    clicks = tmp_path / "clicks.json"
    clicks.write_text(json.dumps({Path(record.merged_path).name: [{"x": 20, "y": 20, "label": "fg"}]}))
    image = dataset / record.merged_path
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["matte", str(image), "--clicks", str(clicks), "--weights", str(run / "best.pt"),
                                 "--out", str(out), "--output", "alpha,uncertainty", "--refine-patches", "1",
                                 "--device", "cpu"])
    assert r.exit_code == 0, (r.output, r.exception)
    sigma = read_raw(out / "uncertainty" / f"{Path(record.merged_path).stem}.png")
    assert sigma.dtype == np.uint16 and sigma.min() > 0
    r = CliRunner().invoke(app, ["matte", str(image), "--clicks", str(clicks), "--out", str(tmp_path / "o2"),
                                 "--refine-patches", "1"])
    assert r.exit_code != 0 and "--refine-patches applies to click networks" in str(r.exception)
    report = tmp_path / "curve.json"
    r = CliRunner().invoke(app, ["eval", "--simulate-clicks", "2", "--data", str(dataset), "--weights",
                                 str(run / "best.pt"), "--device", "cpu", "--json", str(report), "--metrics", "sad",
                                 "--plot", str(tmp_path / "p.png"), "--sheet", str(tmp_path / "s.png")])
    assert r.exit_code == 0, (r.output, r.exception)
    data = json.loads(report.read_text())
    assert len(data["mean"]) == 2 and len(data["images"]) == 2 and (tmp_path / "p.png").is_file()
    assert all(len(im["clicks"]) >= 1 and im["clicks"][0]["label"] == "fg" for im in data["images"])
    r = CliRunner().invoke(app, ["eval", "--simulate-clicks", "2", "--data", str(dataset), "--trimap", str(dataset)])
    assert r.exit_code != 0 and "drop --trimap" in str(r.exception)


# ----------------------------------------------------------------------------- export and weights info

def test_export_equals_matte_without_refinement_and_weights_info(tmp_path):
    import json

    from typer.testing import CliRunner

    from mattecli.cli.app import app
    from mattecli.export.run import export_checkpoint, read_contract, run_exported
    from mattecli.io.checkpoint import save_checkpoint
    from mattecli.io.images import read_alpha_float, write_image

    torch.manual_seed(5)
    model = build_model("click", {**TINY, "refine_patches": 2})
    with torch.no_grad():  # a U influence larger than the He init gives
        model.encoder.resnet.conv1.weight[:, 3:].normal_(0, 0.1)
    save_checkpoint(tmp_path / "c.pt", {"family": "click", "model_config": model.config, "model": model.state_dict(),
                                        "stage": "refine"})
    rng = np.random.default_rng(2)
    h, w = 64, 96
    image = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    write_image(tmp_path / "in" / "x.png", image)
    clicks = [Click(40, 30, True), Click(5, 5, False)]
    (tmp_path / "clicks.json").write_text(json.dumps({"x": [{"x": 40, "y": 30, "label": "fg"},
                                                            {"x": 5, "y": 5, "label": "bg"}]}))
    r = CliRunner().invoke(app, ["matte", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--weights",
                                 str(tmp_path / "c.pt"), "--clicks", str(tmp_path / "clicks.json"), "--device", "cpu",
                                 "--output", "alpha", "--alpha-16bit", "--refine-patches", "0"])
    assert r.exit_code == 0, r.output
    alpha = read_alpha_float(tmp_path / "out" / "alpha" / "x.png")
    assert float(alpha.std()) > 1e-3
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
    g = torch.from_numpy(click_maps(clicks, h, w, model.click_radius_for(h, w)))[None]
    # ONNX through the TorchScript-based exporter, which keeps this test fast (export tries dynamo first)
    for fmt, name, exporter in (("torchscript", "c.ts", "auto"), ("onnx", "c.onnx", "legacy")):
        result = export_checkpoint(tmp_path / "c.pt", fmt, tmp_path / name, exporter=exporter)
        assert result.max_abs_diff <= 1e-4
        got = run_exported(tmp_path / name, x, g)[0, 0].numpy()
        assert np.abs(got - alpha).max() <= 1e-4 + 0.5 / 65535
    contract = read_contract(tmp_path / "c.ts")
    assert [o["name"] for o in contract["outputs"]] == ["alpha", "uncertainty"]
    assert contract["inputs"][1]["name"] == "clicks" and "refinement" in contract["notes"]
    r = CliRunner().invoke(app, ["weights", "info", str(tmp_path / "c.pt"), "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["family"] == "click"


def test_whole_image_training_samples_show_the_whole_composite(tmp_path):
    """``whole_image_scales``: the sample is the whole composite brought to the input size (and
    scale-jittered), not a crop around an edge; a bad range is refused in one line."""
    import cv2

    from mattecli.data.sources import open_source
    from mattecli.families.click.data import ClickTrainDataset
    from mattecli.families.click.family import check_recipe
    from mattecli.io.images import write_image
    from mattecli.errors import MatteError

    alpha = np.zeros((64, 64), np.uint8)
    alpha[10:40, 20:50] = 255
    write_image(tmp_path / "fg" / "a.png", np.full((64, 64, 3), 200, np.uint8))
    write_image(tmp_path / "alpha" / "a.png", alpha)
    write_image(tmp_path / "bg" / "b.png", np.zeros((64, 64, 3), np.uint8))
    source = open_source(tmp_path)
    whole = ClickTrainDataset(source, input_size=32, flip=False, whole_image_scales=(1.0, 1.0))[0]["alpha"][0].numpy()
    expected = cv2.resize(alpha, (32, 32), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255
    assert np.abs(whole - expected).max() < 1e-6
    crop = ClickTrainDataset(source, crop_sizes=(32,), input_size=32, flip=False)[0]["alpha"][0].numpy()
    assert not np.allclose(crop, expected)  # the default (crops around an edge) differs
    # a smaller scale shows the whole subject smaller, the frame reflect-padded to the input size
    small = ClickTrainDataset(source, input_size=32, flip=False, whole_image_scales=(0.5, 0.5))[0]["alpha"][0]
    assert small.shape == (32, 32) and float(small.sum()) > 0
    with pytest.raises(MatteError) as exc:
        check_recipe({"whole_image_scales": [1.25, 0.8]})
    assert "whole_image_scales" in str(exc.value) and "\n" not in str(exc.value)


def test_a_distractor_subject_joins_the_background_and_leaves_the_target_alone(tmp_path, monkeypatch):
    """``distractor_prob``: another subject of the source is composited under the clicked one.
    The target alpha and the clicks stay those of the sample without it; the image changes only
    where the target is not opaque, by exactly the second subject over the background there; and
    no distractor is added when no click is foreground (either subject could then be meant)."""
    import mattecli.families.click.data as click_data
    from mattecli.data.sources import open_source
    from mattecli.families.click.data import ClickTrainDataset
    from mattecli.families.click.family import check_recipe
    from mattecli.errors import MatteError
    from mattecli.io.images import write_image

    size = 48
    target = np.zeros((size, size), np.uint8)
    target[4:20, 4:20] = 255           # the clicked subject: top left
    target[4:20, 20:22] = 128          # with a soft edge
    other = np.zeros((size, size), np.uint8)
    other[10:30, 10:26] = 255          # another subject, 20 x 16 px
    write_image(tmp_path / "fg" / "a.png", np.full((size, size, 3), (250, 20, 20), np.uint8))
    write_image(tmp_path / "alpha" / "a.png", target)
    write_image(tmp_path / "fg" / "b.png", np.full((size, size, 3), (20, 250, 20), np.uint8))
    write_image(tmp_path / "alpha" / "b.png", other)
    write_image(tmp_path / "bg" / "g.png", np.full((size, size, 3), (20, 20, 250), np.uint8))
    source = open_source(tmp_path)
    index = [s.name for s in source.samples].index("a")
    monkeypatch.setattr(click_data, "simulate_clicks", lambda alpha, rng, *a, **k: [Click(10.0, 10.0, True)])
    kwargs = dict(input_size=size, flip=False, whole_image_scales=(1.0, 1.0), radius=2.0)
    plain = ClickTrainDataset(source, **kwargs)[index]
    mixed = ClickTrainDataset(source, distractor_prob=1.0, **kwargs)[index]
    assert torch.equal(plain["alpha"], mixed["alpha"]) and torch.equal(plain["clicks"], mixed["clicks"])
    a = plain["alpha"][0]
    changed = (plain["image"] - mixed["image"]).abs().amax(0) > 1e-6
    assert not changed[a >= 1].any()
    # the second subject (green, opaque) replaces the blue background wherever it shows and the target is clear
    green = torch.tensor([20, 250, 20]) / 255.0
    shows = changed & (a <= 0)
    assert 0 < int(shows.sum()) <= 20 * 16  # at scale 1, centred on a clear pixel, cut at the border
    assert torch.allclose(mixed["image"][:, shows], green[:, None].expand(-1, int(shows.sum())), atol=1e-6)
    # under the soft edge: alpha * red + (1 - alpha) * (the layer below), computed here
    edge = changed & (a > 0) & (a < 1)
    if edge.any():
        red = torch.tensor([250, 20, 20]) / 255.0
        below = (mixed["image"][:, edge] - a[edge] * red[:, None]) / (1 - a[edge])
        assert torch.allclose(below, green[:, None].expand_as(below), atol=1e-5)
    # background clicks only: no distractor
    monkeypatch.setattr(click_data, "simulate_clicks", lambda alpha, rng, *a, **k: [Click(40.0, 40.0, False)])
    assert torch.equal(ClickTrainDataset(source, distractor_prob=1.0, **kwargs)[index]["image"],
                       ClickTrainDataset(source, **kwargs)[index]["image"])
    with pytest.raises(MatteError) as exc:
        check_recipe({"distractor_prob": 1.5})
    assert "distractor_prob" in str(exc.value) and "\n" not in str(exc.value)


def test_the_click_channel_starts_alive_from_scratch_and_silent_on_imagenet():
    """From scratch the U channel's stem weights are drawn like RGB's (zero held U back for the
    first steps); loading ImageNet weights zeroes them, so training starts from ImageNet's features."""
    from mattecli.backbones.resnet import load_imagenet_resnet

    torch.manual_seed(0)
    model = build_model("click", {**TINY, "depth": 18})
    w = model.encoder.resnet.conv1.weight.detach()
    assert w.shape[1] == 4 and float(w[:, 3].std()) > 0.5 * float(w[:, :3].std())
    imagenet = {k: v for k, v in build_model("click", {**TINY, "depth": 18}).encoder.resnet.state_dict().items()}
    imagenet["conv1.weight"] = imagenet["conv1.weight"][:, :3].clone()
    load_imagenet_resnet(model.encoder.resnet, imagenet)
    assert float(model.encoder.resnet.conv1.weight.detach()[:, 3].abs().max()) == 0.0
