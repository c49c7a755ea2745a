"""What precision a forward pass really ran in (not collected by pytest)."""
from __future__ import annotations

from typing import Callable

import torch


def conv_output_dtypes(fn: Callable[[], object]) -> list[torch.dtype]:
    """Run ``fn`` and return the dtype of every Conv2d output computed meanwhile, in any model."""
    seen: list[torch.dtype] = []

    def hook(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            seen.append(output.dtype)

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        fn()
    finally:
        handle.remove()
    return seen
