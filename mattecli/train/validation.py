"""Validation with the project's own metrics (the same code ``mattecli eval`` uses)."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

METRIC_NAMES = ("sad", "mse", "grad", "conn")


def to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    non_blocking = device.type == "cuda"
    return {k: v.to(device, non_blocking=non_blocking) if torch.is_tensor(v) else v for k, v in batch.items()}


def quantise(alpha: torch.Tensor) -> np.ndarray:
    """HxW float32 alpha rounded to 8 bits, exactly as a written PNG prediction reads back,
    so validation SAD equals what ``mattecli eval`` reports on the saved predictions."""
    return (torch.round(alpha.float().clamp(0, 1) * 255) / 255).cpu().numpy().astype(np.float32)


@torch.no_grad()
def validate(family: Any, model: torch.nn.Module, dataset: Dataset, stage: str,
             device: torch.device) -> dict[str, float]:
    """Mean SAD/MSE/Grad/Conn over the validation set (one image at a time: sizes may differ)."""
    from mattecli.metrics import compute_metrics

    was_training = model.training
    model.eval()
    totals = dict.fromkeys(METRIC_NAMES, 0.0)
    count = 0
    loader = DataLoader(dataset, batch_size=1, shuffle=False, num_workers=0)
    for batch in loader:
        batch = to_device(batch, device)
        pred = family.predict(model, batch, stage)
        for i in range(pred.shape[0]):
            gt = batch["alpha"][i, 0].float().cpu().numpy().astype(np.float32)
            trimap = batch["trimap"][i, 0].cpu().numpy().astype(np.uint8)
            scores = compute_metrics(quantise(pred[i, 0]), gt, trimap)
            for name in METRIC_NAMES:
                totals[name] += float(scores[name])
            count += 1
    model.train(was_training)
    return {name: totals[name] / max(count, 1) for name in METRIC_NAMES} | {"count": count}
