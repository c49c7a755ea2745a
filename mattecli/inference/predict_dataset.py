"""Run a trained model over a composed test set: the first half of ``eval --weights``.

Each record's merged image is matted with the record's trimap (trimap networks) or with no
guidance at all (guidance-free networks such as SHM) and written as
``OUT/<record name>.png`` (8-bit, known regions clamped), the name ``mattecli eval --data``
pairs predictions by. The network runs through ``mattecli matte``'s ``LearnedMethod``, so
batching, precision, the unknown-box crop of large images and bounded memory are the same;
a file that cannot be read is reported and skipped, and the others go on.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator

import numpy as np

from mattecli.data.manifest import read_manifest, resolve
from mattecli.data.trimap import normalise_trimap
from mattecli.devices import resolve_device
from mattecli.errors import BadInput, MatteError
from mattecli.inference.batch import Item, Job
from mattecli.inference.methods import LearnedMethod
from mattecli.io.images import read_alpha, read_rgb, write_image


@dataclass
class PredictSummary:
    written: list[Path] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def predict_dataset(weights: str | os.PathLike, dataset_dir: str | os.PathLike, out_dir: str | os.PathLike,
                    device: str = "auto", batch_size: int = 1,
                    on_image: Callable[[str], None] | None = None, infer_size: int | None = None) -> PredictSummary:
    """Predict every record of a compose dataset with the network in ``weights``."""
    method = LearnedMethod(weights, resolve_device(device), batch_size, infer_size=infer_size)
    guided = method.model.guidance == "trimap"
    if method.model.guidance not in ("trimap", "none"):
        raise BadInput(weights, f"a '{method.family}' network needs {method.model.guidance} guidance, "
                                "not the dataset's trimaps")
    method.want_foreground = False
    records = read_manifest(dataset_dir)
    lacking = [r.name for r in records if not r.merged_path or (guided and not r.trimap_path)]
    if lacking:
        raise BadInput(dataset_dir, f"{len(lacking)} record(s) lack merged/trimap images (e.g. {lacking[0]}); "
                                    "compose the test set with --trimaps")
    out = Path(out_dir)
    summary = PredictSummary()

    def jobs() -> Iterator[Job]:
        for record in records:
            merged = resolve(dataset_dir, record.merged_path)
            try:
                image = read_rgb(merged)
                trimap = None
                if guided:
                    trimap_path = resolve(dataset_dir, record.trimap_path)
                    trimap, _ = normalise_trimap(read_alpha(trimap_path))
                    if trimap.shape != image.shape[:2]:
                        raise BadInput(trimap_path, f"is {trimap.shape[1]}x{trimap.shape[0]}, its image is "
                                                    f"{image.shape[1]}x{image.shape[0]}")
            except MatteError as exc:
                summary.failures.append(str(exc))
                if on_image is not None:
                    on_image(record.name)
                continue
            name = PurePosixPath(record.name)
            yield Job(Item(merged, name, name), image, trimap, "trimap" if guided else "none")

    for job, result in method.run(jobs()):
        name = job.item.out_rel.as_posix()
        if isinstance(result, Exception):
            summary.failures.append(f"{job.item.path}: {result}")
        else:
            path = out / f"{name}.png"
            write_image(path, np.round(result[0] * 255).astype(np.uint8))
            summary.written.append(path)
        if on_image is not None:
            on_image(name)
    return summary
