"""Click matting as a training family: stages, losses and simulated users for the engine.

Stages (Wei et al.'s three, docs/click.md):

- ``matting``: encoder + alpha decoder, L_reg + ``loss_weight_grad`` * L_grad, with the
  simulated user's clicks and, when ``error_clicks`` > 0, up to that many extra clicks placed
  (without gradients) where the current prediction is most wrong, as RITM trains;
- ``uncertainty``: the matting network frozen (no gradients, batch-norm statistics fixed), the
  uncertainty decoder trained with the Laplace NLL;
- ``refine``: everything but the local refinement network frozen; per training sample the
  frozen network's |error| is computed and the ``refine_train_patches`` non-overlapping
  ``patch_size`` patches where it errs most are refined (hard examples mined online, from the
  training data itself), L1 + ``hard_weight`` * L1 over the 20% hardest pixels.

Recipe keys (defaults in brackets): ``depth`` [34; 18 and 50 too], ``decoder_widths`` [[256, 128, 64, 48, 32]],
``refiner_channels`` [32], ``sigma_min`` [1e-3], ``patch_size`` [64], ``refine_patches`` [8:
the budget validation and ``matte`` use after the refine stage], ``click_radius`` [15],
``input_size`` [320], ``global_side`` [1024], ``crop_sizes`` [[320, 480, 640]], ``flip`` [true],
``whole_image_scales`` [[]: crops as above; (lo, hi): whole composites, docs/train.md],
``geometric_p`` [1/6], ``max_clicks`` [30: the cap, 0 = none], ``fg_prob`` [0.5], ``error_clicks`` [0],
``distractor_prob`` [0: off; the share of samples with a second, unclicked subject in the background],
``transition_band`` [5], ``loss_weight_grad`` [1.0], ``refine_train_patches`` [2],
``hard_fraction`` [0.2], ``hard_weight`` [1.0], ``backbone_weights`` [none], ``backgrounds``
[none], ``check_files`` [true].
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from mattecli.families.registry import RegisteredNetwork
from mattecli.backbones.imagenet import BackboneSlot
from mattecli.backbones.resnet import load_imagenet_resnet
from mattecli.backbones.vgg import read_state_dict
from mattecli.console import console
from mattecli.data.clicks import next_click, signed_click_map, split_signed
from mattecli.data.sources import MattingSource, open_source
from mattecli.families.click.data import ClickTrainDataset, ClickValDataset
from mattecli.families.click.losses import laplace_nll, matting_loss, refinement_loss
from mattecli.families.click.model import ClickMatting, select_patches
from mattecli.tensors import crop_to, pad_to_multiple
from mattecli.train.recipe_checks import (bad, check_bools, check_paths, check_sizes, check_stage, is_int, is_number,
                                          network)

STAGES = ("matting", "uncertainty", "refine")

_DEFAULTS: dict[str, Any] = {
    "depth": 34, "decoder_widths": [256, 128, 64, 48, 32], "refiner_channels": 32, "sigma_min": 1e-3,
    "patch_size": 64, "refine_patches": 8, "click_radius": 15.0, "input_size": 320, "global_side": 1024,
    "crop_sizes": [320, 480, 640], "flip": True, "geometric_p": 1 / 6, "max_clicks": 30, "fg_prob": 0.5,
    "error_clicks": 0, "whole_image_scales": [], "transition_band": 5, "loss_weight_grad": 1.0, "refine_train_patches": 2,
    "hard_fraction": 0.2, "hard_weight": 1.0, "distractor_prob": 0.0,
}


def _net(model: nn.Module) -> ClickMatting:
    return network(model, ClickMatting, "a click matting network")


def _check_stage(stage: str) -> None:
    check_stage(stage, STAGES, "click")


def check_recipe(recipe: Mapping[str, Any]) -> None:
    """Every family key the recipe sets, checked with a one-line error naming it."""
    get = lambda k: recipe.get(k, _DEFAULTS.get(k))  # noqa: E731
    if get("depth") not in (18, 34, 50):
        raise bad("depth", get("depth"), "18, 34 or 50")
    widths = get("decoder_widths")
    if not isinstance(widths, (list, tuple)) or len(widths) != 5 or not all(is_int(w, 1) for w in widths):
        raise bad("decoder_widths", widths, "five positive integers (/32 .. full resolution)")
    for key, lo in (("refiner_channels", 1), ("patch_size", 4), ("refine_patches", 0), ("input_size", 32),
                    ("global_side", 0), ("max_clicks", 0), ("error_clicks", 0), ("transition_band", 0),
                    ("refine_train_patches", 1)):
        if not is_int(get(key), lo):
            raise bad(key, get(key), f"an integer >= {lo}")
    for key in ("click_radius", "sigma_min", "loss_weight_grad", "hard_weight"):
        if not is_number(get(key)) or get(key) < 0 or (key in ("click_radius", "sigma_min") and get(key) <= 0):
            raise bad(key, get(key), "a positive number" if key in ("click_radius", "sigma_min") else "a number >= 0")
    for key in ("geometric_p", "fg_prob", "hard_fraction", "distractor_prob"):
        v = get(key)
        closed = key in ("fg_prob", "distractor_prob")  # 0 allowed
        if not is_number(v) or not 0 <= v <= 1 or (not closed and v == 0):
            raise bad(key, v, "a number in [0, 1]" if closed else "a number in (0, 1]")
    check_sizes("crop_sizes", get("crop_sizes"))
    scales = get("whole_image_scales")
    if not isinstance(scales, (list, tuple)) or len(scales) not in (0, 2) or not all(
            is_number(v) and v > 0 for v in scales) or (scales and scales[0] > scales[1]):
        raise bad("whole_image_scales", scales, "[] (crops) or [lo, hi] with 0 < lo <= hi")
    if get("input_size") % 32:
        raise bad("input_size", get("input_size"), "a multiple of 32 (the encoder's stride)")
    check_bools(recipe, ("flip", "check_files"))
    check_paths(recipe, ("backbone_weights", "backgrounds"))


class ClickFamily(RegisteredNetwork):
    name = "click"
    stages = STAGES
    #: ImageNet ResNet of the encoder's depth (recipes/click.toml names torchvision's ResNet-34), or --backbone-weights
    imagenet_slots = (BackboneSlot("backbone_weights", "imagenet_url", "imagenet_sha256", "--backbone-weights"),)
    settings: dict[str, Any] = dict(_DEFAULTS)

    @staticmethod
    def _settings(recipe: Mapping[str, Any]) -> dict[str, Any]:
        return {k: recipe.get(k, v) for k, v in _DEFAULTS.items()}

    def model_config(self, recipe: Mapping[str, Any]) -> dict[str, Any]:
        check_recipe(recipe)
        s = self._settings(recipe)
        refining = recipe.get("stage", "matting") == "refine"
        return {"depth": int(s["depth"]), "decoder_widths": [int(w) for w in s["decoder_widths"]],
                "refiner_channels": int(s["refiner_channels"]), "sigma_min": float(s["sigma_min"]),
                "patch_size": int(s["patch_size"]), "refine_patches": int(s["refine_patches"]) if refining else 0,
                "click_radius": float(s["click_radius"]), "train_size": int(s["input_size"]),
                "global_side": int(s["global_side"])}

    def prepare_model(self, model: nn.Module, recipe: Mapping[str, Any], stage: str) -> None:
        """ImageNet ResNet weights (``backbone_weights``) into a fresh encoder; U's stem weights set to 0."""
        _check_stage(stage)
        path = recipe.get("backbone_weights")
        if not path:
            return
        report = load_imagenet_resnet(_net(model).encoder.resnet, read_state_dict(path), source=path)
        if not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0:
            console.print(f"backbone {path}: {report.summary()}")

    def trainable_parameters(self, model: nn.Module, stage: str) -> Iterable[nn.Parameter]:
        _check_stage(stage)
        net = _net(model)
        parts = {"matting": (net.encoder, net.alpha_decoder), "uncertainty": (net.uncertainty_decoder,),
                 "refine": (net.refiner,)}[stage]
        trained = {id(p) for m in parts for p in m.parameters()}
        for p in net.parameters():
            p.requires_grad_(id(p) in trained)
        return [p for p in net.parameters() if p.requires_grad]

    def _source(self, recipe: Mapping[str, Any], data_dir: str) -> MattingSource:
        return open_source(data_dir, recipe.get("backgrounds"), bool(recipe.get("check_files", True)))

    def train_dataset(self, recipe: Mapping[str, Any], data_dir: str, seed: int) -> Dataset:
        # losses() gets no recipe: its settings are taken here, on every process, before training
        self.settings = self._settings(recipe)
        s = self.settings
        return ClickTrainDataset(self._source(recipe, data_dir), seed=seed, crop_sizes=tuple(s["crop_sizes"]),
                                 input_size=int(s["input_size"]), flip=bool(recipe.get("flip", True)),
                                 radius=float(s["click_radius"]), geometric_p=float(s["geometric_p"]),
                                 max_clicks=int(s["max_clicks"]), fg_prob=float(s["fg_prob"]),
                                 whole_image_scales=tuple(float(v) for v in s["whole_image_scales"]),
                                 distractor_prob=float(s["distractor_prob"]))

    def val_dataset(self, recipe: Mapping[str, Any], data_dir: str, seed: int) -> Dataset:
        s = self._settings(recipe)
        return ClickValDataset(self._source(recipe, data_dir), seed=seed, radius=float(s["click_radius"]),
                               global_side=int(s["global_side"]))

    # -- training-time clicks from the model's own errors (RITM)
    @torch.no_grad()
    def add_error_clicks(self, model: nn.Module, batch: Mapping[str, torch.Tensor], max_extra: int) -> torch.Tensor:
        """The batch's click maps with 0..``max_extra`` (per sample, seeded) clicks added, each at a
        random deep pixel of the larger error region of the current prediction."""
        net = _net(model)
        clicks = batch["clicks"].clone()
        if max_extra <= 0:
            return clicks
        rngs = [np.random.Generator(np.random.PCG64(int(s))) for s in batch["seed"].tolist()]
        wanted = [int(r.integers(0, max_extra + 1)) for r in rngs]
        was_training = net.training
        net.eval()
        try:
            for round_ in range(max(wanted)):
                x, size = pad_to_multiple(net.prepare_input(batch["image"], clicks), 32)
                pred = crop_to(net(x, uncertainty=False)["alpha"], size).float().cpu().numpy()
                gt = batch["alpha"].float().cpu().numpy()
                for b in range(clicks.shape[0]):
                    if round_ >= wanted[b]:
                        continue
                    click = next_click(pred[b, 0], gt[b, 0], rng=rngs[b])
                    if click is None:
                        continue
                    u = (clicks[b, 0] - clicks[b, 1]).cpu().numpy()
                    h, w = u.shape
                    disk = signed_click_map([click], h, w, float(batch["radius"][b]))
                    u = np.where(disk != 0, disk, u)
                    clicks[b] = torch.from_numpy(split_signed(u)).to(clicks)
        finally:
            net.train(was_training)
        return clicks

    def losses(self, model: nn.Module, batch: Mapping[str, torch.Tensor], stage: str) -> dict[str, torch.Tensor]:
        _check_stage(stage)
        s = self.settings
        net = _net(model)
        gt = batch["alpha"]
        if stage == "matting":
            clicks = self.add_error_clicks(model, batch, int(s["error_clicks"]))
            out = model(net.prepare_input(batch["image"], clicks), uncertainty=False)
            return matting_loss(out["alpha"], gt, int(s["transition_band"]), float(s["loss_weight_grad"]))
        # later stages: the matting network is frozen, its batch-norm statistics too
        net.encoder.eval()
        net.alpha_decoder.eval()
        x = net.prepare_input(batch["image"], batch["clicks"])
        if stage == "uncertainty":
            out = model(x)
            nll = laplace_nll(out["sigma"], out["alpha"].detach(), gt)
            return {"loss": nll, "nll": nll}
        net.uncertainty_decoder.eval()
        with torch.no_grad():
            alpha = net(x, uncertainty=False)["alpha"]
        error = (alpha - gt).abs()
        rgb = x[:, :3]
        crops = {"rgb": [], "alpha": [], "gt": []}
        k = int(s["patch_size"])
        for b in range(x.shape[0]):
            for y0, x0, y1, x1 in select_patches(error[b, 0], k, int(s["refine_train_patches"])):
                crops["rgb"].append(rgb[b, :, y0:y1, x0:x1])
                crops["alpha"].append(alpha[b, :, y0:y1, x0:x1])
                crops["gt"].append(gt[b, :, y0:y1, x0:x1])
        # all training crops share input_size, so every patch has the same size
        refined = model(None, patches=(torch.stack(crops["rgb"]), torch.stack(crops["alpha"])))["refined"]
        target = torch.stack(crops["gt"])
        loss = refinement_loss(refined, target, float(s["hard_fraction"]), float(s["hard_weight"]))
        before = (torch.stack(crops["alpha"]) - target).abs().mean()
        return {"loss": loss, "refine": loss, "patch_l1_before": before.detach()}

    @torch.no_grad()
    def predict(self, model: nn.Module, batch: Mapping[str, torch.Tensor], stage: str) -> torch.Tensor:
        """Alpha with the stage's refinement budget (0 before the refine stage)."""
        _check_stage(stage)
        return _net(model).predict(batch["image"], batch["clicks"])["alpha"]


FAMILY = ClickFamily()
