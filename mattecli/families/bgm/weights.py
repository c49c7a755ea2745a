"""The official Background Matting generators -> mattecli ``bgm`` checkpoints (docs/families.md, section 5).

``bgm-v1``: ``netG_epoch_N.pth`` of senguptaumd/Background-Matting (the released
``real-fixed-cam``, ``real-hand-held`` and ``syn-comp-adobe`` models), ``ResnetConditionHR``
state dicts saved through DataParallel (the framework strips ``module.``). Their names, from
``networks.py``, and where they go:

- ``model_enc1`` (pad, conv 7x7, BN, ReLU, conv s2, BN, ReLU) -> ``image_encoder.stage1``;
  ``model_enc2`` (conv s2, BN, ReLU) -> ``image_encoder.stage2``;
- ``model_enc_back`` / ``model_enc_seg`` / ``model_enc_multi`` -> ``background_encoder`` /
  ``segmentation_encoder`` / ``motion_encoder`` (same layer positions);
- ``comb_back`` / ``comb_seg`` / ``comb_multi`` -> ``context_switch.{background,segmentation,motion}_selector``;
- ``model_res_dec``: positions 0-1 (the 1x1 combinator conv and its BN) ->
  ``context_switch.combinator``; positions 3.. (residual blocks) -> ``decoder.0..``;
- ``model_res_dec_al`` / ``model_res_dec_fg`` -> ``alpha_decoder`` / ``foreground_decoder``;
- ``model_al_out`` -> ``alpha_head``; ``model_dec_fg1`` -> ``foreground_head.up``;
  ``model_fg_out`` -> ``foreground_head.out``.

Widths and block counts are read from the tensors (ngf, nf_part, n_blocks1, n_blocks2, the
motion frames). The released weights were trained with the motion selector fed the
background features (issues #36, #38), so the converted network has ``motion_wiring =
"published"``.
"""
from __future__ import annotations

import re

import torch

from mattecli.errors import MatteError
from mattecli.families.registry import build_model
from mattecli.io.foreign import StateMapper

PREFIXES = (
    ("model_enc1.", "image_encoder.stage1."),
    ("model_enc2.", "image_encoder.stage2."),
    ("model_enc_back.", "background_encoder."),
    ("model_enc_seg.", "segmentation_encoder."),
    ("model_enc_multi.", "motion_encoder."),
    ("comb_back.", "context_switch.background_selector."),
    ("comb_seg.", "context_switch.segmentation_selector."),
    ("comb_multi.", "context_switch.motion_selector."),
    ("model_res_dec_al.", "alpha_decoder."),
    ("model_res_dec_fg.", "foreground_decoder."),
    ("model_al_out.", "alpha_head."),
    ("model_dec_fg1.", "foreground_head.up."),
    ("model_fg_out.", "foreground_head.out."),
)
_RES_DEC = re.compile(r"^model_res_dec\.(\d+)\.(.*)$")


def target_key(key: str) -> str | None:
    """Where an official key goes in :class:`mattecli.families.bgm.model.BackgroundMatting`."""
    m = _RES_DEC.match(key)
    if m:
        index, rest = int(m.group(1)), m.group(2)
        if index in (0, 1):
            return f"context_switch.combinator.{index}.{rest}"
        if index >= 3:
            return f"decoder.{index - 3}.{rest}"
        return None
    for source, target in PREFIXES:
        if key.startswith(source):
            return target + key[len(source):]
    return None


def _blocks(state: dict[str, torch.Tensor], prefix: str, offset: int = 0) -> int:
    found = {int(m.group(1)) for k in state for m in [re.match(rf"^{re.escape(prefix)}(\d+)\.conv_block\.", k)] if m}
    return len(found)


def convert_bgm_v1(state: dict[str, torch.Tensor]) -> tuple[dict, dict[str, torch.Tensor]]:
    """Background Matting v1 (Sengupta et al. 2020) netG_epoch_N.pth (ResnetConditionHR, published motion wiring)."""
    fmt = "bgm-v1"
    for key in ("model_enc1.1.weight", "comb_back.0.weight", "model_enc_multi.1.weight", "model_al_out.9.weight"):
        if key not in state:
            raise MatteError(f"{fmt}: not a Background Matting generator (no {key}; a discriminator netD file "
                             "or another network?)")
    ngf = int(state["model_enc1.1.weight"].shape[0])
    config = {"ngf": ngf, "nf_part": int(state["comb_back.0.weight"].shape[0]),
              "n_blocks1": _blocks(state, "model_res_dec."), "n_blocks2": _blocks(state, "model_res_dec_al."),
              "motion_frames": int(state["model_enc_multi.1.weight"].shape[1]), "motion_wiring": "published"}
    if _blocks(state, "model_res_dec_fg.") != config["n_blocks2"]:
        raise MatteError(f"{fmt}: the alpha and foreground branches have different depths; not supported")
    if int(state["model_enc1.1.weight"].shape[1]) != 3 or int(state["model_enc_seg.1.weight"].shape[1]) != 1:
        raise MatteError(f"{fmt}: input channels differ from the official (3, 3, 1, M); not supported")
    mapper = StateMapper(state, fmt)
    for key in state:
        target = target_key(key)
        if target is not None:
            mapper.move(key, target)
    return config, mapper.finish(build_model("bgm", config))


IMPORT_FORMATS = {"bgm-v1": convert_bgm_v1}
