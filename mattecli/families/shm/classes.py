"""SHM's three trimap classes, in one place: the data, the loss, the fusion and the outputs read it.

Order (background, unknown, foreground) as both public ports index their labels
(models.md 8.2). A port that split its softmax in another order fused ``P(unknown) +
P(fg) * alpha_r`` (tsing90 #25, lizhengwei1992 #8); here every split goes through
:func:`split_probabilities`, and the test swaps the order to show it would be caught.
"""
from __future__ import annotations

import numpy as np
import torch

from mattecli.data.trimap import BACKGROUND, FOREGROUND, UNKNOWN

CLASSES = ("background", "unknown", "foreground")
BACKGROUND_CLASS, UNKNOWN_CLASS, FOREGROUND_CLASS = (CLASSES.index(c) for c in ("background", "unknown", "foreground"))
#: trimap file level (0/128/255) of each class, by class index
CLASS_FILE_LEVELS = (BACKGROUND, UNKNOWN, FOREGROUND)
#: trimap value of each class in the registry's float convention {0, 0.5, 1}
CLASS_LEVELS = (0.0, 0.5, 1.0)


def trimap_to_classes(trimap: np.ndarray) -> np.ndarray:
    """uint8 {0, 128, 255} trimap -> int64 class indices (the cross-entropy target)."""
    out = np.full(trimap.shape, UNKNOWN_CLASS, np.int64)
    out[trimap == BACKGROUND] = BACKGROUND_CLASS
    out[trimap == FOREGROUND] = FOREGROUND_CLASS
    return out


def trimap_tensor_to_classes(trimap: torch.Tensor) -> torch.Tensor:
    """The same on a uint8 {0, 128, 255} tensor, on its own device (no host round trip)."""
    out = torch.full_like(trimap, UNKNOWN_CLASS, dtype=torch.int64)
    out = torch.where(trimap == BACKGROUND, torch.full_like(out, BACKGROUND_CLASS), out)
    return torch.where(trimap == FOREGROUND, torch.full_like(out, FOREGROUND_CLASS), out)


def classes_to_onehot(classes: torch.Tensor) -> torch.Tensor:
    """Bx1xHxW or BxHxW class indices -> Bx3xHxW one-hot probabilities (M-Net pre-training input)."""
    if classes.dim() == 4:
        classes = classes[:, 0]
    return torch.nn.functional.one_hot(classes.long(), len(CLASSES)).permute(0, 3, 1, 2).float()


def split_probabilities(probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B_s, U_s, F_s), each Bx1xHxW, from Bx3xHxW softmax probabilities."""
    return (probs[:, BACKGROUND_CLASS:BACKGROUND_CLASS + 1], probs[:, UNKNOWN_CLASS:UNKNOWN_CLASS + 1],
            probs[:, FOREGROUND_CLASS:FOREGROUND_CLASS + 1])


def probabilities_to_trimap(probs: torch.Tensor) -> torch.Tensor:
    """The most probable class as a Bx1xHxW trimap in {0, 0.5, 1} (``matte --output trimap``)."""
    levels = torch.tensor(CLASS_LEVELS, dtype=probs.dtype, device=probs.device)
    return levels[probs.argmax(dim=1, keepdim=True)]
