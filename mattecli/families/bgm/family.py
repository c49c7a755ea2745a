"""Background Matting as a training family: stages ``adobe`` then ``real``.

- ``adobe``: supervised on composites with perturbed plates, simulated S and M
  (:class:`mattecli.families.bgm.data.BGMAdobeDataset`), ``train_adobe.py``'s loss.
- ``real``: self-supervised adversarial training on unlabelled captures
  (:class:`mattecli.families.bgm.data.BGMCapturesDataset`) with a frozen ``adobe`` teacher
  (recipe key ``teacher``: a bgm checkpoint; ``mattecli train bgm`` fills in OUT/adobe/best.pt).
  As ``train_real_fixed.py``, the student starts from random initialisation (``student_init
  = "random"``; ``"teacher"`` starts from the teacher's weights instead), the discriminator
  is stepped once every ``d_every`` (5) generator steps with its own Adam (``d_lr`` 1e-5), and
  the pseudo-supervision weight 0.05 halves every 2 epochs. The generator's adversarial
  term is computed with the discriminator's weights *before* that step's D update, as the
  official loop computes L_G before stepping D. The ``--data`` of this stage is a captures
  folder; ``--data`` of ``adobe`` a compose dataset (or fg/alpha/bg folders).

Recipe keys read here (defaults in brackets): ``ngf`` [64], ``nf_part`` [64], ``n_blocks1`` [7],
``n_blocks2`` [3], ``motion_wiring`` ["corrected"], ``input_size`` [512], ``base_size`` [800],
``crop_sizes`` [576..800 step 32], ``flip`` [true], ``trimap_kernel`` [3] / ``trimap_iterations`` [5] /
``trimap_dilate_ratio`` [2] (the official ``generate_trimap``: 3x3 ellipse, erode K = 5, dilate 2K),
``plate_shift`` / ``plate_blur`` [false], ``segmentation_threshold`` [0.5], ``cue_scale`` [1.0:
S's morphology, holes, blur and M's shifts relative to the official 512-px crops], ``names`` [none:
all foregrounds], ``backgrounds`` [the dataset's pool], ``check_files`` [true], ``captures``
[none: ``--data``], ``teacher``, ``student_init`` ["random"], ``d_lr`` [1e-5], ``d_every`` [5],
``d_betas`` [the engine's betas].
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import torch
from torch import nn
from torch.func import functional_call
from torch.utils.data import Dataset

from mattecli.families.registry import RegisteredNetwork
from mattecli.data.plates import PlateSpec
from mattecli.data.sources import check_files, find_samples
from mattecli.data.trimap import TrimapSpec
from mattecli.errors import MatteError
from mattecli.families.bgm.cues import SegmentationSpec
from mattecli.families.bgm.data import (OFFICIAL_TRIMAP, BGMAdobeDataset, BGMCapturesDataset, find_captures,
                                        restrict_to_names)
from mattecli.families.bgm.losses import adobe_loss, discriminator_loss, lsgan, pseudo_supervision, pseudo_weight
from mattecli.families.bgm.model import MOTION_WIRINGS, BackgroundMatting, conv_init, to_signed, to_unit
from mattecli.seeding import derive_seed
from mattecli.tensors import crop_to, pad_to_multiple
from mattecli.train.recipe_checks import (bad, check_bools, check_paths, check_sizes, check_stage, int_pair, is_int,
                                          is_number, network)

STAGES = ("adobe", "real")
DEFAULT_CROPS = tuple(range(576, 801, 32))


def _net(model: nn.Module) -> BackgroundMatting:
    return network(model, BackgroundMatting, "a Background Matting network")


def _check_stage(stage: str) -> None:
    check_stage(stage, STAGES, "bgm")


def check_recipe(recipe: Mapping[str, Any]) -> None:
    for key, low in (("ngf", 1), ("nf_part", 1), ("n_blocks1", 0), ("n_blocks2", 0), ("d_every", 1)):
        if key in recipe and not is_int(recipe[key], low):
            raise bad(key, recipe[key], f"an integer >= {low}")
    if recipe.get("motion_wiring", "corrected") not in MOTION_WIRINGS:
        raise bad("motion_wiring", recipe.get("motion_wiring"), f"one of {', '.join(MOTION_WIRINGS)}")
    size = recipe.get("input_size", 512)
    if not is_int(size, 16) or size % 4:
        raise bad("input_size", size, "a multiple of 4, at least 16")
    if not is_int(recipe.get("base_size", 800), 0):
        raise bad("base_size", recipe.get("base_size"), "an integer >= 0 (0 = keep the sizes)")
    check_sizes("crop_sizes", recipe.get("crop_sizes", list(DEFAULT_CROPS)))
    check_bools(recipe, ("flip", "check_files", "plate_shift", "plate_blur"))
    for key in ("d_lr", "segmentation_threshold", "cue_scale"):
        value = recipe.get(key, 0.5)
        if not is_number(value) or value <= 0:
            raise bad(key, value, "a positive number")
    if recipe.get("student_init", "random") not in ("random", "teacher"):
        raise bad("student_init", recipe.get("student_init"), "random or teacher")
    check_paths(recipe, ("names", "backgrounds", "teacher", "captures"))
    for key in ("trimap_kernel", "trimap_iterations"):
        int_pair(recipe, key, (1, 1))
    if "trimap_dilate_ratio" in recipe and not is_int(recipe["trimap_dilate_ratio"], 0):
        raise bad("trimap_dilate_ratio", recipe["trimap_dilate_ratio"],
                  "an integer >= 0 (0 = independent erosion and dilation draws)")


def trimap_spec(recipe: Mapping[str, Any]) -> TrimapSpec:
    """The adobe stage's trimap generator; without the keys, the official ``generate_trimap``."""
    default = OFFICIAL_TRIMAP
    return TrimapSpec(kernel=int_pair(recipe, "trimap_kernel", default.kernel),
                      iterations=int_pair(recipe, "trimap_iterations", default.iterations),
                      dilate_ratio=int(recipe.get("trimap_dilate_ratio", default.dilate_ratio)))


class BGMFamily(RegisteredNetwork):
    name = "bgm"
    stages = STAGES
    #: recipe keys read here that the bundled recipes leave out (mattecli.train.recipe.known_keys)
    recipe_keys = ("captures", "teacher", "d_betas")

    def __init__(self) -> None:
        self._recipe: dict[str, Any] = {}
        self._teacher: BackgroundMatting | None = None

    def model_config(self, recipe: Mapping[str, Any]) -> dict[str, Any]:
        check_recipe(recipe)
        self._recipe = dict(recipe)
        return {"ngf": int(recipe.get("ngf", 64)), "nf_part": int(recipe.get("nf_part", 64)),
                "n_blocks1": int(recipe.get("n_blocks1", 7)), "n_blocks2": int(recipe.get("n_blocks2", 3)),
                "motion_wiring": str(recipe.get("motion_wiring", "corrected")),
                "resolution": int(recipe.get("input_size", 512)),
                "discriminator": recipe.get("stage") == "real"}

    def prepare_model(self, model: nn.Module, recipe: Mapping[str, Any], stage: str) -> None:
        """Nothing to load: the official generator has no pre-trained backbone."""
        _check_stage(stage)

    def _load_teacher(self, net: BackgroundMatting) -> BackgroundMatting:
        from mattecli.families.registry import load_model

        path = self._recipe.get("teacher")
        if not path:
            raise MatteError("stage real needs recipe key teacher = an adobe-stage bgm checkpoint "
                             "(mattecli train bgm sets OUT/adobe/best.pt)")
        teacher, ckpt = load_model(path)
        if ckpt.get("family") != "bgm":
            raise MatteError(f"{path}: teacher is a '{ckpt.get('family')}' checkpoint, not bgm")
        teacher.discriminator = None
        for p in teacher.parameters():
            p.requires_grad_(False)
        return teacher.eval()

    def trainable_parameters(self, model: nn.Module, stage: str) -> Iterable[nn.Parameter]:
        _check_stage(stage)
        net = _net(model)
        if stage == "real":
            self._teacher = self._load_teacher(net)
            # A fresh stage starts from the previous stage's weights (the engine loads them) or
            # from random ones; the official student is random, so re-initialise it -- but never
            # a resumed student (its weights differ from the teacher's).
            teacher_state = self._teacher.state_dict()
            same = all(torch.equal(v.cpu(), teacher_state[k].cpu()) for k, v in net.state_dict().items()
                       if k in teacher_state and torch.is_tensor(v))
            if same and self._recipe.get("student_init", "random") == "random":
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(derive_seed(int(self._recipe.get("seed", 0)), "bgm-student") % 2**63)
                    for name, child in net.named_children():
                        if name != "discriminator":
                            conv_init(child)
        generator = [p for n, p in net.named_parameters() if not n.startswith("discriminator.")]
        for p in net.parameters():
            p.requires_grad_(False)
        for p in generator:
            p.requires_grad_(True)
        return generator

    # --- data ----------------------------------------------------------------------------

    def _adobe(self, recipe: Mapping[str, Any], data_dir: str, seed: int, fixed: bool) -> BGMAdobeDataset:
        source = restrict_to_names(find_samples(data_dir, recipe.get("backgrounds")), recipe.get("names"))
        if recipe.get("check_files", True):
            check_files(source)
        return BGMAdobeDataset(
            source, seed=seed, crop_sizes=tuple(recipe.get("crop_sizes", DEFAULT_CROPS)),
            input_size=int(recipe.get("input_size", 512)), base_size=int(recipe.get("base_size", 800)),
            trimap_spec=trimap_spec(recipe),
            plate_spec=PlateSpec(shift=bool(recipe.get("plate_shift", False)), blur=bool(recipe.get("plate_blur", False))),
            segmentation_spec=SegmentationSpec(threshold=float(recipe.get("segmentation_threshold", 0.5)),
                                               scale=float(recipe.get("cue_scale", 1.0))),
            flip=bool(recipe.get("flip", True)), fixed=fixed, motion_shift=5.0 * float(recipe.get("cue_scale", 1.0)))

    def train_dataset(self, recipe: Mapping[str, Any], data_dir: str, seed: int) -> Dataset:
        self._recipe = dict(recipe)
        if recipe.get("stage") == "real":
            captures = find_captures(recipe.get("captures") or data_dir, check=bool(recipe.get("check_files", True)))
            return BGMCapturesDataset(captures, seed=seed, input_size=int(recipe.get("input_size", 512)),
                                      flip=bool(recipe.get("flip", True)))
        return self._adobe(recipe, data_dir, seed, fixed=False)

    def val_dataset(self, recipe: Mapping[str, Any], data_dir: str, seed: int) -> Dataset:
        """Synthetic composites with ground truth for both stages (captures have none)."""
        return self._adobe(recipe, data_dir, seed, fixed=True)

    # --- losses --------------------------------------------------------------------------

    @staticmethod
    def _inputs(batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return tuple(to_signed(batch[k]) for k in ("image", "plate", "segmentation", "motion"))

    def losses(self, model: nn.Module, batch: Mapping[str, torch.Tensor], stage: str) -> dict[str, torch.Tensor]:
        _check_stage(stage)
        inputs = self._inputs(batch)
        alpha, fg = model(*inputs)  # through the wrapper, so DDP syncs gradients
        if stage == "adobe":
            return adobe_loss(alpha, fg, to_signed(batch["alpha"]), to_signed(batch["fg"]), inputs[0],
                              to_signed(batch["bg"]))
        return self._real_losses(model, batch, inputs, alpha, fg)

    def _real_losses(self, model: nn.Module, batch: Mapping[str, torch.Tensor], inputs: tuple[torch.Tensor, ...],
                     alpha: torch.Tensor, fg: torch.Tensor) -> dict[str, torch.Tensor]:
        net = _net(model)
        if self._teacher is None:
            raise MatteError("stage real: no teacher loaded (trainable_parameters was not called)")
        teacher = self._teacher.to(alpha.device)
        with torch.no_grad():
            alpha_t, fg_t = teacher(*inputs)
        image, plate = inputs[0], inputs[1]
        parts = pseudo_supervision(alpha, fg, alpha_t, fg_t, image, plate, to_signed(batch["raw_segmentation"]))
        fake = adversarial_composite(alpha, fg, image, plate, to_signed(batch["target"]), batch["use_target"],
                                     batch["shift"])
        critic = net.discriminator
        if critic is None:
            raise MatteError("stage real needs the network built with a discriminator")
        # L_G with the discriminator as it is before this step's update (the official order).
        frozen = {n: p.detach().clone() for n, p in critic.patch.named_parameters()}
        l_gan = lsgan(functional_call(critic.patch, frozen, (fake,)), True)
        epoch = int(batch["epoch"].reshape(-1)[0]) if "epoch" in batch else 0
        weight = pseudo_weight(epoch)
        total = l_gan + weight * (parts["comp"] + parts["alpha"] + parts["fg"])
        if int(critic.generator_steps) % int(self._recipe.get("d_every", 5)) == 0:
            betas = tuple(float(b) for b in self._recipe.get("d_betas", self._recipe.get("betas", (0.9, 0.999))))
            critic.make_optimizer(float(self._recipe.get("d_lr", 1e-5)), betas)
            for p in critic.parameters():
                p.requires_grad_(True)
            critic.step(discriminator_loss(critic(image), critic(fake.detach())))
            for p in critic.parameters():
                p.requires_grad_(False)
        critic.generator_steps += 1
        return {"loss": total, "gan": l_gan, "alpha": parts["alpha"], "fg": parts["fg"], "comp": parts["comp"],
                "d": critic.last_loss.clone(), "pseudo_weight": torch.tensor(weight)}

    @torch.no_grad()
    def predict(self, model: nn.Module, batch: Mapping[str, torch.Tensor], stage: str) -> torch.Tensor:
        _check_stage(stage)
        net = _net(model)
        x = torch.cat(self._inputs(batch), 1)
        x, size = pad_to_multiple(x, 4, mode="reflect")
        alpha, _ = net(x[:, :3], x[:, 3:6], x[:, 6:7], x[:, 7:])
        return crop_to(to_unit(alpha), size).clamp(0.0, 1.0)


def adversarial_composite(alpha: torch.Tensor, fg: torch.Tensor, image: torch.Tensor, plate: torch.Tensor,
                          target: torch.Tensor, use_target: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """The fake for the discriminator ([-1, 1] tensors): F := I where alpha > 0.95, alpha and F
    shifted horizontally by a random amount that keeps the subject inside the frame, composited
    over the target background (``use_target``) or over the next sample's plate in the batch."""
    opaque = (alpha > 0.95).to(fg.dtype)
    fg_c = image * opaque + fg * (1.0 - opaque)
    new_bg = torch.where(use_target.view(-1, 1, 1, 1) > 0.5, target, torch.roll(plate, 1, dims=0))
    width = alpha.shape[-1]
    shifted_a, shifted_f = [], []
    for k in range(alpha.shape[0]):
        cols = torch.nonzero((alpha[k, 0].detach() > -0.9).any(0)).flatten()
        lo, hi = (-int(cols.min()), width - 1 - int(cols.max())) if len(cols) else (0, 0)
        s = lo + round(float(shift[k]) * (hi - lo))
        shifted_a.append(torch.roll(alpha[k:k + 1], s, dims=-1))
        shifted_f.append(torch.roll(fg_c[k:k + 1], s, dims=-1))
    a = (torch.cat(shifted_a) + 1.0) / 2.0
    return a * torch.cat(shifted_f) + (1.0 - a) * new_bg


FAMILY = BGMFamily()
