"""The exported graph of any family and the input/output contract written beside it.

:class:`ExportGraph` wraps a network so its forward takes plain tensors in a fixed order
and returns plain tensors: ``model.export_forward(image, guidance)`` when the family
defines that hook, else ``model.predict(image, guidance)``; trimap families then clamp
known regions, as ``matte --weights`` does. See docs/families.md, section 6.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

#: graph input name and description of each guidance kind (None: no second input)
GUIDANCE_INPUTS: dict[str, tuple[str, str, str] | None] = {
    "trimap": ("trimap", "Bx1xHxW", "0 background, 0.5 unknown, 1 foreground"),
    "background": ("background", "Bx3xHxW", "the background plate, RGB in [0, 1]"),
    "clicks": ("clicks", "Bx2xHxW", "positive and negative click maps (mattecli.inference.clicks.click_maps)"),
    "none": None,
}
IMAGE_INPUT = ("image", "Bx3xHxW", "RGB in [0, 1], not normalised (normalisation is inside the graph)")
OUTPUTS = {
    "alpha": ("Bx1xHxW", "[0, 1]"),
    "fg": ("Bx3xHxW", "foreground colour, RGB in [0, 1]"),
    "trimap": ("Bx1xHxW", "the predicted trimap: 0 background, 0.5 unknown, 1 foreground"),
    "uncertainty": ("Bx1xHxW", "per-pixel Laplace scale sigma > 0 in alpha units (click family)"),
}
PADDING = "reflect bottom/right to a multiple of size_multiple, crop outputs back"


def size_multiple(model: nn.Module) -> int:
    return int(getattr(model, "size_multiple", 1) or 1)


def input_specs(model: nn.Module) -> list[dict[str, str]]:
    """(name, shape, values) of each graph input, in order."""
    custom = getattr(model, "export_inputs", None)
    if custom:
        specs = []
        for name, text in custom:  # "Bx3xHxW plate in [0, 1]": the shape, then what the values are
            shape, _, values = text.partition(" ")
            channels = dict.get(getattr(model, "export_input_shapes", {}), name)
            if channels is not None:  # the network's own channel count (bgm's motion frames)
                shape = f"Bx{channels}xHxW"
            specs.append({"name": name, "shape": shape, "dtype": "float32", "values": values})
        return specs
    specs = [IMAGE_INPUT]
    guidance = GUIDANCE_INPUTS[model.guidance]
    if guidance is not None:
        specs.append(guidance)
    return [{"name": n, "shape": s, "dtype": "float32", "values": v} for n, s, v in specs]


class ExportGraph(nn.Module):
    """``forward(*inputs) -> alpha`` (or ``(alpha, fg)``) for tracing and export."""

    def __init__(self, model: nn.Module, outputs: tuple[str, ...] = ("alpha",)) -> None:
        super().__init__()
        self.model = model.eval()
        self.outputs = outputs
        self.clamp_trimap = model.guidance == "trimap" and not getattr(model, "export_inputs", None)

    def raw_outputs(self, *inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """The family's own dict: ``export_forward`` if it has the hook, else ``predict``."""
        hook = getattr(self.model, "export_forward", None)
        if hook is not None:
            return hook(*inputs)
        return self.model.predict(inputs[0], inputs[1] if len(inputs) > 1 else None)

    def forward(self, *inputs: torch.Tensor):
        out = self.raw_outputs(*inputs)
        alpha = out["alpha"]
        if self.clamp_trimap:
            trimap = inputs[1]
            alpha = torch.where(trimap >= 1.0, torch.ones_like(alpha),
                                torch.where(trimap <= 0.0, torch.zeros_like(alpha), alpha))
        results = [alpha] + [out[name] for name in self.outputs[1:]]
        return results[0] if len(results) == 1 else tuple(results)


def output_names(model: nn.Module, sample_out: dict[str, torch.Tensor]) -> tuple[str, ...]:
    return tuple(name for name in OUTPUTS if name in sample_out)


def export_contract(model: nn.Module, ckpt: dict[str, Any], outputs: tuple[str, ...],
                    checkpoint_sha256: str) -> dict[str, Any]:
    """The JSON written into the exported file's metadata (docs/families.md, section 6)."""
    out_specs = []
    for name in outputs:
        shape, values = OUTPUTS[name]
        if name == "alpha" and model.guidance == "trimap":
            values += "; known trimap regions clamped"
        out_specs.append({"name": name, "shape": shape, "dtype": "float32", "values": values})
    return {
        "format_version": 1,
        "family": ckpt["family"],
        "guidance": model.guidance,
        "size_multiple": size_multiple(model),
        "padding": PADDING,
        "inputs": input_specs(model),
        "outputs": out_specs,
        "model_config": ckpt.get("model_config", {}),
        "stage": ckpt.get("stage"),
        "checkpoint_sha256": checkpoint_sha256,
        "source": ckpt.get("source"),
        "notes": getattr(model, "export_notes", ""),
    }
