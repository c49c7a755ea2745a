"""Foreign Deep Image Matting checkpoints -> mattecli ``dim`` checkpoints (docs/families.md, section 5).

``mmagic-dim``: mmagic 1.x and mmediting 0.x ``DIM`` models (``configs/dim``, e.g. the
published ``dim_stage3_v16_pln_1x1_1000k_comp1k`` at SAD 50.6 on Composition-1k). Their
state dict, as those repositories name it:

- ``backbone.encoder`` (``VGG16``): ``layer1`` .. ``layer5``, each an ``nn.Sequential`` of
  (conv, ReLU) pairs and a max-pool, so the convs sit at positions 0, 2 (and 4 in layers
  3-5); then ``conv6`` (1x1, 512 -> 512) and, with ``batch_norm``, BN layers in between
  and a ``bn`` after conv6;
- ``backbone.decoder`` (``PlainDecoder``): ``deconv6_1``, ``deconv5_1`` .. ``deconv1_1``
  and ``deconv1`` (the 5x5 alpha prediction conv); no batch norm;
- ``refiner`` (``PlainRefiner``, stage 2 and 3 only): ``refine_conv1..3``, ``refine_pred``.

What those checkpoints expect, and what the converted network therefore does: RGB
normalised with ImageNet mean/std (mattecli's own), the trimap channel as trimap/255, so
unknown = 128/255 (``trimap_unknown_value``), reflect padding to a multiple of 32, the
sigmoid after the decoder's logits, the refiner's output added to those logits before its
own sigmoid, known trimap regions clamped afterwards. Batch-norm and ASPP encoder variants
(not published for DIM) are refused.
"""
from __future__ import annotations

from typing import Any

import torch

from mattecli.errors import MatteError
from mattecli.families.dim.model import DeepImageMatting, Decoder, IMAGENET_MEAN, IMAGENET_STD
from mattecli.backbones.vgg import CONV_INDICES
from mattecli.io.foreign import StateMapper

FORMAT = "mmagic-dim"
#: convs per VGG16 block in mmagic's ``VGG16`` (conv, ReLU pairs, so at 0, 2, 4)
_BLOCK_CONVS = (2, 2, 3, 3, 3)
_ENCODER, _DECODER, _REFINER = "backbone.encoder.", "backbone.decoder.", "refiner."
#: mmagic 1.x's ``MattorPreprocessor`` may keep its mean/std (0-255 scale) as buffers
_PREPROCESSOR = {"data_preprocessor.mean": IMAGENET_MEAN, "data_preprocessor.std": IMAGENET_STD}
MMAGIC_TRIMAP_UNKNOWN = 128.0 / 255.0


def _conv6_variant(weight: torch.Tensor) -> str:
    shape = tuple(weight.shape)
    if shape == (512, 512, 1, 1):
        return "1x1"
    if shape == (512, 512, 3, 3):
        return "3x3"
    if shape == (4096, 512, 7, 7):
        return "fc6"
    raise MatteError(f"{FORMAT}: backbone.encoder.conv6.weight has shape {shape}; expected 512x512x1x1")


def _check_preprocessor(m: StateMapper) -> None:
    for key, expected in _PREPROCESSOR.items():
        if not m.has(key):
            continue
        value = m.take(key).flatten().double() / 255.0
        if value.numel() != 3 or not torch.allclose(value, torch.tensor(expected, dtype=torch.float64), atol=1e-4):
            raise MatteError(f"{FORMAT}: {key} = {[round(v * 255, 3) for v in value.tolist()]} is not the ImageNet "
                             "normalisation these networks were trained with")


def convert_mmagic_dim(state: dict[str, torch.Tensor]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """mmagic / mmediting 0.x Deep Image Matting (VGG16 encoder, plain decoder, plain refiner)."""
    m = StateMapper(state, FORMAT)
    if not any(k.startswith(_ENCODER) for k in state):
        found = ", ".join(sorted(state)[:3])
        raise MatteError(f"{FORMAT}: no {_ENCODER}* keys, so not an mmagic DIM checkpoint (found {found}, ...)")
    if any(k.startswith(_ENCODER + "aspp.") for k in state):
        raise MatteError(f"{FORMAT}: the encoder has an ASPP module (a different mmagic matting model); not supported")
    if any(k.startswith(_ENCODER + "bn.") or k.endswith("running_mean") for k in state if k.startswith(_ENCODER)):
        raise MatteError(f"{FORMAT}: the VGG16 encoder has batch norm (mmagic's batch_norm=True variant, "
                         "encoder only); not supported")
    _check_preprocessor(m)

    # encoder: the 13 VGG convs in order, then conv6
    targets = iter(CONV_INDICES)
    for block, convs in enumerate(_BLOCK_CONVS, start=1):
        for k in range(convs):
            index = next(targets)
            for part in ("weight", "bias"):
                m.move(f"{_ENCODER}layer{block}.{2 * k}.{part}", f"encoder.features.{index}.{part}")
    conv6 = _conv6_variant(m.take(_ENCODER + "conv6.weight"))
    m.move(_ENCODER + "conv6.weight", "encoder.conv6.weight")
    m.move(_ENCODER + "conv6.bias", "encoder.conv6.bias")

    # decoder: same names, except the alpha prediction conv
    for name in ["deconv6_1"] + [w[0] for w in Decoder.WIDTHS]:
        m.move_prefix(f"{_DECODER}{name}.", f"decoder.{name}.", ("weight", "bias"))
    m.move_prefix(_DECODER + "deconv1.", "decoder.alpha_prediction.", ("weight", "bias"))

    # refiner: present from stage 2 on; its checkpoints test with refine=True
    has_refiner = any(k.startswith(_REFINER) for k in state)
    if has_refiner:
        for name in ("refine_conv1", "refine_conv2", "refine_conv3", "refine_pred"):
            m.move_prefix(f"{_REFINER}{name}.", f"refiner.{name}.", ("weight", "bias"))

    config = {"conv6": conv6, "batch_norm": False, "refine": has_refiner,
              "trimap_unknown_value": MMAGIC_TRIMAP_UNKNOWN, "refiner": has_refiner}
    with torch.device("meta"):  # only the names and shapes are needed
        network = DeepImageMatting(**config)
    return config, m.finish(network)


IMPORT_FORMATS = {FORMAT: convert_mmagic_dim}
