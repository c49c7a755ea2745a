"""Deep Image Matting as a training family: networks, stages, losses and data for the engine.

Stages (the paper's three, with mmagic's losses):

- ``encoder``: the encoder-decoder alone, ``0.5 * L_alpha + 0.5 * L_comp`` on its alpha;
- ``refine``: encoder-decoder frozen (no gradients, batch-norm statistics fixed), the
  refinement network trained with the alpha-prediction loss on the refined alpha only;
- ``joint``: everything, the stage-1 loss plus the refined alpha's alpha-prediction loss
  (mmagic's ``dim_stage3`` config).

Recipe keys read here (defaults in brackets): ``conv6`` ["1x1"], ``batch_norm`` [false],
``refine`` [true for the refine and joint stages, from ``stage``], ``backbone_weights``
[none], ``crop_sizes`` [[320, 480, 640]], ``input_size`` [320], ``flip`` [true],
``trimap_kernel`` [[2, 5]], ``trimap_iterations`` [[5, 15]], ``loss_weight_alpha`` [0.5],
``loss_weight_refine`` [1.0], ``width`` [1.0: the paper's widths], ``val_crop`` [0 = whole images], ``trimap_unknown_value`` [0.5; 128/255 for imported mmagic
weights], ``backgrounds`` [none: the
dataset's own pool], ``check_files`` [true].
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import torch
from torch import nn
from torch.utils.data import Dataset

from mattecli.families.registry import RegisteredNetwork
from mattecli.console import console
from mattecli.data.sources import MattingSource, open_source
from mattecli.families.dim.data import DIMTrainDataset, DIMValDataset
from mattecli.data.trimap import BACKGROUND, FOREGROUND, TrimapSpec
from mattecli.errors import MatteError
from mattecli.families.dim.losses import dim_loss
from mattecli.losses.matting import alpha_prediction_loss, unknown_weight
from mattecli.families.dim.model import CONV6_VARIANTS, DeepImageMatting
from mattecli.backbones.imagenet import BackboneSlot
from mattecli.backbones.vgg import load_imagenet_vgg16, read_state_dict
from mattecli.train.recipe_checks import (bad, check_bools, check_paths, check_sizes, check_stage, int_pair, is_int,
                                          is_number, network)

STAGES = ("encoder", "refine", "joint")


def _net(model: nn.Module) -> DeepImageMatting:
    return network(model, DeepImageMatting, "a DIM network")


def _check_stage(stage: str) -> None:
    check_stage(stage, STAGES, "DIM")


def check_recipe(recipe: Mapping[str, Any]) -> None:
    """Reject the family's recipe values it cannot run, naming the key (one line, no traceback)."""
    conv6 = recipe.get("conv6", "1x1")
    if conv6 not in CONV6_VARIANTS:
        raise bad("conv6", conv6, f"one of {', '.join(CONV6_VARIANTS)}")
    check_bools(recipe, ("batch_norm", "flip", "check_files"))
    if "refine" in recipe and recipe["refine"] is not None and not isinstance(recipe["refine"], bool):
        raise bad("refine", recipe["refine"], "true or false")
    check_sizes("crop_sizes", recipe.get("crop_sizes", [320]))
    if not is_int(recipe.get("input_size", 320)):
        raise bad("input_size", recipe.get("input_size"), "a positive integer")
    val_crop = recipe.get("val_crop", 0)
    if not is_int(val_crop, 0):
        raise bad("val_crop", val_crop, "an integer >= 0 (0 = whole images)")
    for key in ("loss_weight_alpha", "loss_weight_refine"):
        value = recipe.get(key, 0.5)
        if not is_number(value) or value < 0:
            raise bad(key, value, "a number >= 0")
    if float(recipe.get("loss_weight_alpha", 0.5)) > 1:
        raise bad("loss_weight_alpha", recipe["loss_weight_alpha"], "a number in [0, 1] (comp gets 1 - it)")
    for key in ("trimap_kernel", "trimap_iterations"):
        int_pair(recipe, key, (1, 1))
    check_paths(recipe, ("backbone_weights", "backgrounds"))
    unknown_value = recipe.get("trimap_unknown_value", 0.5)
    if not is_number(unknown_value) or not 0 < unknown_value < 1:
        raise bad("trimap_unknown_value", unknown_value, "a number in (0, 1) (0.5; mmagic weights: 0.50196)")
    width = recipe.get("width", 1.0)
    if not is_number(width) or not 0 < width <= 1:
        raise bad("width", width, "a number in (0, 1] (1 = the paper's VGG16 widths)")


class DIMFamily(RegisteredNetwork):
    name = "dim"
    stages = STAGES
    #: recipe keys read here that the bundled recipes leave out (mattecli.train.recipe.known_keys)
    recipe_keys = ("refine", "trimap_unknown_value")
    #: the paper's ImageNet VGG16 start (recipes/dim.toml names torchvision's file), or --backbone-weights
    imagenet_slots = (BackboneSlot("backbone_weights", "imagenet_url", "imagenet_sha256", "--backbone-weights"),)
    loss_weights: dict[str, float] = {"alpha": 0.5, "refine": 1.0}

    def model_config(self, recipe: Mapping[str, Any]) -> dict[str, Any]:
        """Also checks every family key of the recipe: the engine calls this first."""
        check_recipe(recipe)
        conv6 = str(recipe.get("conv6", "1x1"))
        refine = recipe.get("refine")
        if refine is None:
            refine = recipe.get("stage", "encoder") in ("refine", "joint")
        config = {"conv6": conv6, "batch_norm": bool(recipe.get("batch_norm", False)), "refine": bool(refine)}
        if float(recipe.get("trimap_unknown_value", 0.5)) != 0.5:  # fine-tuning imported mmagic weights
            config["trimap_unknown_value"] = float(recipe["trimap_unknown_value"])
        if float(recipe.get("width", 1.0)) != 1.0:  # a narrower network for CPU budgets (dim-quick)
            config["width"] = float(recipe["width"])
        return config

    def prepare_model(self, model: nn.Module, recipe: Mapping[str, Any], stage: str) -> None:
        """Load ImageNet VGG16 weights (``backbone_weights``) into a fresh encoder. The engine
        calls this only for a stage that does not start from the previous stage's weights."""
        _check_stage(stage)
        path = recipe.get("backbone_weights")
        if not path:
            return
        net = _net(model)
        report = load_imagenet_vgg16(net.encoder, read_state_dict(path), source=path)
        if not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0:
            console.print(f"backbone {path}: {report.summary()}")

    def trainable_parameters(self, model: nn.Module, stage: str) -> Iterable[nn.Parameter]:
        """Switches ``requires_grad`` so unused parts are frozen (also keeps DDP from
        waiting for gradients that never come) and returns the trained parameters."""
        _check_stage(stage)
        net = _net(model)
        train_stage1 = stage in ("encoder", "joint")
        train_refiner = stage in ("refine", "joint")
        if train_refiner and net.refiner is None:
            raise MatteError(f"DIM stage {stage} trains the refinement network, which this network lacks (refiner=false)")
        for module, on in ((net.encoder, train_stage1), (net.decoder, train_stage1), (net.refiner, train_refiner)):
            for p in (module.parameters() if module is not None else ()):
                p.requires_grad_(on)
        return [p for p in net.parameters() if p.requires_grad]

    def _source(self, recipe: Mapping[str, Any], data_dir: str) -> MattingSource:
        return open_source(data_dir, recipe.get("backgrounds"), bool(recipe.get("check_files", True)))

    def _trimap_spec(self, recipe: Mapping[str, Any]) -> TrimapSpec:
        default = TrimapSpec()
        return TrimapSpec(kernel=int_pair(recipe, "trimap_kernel", default.kernel),
                          iterations=int_pair(recipe, "trimap_iterations", default.iterations))

    def train_dataset(self, recipe: Mapping[str, Any], data_dir: str, seed: int) -> Dataset:
        # The protocol's losses() gets no recipe: the loss weights are taken here, where the
        # engine hands the stage's recipe over on every process before training starts.
        self.loss_weights = self._loss_weights(recipe)
        return DIMTrainDataset(self._source(recipe, data_dir), seed=seed,
                               crop_sizes=tuple(recipe.get("crop_sizes", (320, 480, 640))),
                               input_size=int(recipe.get("input_size", 320)),
                               trimap_spec=self._trimap_spec(recipe), flip=bool(recipe.get("flip", True)))

    def val_dataset(self, recipe: Mapping[str, Any], data_dir: str, seed: int) -> Dataset:
        return DIMValDataset(self._source(recipe, data_dir), seed=seed, crop=int(recipe.get("val_crop", 0) or 0),
                             trimap_spec=self._trimap_spec(recipe))

    @staticmethod
    def _loss_weights(recipe: Mapping[str, Any]) -> dict[str, float]:
        return {"alpha": float(recipe.get("loss_weight_alpha", 0.5)),
                "refine": float(recipe.get("loss_weight_refine", 1.0))}

    def losses(self, model: nn.Module, batch: Mapping[str, torch.Tensor], stage: str,
               recipe: Mapping[str, Any] | None = None) -> dict[str, torch.Tensor]:
        """Forward pass in training mode and the stage's losses; ``recipe`` (optional)
        overrides the loss weights taken by :meth:`train_dataset`."""
        _check_stage(stage)
        weights = self._loss_weights(recipe) if recipe is not None else self.loss_weights
        net = _net(model)
        if stage == "refine":  # frozen stage 1: its batch-norm statistics must not move either
            net.encoder.eval()
            net.decoder.eval()
        x = net.prepare_input(batch["image"], batch["trimap"])
        out = model(x, refine=stage != "encoder")  # through the wrapper, so DDP syncs gradients
        weight = unknown_weight(batch["trimap"])
        parts: dict[str, torch.Tensor] = {}
        total = x.new_zeros(())
        if stage in ("encoder", "joint"):
            stage1 = dim_loss(out["alpha"], batch["alpha"], batch["fg"], batch["bg"], batch["image"], weight,
                              alpha_weight=weights["alpha"])
            parts["alpha"], parts["comp"] = stage1["alpha"], stage1["comp"]
            total = total + stage1["loss"]
        if stage in ("refine", "joint"):
            parts["refine"] = alpha_prediction_loss(out["refined"], batch["alpha"], weight)
            total = total + weights["refine"] * parts["refine"]
        return {"loss": total, **parts}

    @torch.no_grad()
    def predict(self, model: nn.Module, batch: Mapping[str, torch.Tensor], stage: str) -> torch.Tensor:
        """Stage-1 alpha for ``encoder``, the refined alpha after; known regions clamped."""
        _check_stage(stage)
        trimap = batch["trimap"]
        alpha = _net(model).infer(batch["image"], trimap, refine=stage != "encoder")
        return clamp_known(alpha, trimap)


def clamp_known(alpha: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
    """Alpha 1 where the trimap says foreground, 0 where background (uint8 or float trimaps)."""
    fg = trimap == (FOREGROUND if not trimap.is_floating_point() else 1.0)
    bg = trimap == (BACKGROUND if not trimap.is_floating_point() else 0.0)
    return torch.where(fg, torch.ones_like(alpha), torch.where(bg, torch.zeros_like(alpha), alpha))


FAMILY = DIMFamily()
