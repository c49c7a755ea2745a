"""Foreign Deep Image Matting checkpoints -> mattecli ``dim`` checkpoints (docs/families.md, section 5)."""
from __future__ import annotations

from typing import Any

import torch

from mattecli.errors import MatteError


def convert_mmagic_dim(state: dict[str, torch.Tensor]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """mmagic / mmediting 0.x Deep Image Matting (VGG16 encoder, plain decoder, plain refiner)."""
    raise MatteError("mmagic-dim: not implemented yet")


IMPORT_FORMATS = {"mmagic-dim": convert_mmagic_dim}
