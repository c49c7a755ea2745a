"""Run a trained trimap model over a composed test set: the first half of ``eval --weights``.

Each record's merged image is matted with the record's trimap and written as
``OUT/<record name>.png`` (8-bit, known regions clamped), the name ``mattecli eval --data``
pairs predictions by. Images of equal size are batched; a file that cannot be read is
reported and skipped, and the others go on.
"""
from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mattecli.errors import BadInput, MatteError
from mattecli.io.images import read_alpha, read_rgb, write_image
from mattecli.data.manifest import read_manifest, resolve
from mattecli.data.trimap import clamp_known, normalise_trimap


@dataclass
class PredictSummary:
    written: list[Path] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def predict_dataset(weights: str | os.PathLike, dataset_dir: str | os.PathLike, out_dir: str | os.PathLike,
                    device: str = "auto", batch_size: int = 1, on_image=None) -> PredictSummary:
    """Predict every record of a compose dataset with the network in ``weights``."""
    from mattecli.models.registry import load_model
    from mattecli.devices import resolve_device

    dev = resolve_device(device)
    model, ckpt = load_model(weights, dev)
    if getattr(model, "guidance", None) != "trimap":
        raise BadInput(weights, f"a '{ckpt['family']}' network needs {model.guidance} guidance, "
                                "not the dataset's trimaps")
    records = read_manifest(dataset_dir)
    lacking = [r.name for r in records if not r.merged_path or not r.trimap_path]
    if lacking:
        raise BadInput(dataset_dir, f"{len(lacking)} record(s) lack merged/trimap images (e.g. {lacking[0]}); "
                                    "compose the test set with --trimaps")
    out = Path(out_dir)
    summary = PredictSummary()
    groups: dict[tuple[int, int], list[tuple[str, np.ndarray, np.ndarray]]] = defaultdict(list)

    def flush(size: tuple[int, int]) -> None:
        items = groups.pop(size, [])
        if not items:
            return
        image = torch.from_numpy(np.stack([i for _, i, _ in items])).permute(0, 3, 1, 2).float().div(255).to(dev)
        trimap = torch.from_numpy(np.stack([t for _, _, t in items]))[:, None].float().div(255).to(dev)
        trimap = torch.round(trimap * 2) / 2  # {0, 0.5, 1}
        with torch.no_grad():
            alpha = model.predict(image, trimap)["alpha"][:, 0].float().clamp(0, 1).cpu().numpy()
        for (name, _, t), a in zip(items, alpha):
            a = clamp_known(a, t)
            path = out / f"{name}.png"
            write_image(path, np.round(a * 255).astype(np.uint8))
            summary.written.append(path)
            if on_image is not None:
                on_image(name)

    for record in records:
        try:
            image = read_rgb(resolve(dataset_dir, record.merged_path))
            trimap, _ = normalise_trimap(read_alpha(resolve(dataset_dir, record.trimap_path)))
            if trimap.shape != image.shape[:2]:
                raise BadInput(resolve(dataset_dir, record.trimap_path),
                               f"is {trimap.shape[1]}x{trimap.shape[0]}, its image is "
                               f"{image.shape[1]}x{image.shape[0]}")
        except MatteError as exc:
            summary.failures.append(str(exc))
            if on_image is not None:
                on_image(record.name)
            continue
        size = image.shape[:2]
        groups[size].append((record.name, image, trimap))
        if len(groups[size]) >= max(1, batch_size):
            flush(size)
    for size in list(groups):
        flush(size)
    return summary
