"""What a model family gives the training engine; the engine does everything else.

The engine (``mattecli.train.engine``) owns the loop, optimiser, schedule, devices,
distributed training, mixed precision, checkpoints, resume, validation, logging and
plots. A family owns its networks, losses, stages and data. One object per family
implements this protocol and is handed to the engine; ``mattecli.families.registry`` maps
names to them for the command line.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Protocol

import torch
from torch import nn
from torch.utils.data import Dataset


class TrainingFamily(Protocol):
    name: str
    #: stage names in the order ``--stage all`` runs them, e.g. ("encoder", "refine", "joint")
    stages: tuple[str, ...]
    #: optional: recipe keys the family reads beyond those its bundled recipes hold; `train`
    #: refuses any other key with the nearest valid one (mattecli.train.recipe.check_keys)
    recipe_keys: tuple[str, ...]
    #: optional: the ImageNet starts the network takes (``mattecli.backbones.imagenet.BackboneSlot``); the
    #: engine resolves them (hub cache, download, or one line) before training and hands the files'
    #: paths to ``prepare_model`` under each slot's ``weights_key``
    imagenet_slots: tuple[Any, ...]

    def model_config(self, recipe: Mapping[str, Any]) -> dict[str, Any]:
        """Plain-value keyword arguments of the family's network (what a checkpoint records)."""

    def build_model(self, config: dict[str, Any]) -> nn.Module:
        """The network for ``model_config``'s output (bundled families: the registered builder,
        through ``mattecli.families.registry.RegisteredNetwork``)."""

    def prepare_model(self, model: nn.Module, recipe: Mapping[str, Any], stage: str) -> None:
        """Called once on a freshly built model before training starts (not on resume):
        e.g. load ImageNet backbone weights named by the recipe."""

    def trainable_parameters(self, model: nn.Module, stage: str) -> Iterable[nn.Parameter]:
        """Parameters the optimiser updates in ``stage`` (freezes the rest, e.g. DIM ``refine``)."""

    def train_dataset(self, recipe: Mapping[str, Any], data_dir: str, seed: int) -> Dataset:
        """Samples for training. Each item is a dict of tensors. The dataset must be
        deterministic given (seed, epoch, index): the engine calls ``set_epoch(epoch)``
        on it if it has that method, before each epoch."""

    def val_dataset(self, recipe: Mapping[str, Any], data_dir: str, seed: int) -> Dataset:
        """Fixed validation samples (fixed trimaps/crops); items are dicts with at least
        ``image`` (3xHxW in [0,1]), ``alpha`` (1xHxW in [0,1]), ``trimap`` (1xHxW uint8
        {0,128,255}) and the family's guidance."""

    def losses(self, model: nn.Module, batch: Mapping[str, torch.Tensor], stage: str) -> dict[str, torch.Tensor]:
        """Forward pass and losses in training mode; must contain ``"loss"`` (the total to
        backpropagate) and may contain named parts for the log."""

    def predict(self, model: nn.Module, batch: Mapping[str, torch.Tensor], stage: str) -> torch.Tensor:
        """Alpha Bx1xHxW in [0,1] for validation (eval mode, no grad), known regions clamped."""
