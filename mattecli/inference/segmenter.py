"""Background Matting's soft-segmentation cue, for images and video alike: from a person mask
(``--segmentation``) or from a guidance-free network (``--segmenter``, an SHM checkpoint).

Background Matting feeds its network a soft segmentation S of the person; the official code
makes it with DeepLabv3+ and softens it (``families/bgm/cues.soften_mask``). ``--segmenter
shm.pt`` uses a trained Semantic Human Matting checkpoint instead: its predicted alpha is the
person mask that is then softened exactly as a given ``--segmentation`` mask is.
"""
from __future__ import annotations

import os

import numpy as np
import torch

from mattecli.errors import BadInput, MatteError
from mattecli.inference.methods import _chw_float


class Segmenter:
    """Person masks (float HxW in [0, 1]) from a guidance-free matting checkpoint."""

    def __init__(self, weights: str | os.PathLike, device: torch.device) -> None:
        from mattecli.families.registry import load_model

        model, ckpt = load_model(weights, device)
        if model.guidance != "none":
            raise BadInput(weights, f"is a '{ckpt['family']}' checkpoint that needs {model.guidance} guidance; "
                                    "--segmenter takes a guidance-free network (an shm checkpoint)")
        self.model, self.family, self.device = model, str(ckpt["family"]), device

    def mask(self, image: np.ndarray) -> np.ndarray:
        """The network's alpha for one uint8 HxWx3 RGB image."""
        x = _chw_float(image)[None]
        try:
            with torch.no_grad():
                alpha = self.model.predict(x.to(self.device), None)["alpha"]
        except RuntimeError as exc:
            raise MatteError(f"the --segmenter network failed ({str(exc).splitlines()[0][:160]})") from None
        return alpha[0, 0].float().clamp(0.0, 1.0).cpu().numpy()


def segmenter_for(method, segmentation: object, segmenter: str | os.PathLike | None) -> Segmenter | None:
    """Check ``--segmentation``/``--segmenter`` against ``method`` and build the segmenter, if any."""
    for flag, value in (("--segmentation", segmentation), ("--segmenter", segmenter)):
        if value is not None and "segmentation" not in getattr(getattr(method, "model", None), "cues", ()):
            raise MatteError(f"{flag}: {method.name} takes no segmentation cue")
    if segmentation is not None and segmenter is not None:
        raise MatteError("give --segmentation (masks) or --segmenter (a network that makes them), not both")
    return None if segmenter is None else Segmenter(segmenter, method.device)


def segmentation_cue(image: np.ndarray, segmenter: Segmenter | None = None,
                     mask_path: str | os.PathLike | None = None, what: str = "the image") -> np.ndarray:
    """The soft segmentation S for one uint8 RGB image: the segmenter's alpha, or the mask file
    (same size as the image), softened as the official script softens its person masks."""
    from mattecli.families.bgm.cues import soften_mask
    from mattecli.io.images import read_alpha

    if segmenter is not None:
        return soften_mask(segmenter.mask(image))
    mask = read_alpha(mask_path)
    if mask.shape != image.shape[:2]:
        raise BadInput(mask_path, f"mask is {mask.shape[1]}x{mask.shape[0]} but {what} is "
                                  f"{image.shape[1]}x{image.shape[0]}")
    return soften_mask(mask)
