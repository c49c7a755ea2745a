"""`mattecli export`: ONNX (onnxruntime, CPU) and TorchScript give `matte --weights`'s alpha.

The reference is the real `matte --weights` command writing 16-bit alpha (quantisation step
1/65535, far below the 1e-4 tolerance), on a DIM checkpoint with random weights.
"""
from __future__ import annotations

import sys
import numpy as np
import pytest
import torch
from torch import nn

from mattecli.errors import MatteError
from mattecli.families.registry import build_model, family_folders, register_family
from mattecli.io.checkpoint import save_checkpoint
from mattecli.io.images import read_alpha_float, write_image

TOL = 1e-4 + 0.5 / 65535  # the bound plus half a 16-bit step


def _cli(*args: object):
    """The CLI in this process (no interpreter start-up per call): (exit code, stderr + stdout)."""
    from typer.testing import CliRunner

    from mattecli.cli.app import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def _cli_error(monkeypatch, capsys, *args: object) -> tuple[int, str]:
    """The real entry point with its error boundary: (exit code, stderr)."""
    from mattecli.cli.app import main

    monkeypatch.setattr(sys, "argv", ["mattecli", *map(str, args)])
    monkeypatch.setenv("COLUMNS", "250")
    with pytest.raises(SystemExit) as exc:
        main()
    return exc.value.code, capsys.readouterr().err


@pytest.fixture(scope="module")
def dim_case(tmp_path_factory):
    """A DIM checkpoint (refiner on), a 64x96 image and trimap, and `matte --weights`'s alpha."""
    root = tmp_path_factory.mktemp("export")
    torch.manual_seed(7)
    model = build_model("dim", {"refine": True})
    save_checkpoint(root / "dim.pt", {"family": "dim", "model_config": model.config, "model": model.state_dict(),
                                      "stage": "joint"})
    rng = np.random.default_rng(3)
    h, w = 64, 96
    image = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    trimap = np.full((h, w), 128, np.uint8)
    trimap[:12], trimap[-12:], trimap[:, :10] = 0, 255, 0
    write_image(root / "in" / "x.png", image)
    write_image(root / "tri" / "x.png", trimap)
    code, output = _cli("matte", root / "in", "--out", root / "out", "--weights", root / "dim.pt", "--trimap",
                        root / "tri", "--device", "cpu", "--output", "alpha", "--alpha-16bit")
    assert code == 0, output
    alpha = read_alpha_float(root / "out" / "alpha" / "x.png")
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
    t = torch.from_numpy(np.where(trimap == 255, 1.0, np.where(trimap == 0, 0.0, 0.5)).astype(np.float32))[None, None]
    assert 0.01 < float(alpha[trimap == 128].std())  # a real alpha, not a constant
    return {"root": root, "alpha": alpha, "image": x, "trimap": t, "trimap_u8": trimap}


def test_onnx_export_equals_matte_weights(dim_case):
    from mattecli.export.run import read_contract, run_onnx

    root = dim_case["root"]
    code, output = _cli("export", root / "dim.pt", "--format", "onnx", "--out", root / "dim.onnx")
    assert code == 0, output
    assert "via dynamo" in " ".join(output.split())
    got = run_onnx(root / "dim.onnx", (dim_case["image"].numpy(), dim_case["trimap"].numpy()))[0][0, 0]
    assert np.abs(got - dim_case["alpha"]).max() <= TOL
    # dynamic batch and size (multiples of 32): a batch of two 32x64 crops equals predict
    from mattecli.families.registry import load_model
    model, _ = load_model(root / "dim.pt")
    crops = torch.cat((dim_case["image"][..., :32, :64], dim_case["image"][..., 32:, 32:]))
    tri = torch.cat((dim_case["trimap"][..., :32, :64], dim_case["trimap"][..., 32:, 32:]))
    batch = run_onnx(root / "dim.onnx", (crops.numpy(), tri.numpy()))[0]
    want = model.predict(crops, tri)["alpha"]
    want = torch.where(tri == 1, 1.0, torch.where(tri == 0, 0.0, want))
    assert batch.shape == (2, 1, 32, 64) and np.abs(batch - want.numpy()).max() <= 1e-4
    contract = read_contract(root / "dim.onnx")
    assert contract["family"] == "dim" and contract["size_multiple"] == 32 and contract["exporter"] == "dynamo"
    assert [i["name"] for i in contract["inputs"]] == ["image", "trimap"]
    assert [o["name"] for o in contract["outputs"]] == ["alpha"]
    assert contract["model_config"]["refine"] is True


def test_legacy_onnx_exporter_and_any_size_through_run_exported(dim_case, tmp_path):
    from mattecli.export.run import export_checkpoint, run_exported

    root = dim_case["root"]
    result = export_checkpoint(root / "dim.pt", "onnx", tmp_path / "legacy.onnx", exporter="legacy")
    assert result.exporter == "legacy" and result.max_abs_diff <= 1e-4
    # a size that is no multiple of 32: run_exported pads as the contract says, as predict does
    from mattecli.families.registry import load_model
    model, _ = load_model(root / "dim.pt")
    image, trimap = dim_case["image"][..., :50, :70], dim_case["trimap"][..., :50, :70]
    got = run_exported(tmp_path / "legacy.onnx", image, trimap)
    want = model.predict(image, trimap)["alpha"]
    want = torch.where(trimap == 1, 1.0, torch.where(trimap == 0, 0.0, want))
    assert got.shape == (1, 1, 50, 70) and (got - want).abs().max() <= 1e-4


def test_torchscript_export_equals_matte_weights(dim_case):
    from mattecli.export.run import read_contract

    root = dim_case["root"]
    code, output = _cli("export", root / "dim.pt", "--format", "torchscript", "--out", root / "dim.ts")
    assert code == 0, output
    module = torch.jit.load(str(root / "dim.ts"))
    with torch.no_grad():
        got = module(dim_case["image"], dim_case["trimap"])[0, 0].numpy()
    assert np.abs(got - dim_case["alpha"]).max() <= TOL
    assert read_contract(root / "dim.ts")["inputs"][1]["name"] == "trimap"


#: families whose full-size network takes minutes to trace on a CPU (shm: ResNet-50 at 400 px + VGG16; bgm)
SMALL_CONFIGS = {"shm": {"infer_size": 16, "tnet_width": 4, "mnet_width": 4},
                 "bgm": {"ngf": 8, "nf_part": 8, "n_blocks1": 2, "n_blocks2": 1, "resolution": 64}}


@pytest.mark.parametrize("family", [f for f in family_folders() if f != "dim"])
def test_every_other_family_exports_to_torchscript(family, tmp_path):
    """DIM is checked against matte above; every other family folder at least traces and
    matches its own eager network (export_checkpoint verifies to 1e-4 before writing)."""
    from mattecli.export.run import export_checkpoint

    torch.manual_seed(0)
    model = build_model(family, SMALL_CONFIGS.get(family, {}))
    save_checkpoint(tmp_path / "m.pt", {"family": family, "model_config": getattr(model, "config", {}),
                                        "model": model.state_dict()})
    result = export_checkpoint(tmp_path / "m.pt", "torchscript", tmp_path / "m.ts")
    assert result.max_abs_diff <= 1e-4


class NoOnnx(nn.Module):
    family = "test_noonnx"
    guidance = "none"

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(0.5))

    def predict(self, image, guidance):
        return {"alpha": torch.special.bessel_j0(image.mean(1, keepdim=True) * self.scale)}


@register_family("test_noonnx")
def _build_noonnx() -> NoOnnx:
    return NoOnnx()


def test_operator_without_onnx_form_is_one_line_and_torchscript_still_works(tmp_path):
    from mattecli.export.run import export_checkpoint

    save_checkpoint(tmp_path / "n.pt", {"family": "test_noonnx", "model_config": {}, "model": NoOnnx().state_dict()})
    with pytest.raises(MatteError) as info:
        export_checkpoint(tmp_path / "n.pt", "onnx", tmp_path / "n.onnx", exporter="legacy")
    message = str(info.value)
    assert "aten::special_bessel_j0 has no ONNX form" in message and "torchscript" in message
    assert "\n" not in message and not (tmp_path / "n.onnx").exists()
    assert not list(tmp_path.glob(".mattecli-tmp-*"))
    assert export_checkpoint(tmp_path / "n.pt", "torchscript", tmp_path / "n.ts").max_abs_diff <= 1e-6


def test_export_cli_errors_are_one_line(tmp_path, monkeypatch, capsys):
    code, err = _cli_error(monkeypatch, capsys, "export", tmp_path / "none.pt", "--format", "onnx",
                           "--out", tmp_path / "x.onnx")
    assert code == 2 and "none.pt: checkpoint not found" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    # a value outside a fixed set is a usage error that names the valid ones (and --help lists them)
    code, err = _cli_error(monkeypatch, capsys, "export", tmp_path / "none.pt", "--format", "tflite",
                           "--out", tmp_path / "x")
    flat = " ".join(err.replace("│", " ").split())
    assert code == 2 and "'--format'" in flat and "'tflite' is not one of 'onnx', 'torchscript'" in flat
    assert "Traceback" not in err
