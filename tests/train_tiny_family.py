"""A tiny trimap model and training family for the engine's tests (not collected by pytest).

Small enough that a few dozen steps take a second on CPU, but it has everything the
engine must handle: two stages with different trainable parts, a config that changes
between stages, a dataset that depends on (seed, epoch, index) and a validation set.
Run as a script, it trains under torchrun and saves each rank's final weights.
"""
from __future__ import annotations

import sys
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from mattecli.families.registry import RegisteredNetwork, register_family
from mattecli.seeding import derive_seed
from mattecli.families.registry import register_training_family

SIZE = 16


class TinyMatter(nn.Module):
    family = "tiny"
    guidance = "trimap"

    def __init__(self, width: int = 6, refine: bool = False) -> None:
        super().__init__()
        self.refine = refine
        self.body = nn.Sequential(nn.Conv2d(4, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 1, 3, padding=1))
        self.head = nn.Conv2d(4, 1, 3, padding=1)

    def forward(self, image: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
        logit = self.body(torch.cat([image, trimap], 1))
        if self.refine:
            logit = logit + self.head(torch.cat([image, torch.sigmoid(logit)], 1))
        return torch.sigmoid(logit)

    @torch.no_grad()
    def predict(self, image: torch.Tensor, guidance: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"alpha": self(image, guidance)}


@register_family("tiny")
def build_tiny(width: int = 6, refine: bool = False) -> TinyMatter:
    return TinyMatter(width, refine)


def make_sample(seed: int, *keys: object) -> dict[str, torch.Tensor]:
    """An image whose alpha is a smooth function of it: learnable by two conv layers."""
    g = torch.Generator().manual_seed(derive_seed(seed, *keys))
    image = F.avg_pool2d(torch.rand(1, 3, SIZE + 2, SIZE + 2, generator=g), 3, 1)[0]
    alpha = ((image[0:1] - image[1:2]) * 4 + 0.5).clamp(0, 1)
    trimap = torch.full((1, SIZE, SIZE), 128, dtype=torch.uint8)
    trimap[:, :2] = 0
    trimap[:, -2:] = 255
    alpha[:, :2], alpha[:, -2:] = 0.0, 1.0
    return {"image": image, "alpha": alpha, "trimap": trimap}


class TinyTrain(Dataset):
    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return make_sample(self.seed, "train", self.epoch, index)


class TinyVal(Dataset):
    def __init__(self, n: int, seed: int) -> None:
        self.items = [make_sample(seed, "val", i) for i in range(n)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.items[index]


class TinyFamily(RegisteredNetwork):
    name = "tiny"
    stages = ("base", "head")

    def __init__(self) -> None:
        self.prepared: list[str] = []

    def model_config(self, recipe: Mapping[str, Any]) -> dict[str, Any]:
        return {"width": int(recipe.get("width", 6)), "refine": recipe["stage"] == "head"}

    def prepare_model(self, model: nn.Module, recipe: Mapping[str, Any], stage: str) -> None:
        self.prepared.append(stage)

    def trainable_parameters(self, model: nn.Module, stage: str):
        return model.parameters() if stage == "base" else model.head.parameters()

    def train_dataset(self, recipe: Mapping[str, Any], data_dir: str, seed: int) -> Dataset:
        return TinyTrain(int(recipe.get("train_samples", 10)), seed)

    def val_dataset(self, recipe: Mapping[str, Any], data_dir: str, seed: int) -> Dataset:
        return TinyVal(int(recipe.get("val_samples", 3)), 1234)

    def losses(self, model: nn.Module, batch: Mapping[str, torch.Tensor], stage: str) -> dict[str, torch.Tensor]:
        self.last_model = model
        pred = model(batch["image"], batch["trimap"].float() / 255)
        unknown = (batch["trimap"] == 128).float()
        l1 = ((pred - batch["alpha"]).abs() * unknown).sum() / unknown.sum().clamp(min=1)
        return {"loss": l1, "l1": l1.detach()}

    def predict(self, model: nn.Module, batch: Mapping[str, torch.Tensor], stage: str) -> torch.Tensor:
        alpha = model.predict(batch["image"], batch["trimap"].float() / 255)["alpha"]
        alpha = torch.where(batch["trimap"] == 255, torch.ones_like(alpha), alpha)
        return torch.where(batch["trimap"] == 0, torch.zeros_like(alpha), alpha)


FAMILY = TinyFamily()
register_training_family(FAMILY)


def _main(argv: list[str]) -> None:
    """torchrun entry: train the tiny family into RUN and save this rank's final weights."""
    import os

    from mattecli.train.checkpoints import unwrap
    from mattecli.train.engine import train
    from mattecli.families.registry import get_family  # noqa: E402
    from mattecli.train.recipe import apply_overrides

    run_dir = argv[0]
    recipe = apply_overrides({"lr": 0.01, "iters": 6, "batch_size": 2, "log_every": 1, "checkpoint_every": 3,
                              "train_samples": 12}, argv[1:])
    train(get_family("tiny"), recipe, run_dir, run_dir, stage="base", device="cpu", show_progress=False)
    rank = int(os.environ.get("RANK", "0"))
    torch.save(unwrap(FAMILY.last_model).state_dict(), f"{run_dir}/rank{rank}.pt")


if __name__ == "__main__":
    _main(sys.argv[1:])
