"""Semantic Human Matting as a training family: stages, recipe keys, losses, data.

Stages (the paper: pre-train T-Net and M-Net separately, then end to end; models.md 2.3):

- ``tnet``: the T-Net alone, ``L_t`` (cross-entropy) against trimaps the project's generator
  makes from the ground-truth alpha; the M-Net is frozen and unused.
- ``mnet``: the M-Net alone, given the ground-truth trimap as one-hot probabilities;
  ``L_p`` over the trimap's unknown band. The T-Net is frozen (batch-norm statistics too), so
  this stage's checkpoint carries the pre-trained T-Net of ``tnet`` (the engine starts
  each stage from the previous one's best) next to the pre-trained M-Net.
- ``e2e``: everything, ``L = L_p + 0.01 L_t`` with ``L_p`` on the fused alpha over the whole
  image, from ``mnet``'s checkpoint (both pre-trained networks).

Recipe keys read here (defaults in brackets): ``infer_size`` [400], ``full_size`` [800],
``tnet_width`` [64], ``tnet_depth`` [50] (the T-Net trunk: ResNet-50 as the paper, or 18/34),
``mnet_width`` [64], ``tnet_crop`` [400], ``mnet_crop`` [320],
``e2e_crop`` [800], ``scale_range`` [[0.75, 1.25]], ``flip`` [true], ``trimap_kernel``
[[2, 5]], ``trimap_iterations`` [[5, 15]], ``tnet_trimap_kernel`` [10],
``tnet_trimap_iterations`` [1], ``loss_gamma`` [0.5], ``loss_lambda`` [0.01],
``backbone_weights`` (ImageNet ResNet-50 for the T-Net) [none], ``mnet_backbone_weights``
(ImageNet VGG16 for the M-Net) [none], ``backgrounds`` [none], ``check_files`` [true],
``mnet_input`` ["trimap"]: what the M-Net is given in ``mnet`` pre-training, the one-hot of a
``trimap_kernel`` trimap (the paper) or ``"tnet"``, the probabilities a perfect T-Net hands it
at inference (its ``tnet_trimap_kernel`` target through its 1/8 logit grid; ``L_p`` then covers
every pixel those probabilities call possibly unknown, and validation scores the whole image).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import torch
from torch import nn
from torch.utils.data import Dataset

from mattecli.families.registry import RegisteredNetwork
from mattecli.backbones.imagenet import BackboneSlot
from mattecli.backbones.resnet import load_imagenet_resnet
from mattecli.backbones.vgg import load_imagenet_vgg16
from mattecli.backbones.weights import read_state_dict
from mattecli.console import console
from mattecli.data.sources import MattingSource, open_source
from mattecli.data.trimap import TrimapSpec
from mattecli.families.shm.classes import FOREGROUND_CLASS, UNKNOWN_CLASS, classes_to_onehot, trimap_tensor_to_classes
from mattecli.families.shm.data import MNET_INPUTS, STAGES, SHMTrainDataset, SHMValDataset
from mattecli.families.shm.losses import GAMMA, LAMBDA, prediction_loss, shm_loss, trimap_loss
from mattecli.families.shm.model import TNET_DEPTHS, TNET_STRIDE, SemanticHumanMatting
from mattecli.losses.matting import unknown_weight
from mattecli.train.recipe_checks import (bad, check_bools, check_paths, check_stage, int_pair, is_int, is_number,
                                          network)

#: a pixel the soft probabilities give more than this chance of being unknown is in the M-Net's loss region
POSSIBLY_UNKNOWN = 1e-3
DEFAULTS: dict[str, Any] = {"infer_size": 400, "full_size": 800, "tnet_width": 64, "mnet_width": 64,
                            "tnet_crop": 400, "mnet_crop": 320, "e2e_crop": 800, "tnet_depth": 50}


def _net(model: nn.Module) -> SemanticHumanMatting:
    return network(model, SemanticHumanMatting, "an SHM network")


def _check_stage(stage: str) -> None:
    check_stage(stage, STAGES, "SHM")


def _int(recipe: Mapping[str, Any], key: str) -> int:
    value = recipe.get(key, DEFAULTS[key])
    if not is_int(value):
        raise bad(key, value, "a positive integer")
    return int(value)


def check_recipe(recipe: Mapping[str, Any]) -> None:
    """Reject the family's recipe values it cannot run, naming the key (one line)."""
    sizes = {key: _int(recipe, key) for key in DEFAULTS}
    if sizes["tnet_depth"] not in TNET_DEPTHS:
        raise bad("tnet_depth", sizes["tnet_depth"], f"one of {', '.join(map(str, TNET_DEPTHS))} (the T-Net's ResNet)")
    for key in ("infer_size", "tnet_crop"):
        if sizes[key] % TNET_STRIDE:
            raise bad(key, sizes[key], f"a multiple of {TNET_STRIDE} (the T-Net's output stride)")
    for key in ("mnet_crop", "e2e_crop"):
        if sizes[key] % 16:
            raise bad(key, sizes[key], "a multiple of 16 (the M-Net's four pools)")
    if sizes["e2e_crop"] * sizes["infer_size"] % (sizes["full_size"] * TNET_STRIDE):
        raise bad("e2e_crop", sizes["e2e_crop"], f"a size that e2e_crop * infer_size / full_size turns into a "
                   f"multiple of {TNET_STRIDE} (the T-Net's input in the e2e stage)")
    scale = recipe.get("scale_range", [0.75, 1.25])
    if (not isinstance(scale, (list, tuple)) or len(scale) != 2 or not all(is_number(v) and v > 0 for v in scale)
            or scale[0] > scale[1]):
        raise bad("scale_range", scale, "[lo, hi] with 0 < lo <= hi")
    check_bools(recipe, ("flip", "check_files"))
    for key in ("trimap_kernel", "trimap_iterations", "tnet_trimap_kernel", "tnet_trimap_iterations"):
        int_pair(recipe, key, (1, 1))
    gamma = recipe.get("loss_gamma", GAMMA)
    if not is_number(gamma) or not 0 <= gamma <= 1:
        raise bad("loss_gamma", gamma, "a number in [0, 1]")
    lam = recipe.get("loss_lambda", LAMBDA)
    if not is_number(lam) or lam < 0:
        raise bad("loss_lambda", lam, "a number >= 0")
    check_paths(recipe, ("backbone_weights", "mnet_backbone_weights", "backgrounds"))
    mnet_input = recipe.get("mnet_input", "trimap")
    if mnet_input not in MNET_INPUTS:
        raise bad("mnet_input", mnet_input, f"one of {', '.join(MNET_INPUTS)}")


def tnet_trimap_spec(recipe: Mapping[str, Any]) -> TrimapSpec:
    """The T-Net's target trimaps (one kernel, one iteration by default, as lizhengwei1992)."""
    return TrimapSpec(int_pair(recipe, "tnet_trimap_kernel", (10, 10)), int_pair(recipe, "tnet_trimap_iterations", (1, 1)))


class SHMFamily(RegisteredNetwork):
    name = "shm"
    stages = STAGES
    #: ImageNet ResNet-50 for the T-Net's PSPNet, ImageNet VGG16 for the M-Net (recipes/shm.toml names both)
    imagenet_slots = (BackboneSlot("backbone_weights", "imagenet_url", "imagenet_sha256", "--backbone-weights"),
                      BackboneSlot("mnet_backbone_weights", "mnet_imagenet_url", "mnet_imagenet_sha256",
                                   "--mnet-backbone-weights"))
    loss_weights: dict[str, float] = {"gamma": GAMMA, "lambda": LAMBDA}
    #: family keys a recipe may set even where no bundled recipe names them
    recipe_keys = ("tnet_depth", "mnet_input")

    def model_config(self, recipe: Mapping[str, Any]) -> dict[str, Any]:
        """Also checks every family key of the recipe: the engine calls this first."""
        check_recipe(recipe)
        return {"infer_size": _int(recipe, "infer_size"), "tnet_width": _int(recipe, "tnet_width"),
                "mnet_width": _int(recipe, "mnet_width"), "tnet_depth": _int(recipe, "tnet_depth")}

    def prepare_model(self, model: nn.Module, recipe: Mapping[str, Any], stage: str) -> None:
        """ImageNet ResNet-50 (``backbone_weights``) into the T-Net trunk, ImageNet VGG16
        (``mnet_backbone_weights``) into the M-Net encoder (its 3 probability channels zero).
        Called by the engine only for a stage that does not start from the previous stage."""
        _check_stage(stage)
        net = _net(model)
        main = not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0
        path = recipe.get("backbone_weights")
        if path:
            report = load_imagenet_resnet(net.tnet.backbone, read_state_dict(path), source=path)
            if main:
                console.print(f"T-Net backbone {path}: {report.summary()}")
        path = recipe.get("mnet_backbone_weights")
        if path:
            report = load_imagenet_vgg16(net.mnet.encoder, read_state_dict(path), source=path)
            if main:
                console.print(f"M-Net encoder {path}: {report.summary()}")

    def trainable_parameters(self, model: nn.Module, stage: str) -> Iterable[nn.Parameter]:
        _check_stage(stage)
        net = _net(model)
        for module, on in ((net.tnet, stage in ("tnet", "e2e")), (net.mnet, stage in ("mnet", "e2e"))):
            for p in module.parameters():
                p.requires_grad_(on)
        return [p for p in net.parameters() if p.requires_grad]

    def _settings(self, recipe: Mapping[str, Any]) -> None:
        self.loss_weights = {"gamma": float(recipe.get("loss_gamma", GAMMA)),
                             "lambda": float(recipe.get("loss_lambda", LAMBDA))}

    def _source(self, recipe: Mapping[str, Any], data_dir: str) -> MattingSource:
        return open_source(data_dir, recipe.get("backgrounds"), bool(recipe.get("check_files", True)))

    def train_dataset(self, recipe: Mapping[str, Any], data_dir: str, seed: int) -> Dataset:
        # The protocol's losses() gets no recipe: settings are taken here, on every process.
        self._settings(recipe)
        stage = str(recipe.get("stage", "tnet"))
        _check_stage(stage)
        scale = recipe.get("scale_range", [0.75, 1.25])
        return SHMTrainDataset(
            self._source(recipe, data_dir), stage, seed=seed, infer_size=_int(recipe, "infer_size"),
            full_size=_int(recipe, "full_size"), tnet_crop=_int(recipe, "tnet_crop"),
            mnet_crop=_int(recipe, "mnet_crop"), e2e_crop=_int(recipe, "e2e_crop"),
            scale_range=(float(scale[0]), float(scale[1])), flip=bool(recipe.get("flip", True)),
            trimap_spec=TrimapSpec(int_pair(recipe, "trimap_kernel", (2, 5)), int_pair(recipe, "trimap_iterations", (5, 15))),
            tnet_trimap_spec=tnet_trimap_spec(recipe), mnet_input=str(recipe.get("mnet_input", "trimap")))

    def val_dataset(self, recipe: Mapping[str, Any], data_dir: str, seed: int) -> Dataset:
        stage = str(recipe.get("stage", "e2e"))
        return SHMValDataset(self._source(recipe, data_dir), stage, seed=seed,
                             trimap_spec=TrimapSpec(int_pair(recipe, "trimap_kernel", (2, 5)),
                                                    int_pair(recipe, "trimap_iterations", (5, 15))),
                             mnet_input=str(recipe.get("mnet_input", "trimap")),
                             infer_size=_int(recipe, "infer_size"), tnet_trimap_spec=tnet_trimap_spec(recipe))

    def losses(self, model: nn.Module, batch: Mapping[str, torch.Tensor], stage: str) -> dict[str, torch.Tensor]:
        """Forward pass in training mode and the stage's loss (see the module docstring)."""
        _check_stage(stage)
        net = _net(model)
        w = self.loss_weights
        if stage == "tnet":
            net.mnet.eval()
            logits = model(batch["image"], tnet_only=True)["trimap_logits"]  # through DDP's wrapper
            l_t = trimap_loss(logits, batch["classes"])
            return {"loss": l_t, "trimap": l_t}
        if stage == "mnet":
            net.tnet.eval()  # frozen and unused: its batch-norm statistics must not move
            if "probs" in batch:  # mnet_input = "tnet": a perfect T-Net's soft probabilities
                probs = batch["probs"]
                region = (probs[:, UNKNOWN_CLASS:UNKNOWN_CLASS + 1] > POSSIBLY_UNKNOWN).to(probs.dtype)
            else:
                probs = classes_to_onehot(trimap_tensor_to_classes(batch["trimap"]))
                region = unknown_weight(batch["trimap"])
            out = model(batch["image"], probs=probs.to(batch["image"].dtype))
            return prediction_loss(out["alpha"], batch["alpha"], batch["fg"], batch["bg"], batch["image"],
                                   region, gamma=w["gamma"])
        # the T-Net sees the crop at its own stage's scale: the size of its target trimap
        out = model(batch["image"], tnet_size=tuple(batch["classes"].shape[-2:]))
        return shm_loss(out["alpha"], out["trimap_logits"], batch["classes"], batch["alpha"], batch["fg"],
                        batch["bg"], batch["image"], gamma=w["gamma"], lam=w["lambda"])

    @torch.no_grad()
    def predict(self, model: nn.Module, batch: Mapping[str, torch.Tensor], stage: str) -> torch.Tensor:
        """Validation alpha: ``tnet`` its trimap as F_s + 0.5 U_s (1 / 0.5 / 0), scored against
        its target trimap (data.py, SHMValDataset); ``mnet`` the fusion with the ground-truth
        trimap (or a perfect T-Net's probabilities); ``e2e`` the whole network (predict)."""
        _check_stage(stage)
        net = _net(model)
        image = batch["image"]
        if stage == "tnet":
            probs = net.trimap_probabilities(image)
            return (probs[:, FOREGROUND_CLASS:FOREGROUND_CLASS + 1]
                    + 0.5 * probs[:, UNKNOWN_CLASS:UNKNOWN_CLASS + 1]).clamp(0, 1)
        if stage == "mnet":
            probs = batch["gt_probs"] if "gt_probs" in batch else classes_to_onehot(
                trimap_tensor_to_classes(batch["gt_trimap"]))
            return net.fusion(probs, net.tiled_raw_alpha(image, probs.to(image.dtype))).clamp(0, 1)
        return net.predict(image)["alpha"]


FAMILY = SHMFamily()
