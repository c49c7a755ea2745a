"""A guidance-free network (an SHM checkpoint) as Background Matting's person segmenter.

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
        x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div(255.0)[None]
        try:
            with torch.no_grad():
                alpha = self.model.predict(x.to(self.device), None)["alpha"]
        except RuntimeError as exc:
            raise MatteError(f"the --segmenter network failed ({str(exc).splitlines()[0][:160]})") from None
        return alpha[0, 0].float().clamp(0.0, 1.0).cpu().numpy()
