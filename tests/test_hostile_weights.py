"""Issue 18: checkpoints made to hang, bloat, poison or fool `weights import|info`, `export`, `matte`.

Each test reproduces a probe that failed (a hang, gigabytes from kilobytes, NaN weights
accepted, a damaged file loaded, a silent overwrite) and checks the one-line refusal."""
from __future__ import annotations

import sys
import time
import zipfile

import numpy as np
import pytest
import torch

from mattecli.cli.app import main
from mattecli.io.checkpoint import save_checkpoint
from test_bgm_weights import official_state

CONFIG = {"ngf": 4, "nf_part": 4, "n_blocks1": 1, "n_blocks2": 1, "resolution": 32, "crop": "full",
          "largest_component": False}


def run(capsys, monkeypatch, *args) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["mattecli", *map(str, args)])
    with pytest.raises(SystemExit) as exc:
        main()
    captured = capsys.readouterr()
    text = captured.err + captured.out
    assert "Traceback" not in text, text
    return exc.value.code, text


def error_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, text
    return lines[0]


def shared_references(kind: str, levels: int = 40):
    """x = [x, x] (or {"a": x, "b": x}) ``levels`` times: 2**levels paths through ``levels`` objects."""
    x: object = [] if kind == "list" else {}
    for _ in range(levels):
        x = [x, x] if kind == "list" else {"a": x, "b": x}
    return x


def bgm_checkpoint(path, state=None, config=CONFIG) -> None:
    torch.manual_seed(0)
    from mattecli.families.registry import build_model

    save_checkpoint(path, {"family": "bgm", "model_config": dict(config),
                           "model": state if state is not None else build_model("bgm", config).state_dict()})


def matte_one(tmp_path, weights, capsys, monkeypatch) -> tuple[int, str]:
    """``matte`` of one 24x24 image against its own plate with a bgm checkpoint."""
    from mattecli.io.images import write_image

    img = (np.random.default_rng(0).random((24, 24, 3)) * 255).astype(np.uint8)
    write_image(tmp_path / "in" / "a.png", img)
    write_image(tmp_path / "plate.png", img)
    return run(capsys, monkeypatch, "matte", tmp_path / "in", "--background", tmp_path / "plate.png",
               "--weights", weights, "--out", tmp_path / "out", "--device", "cpu")


# --- 6. shared references: refused in bounded time, for import and info ---------------------------------------
@pytest.mark.parametrize("kind", ["list", "dict"])
def test_a_pickle_of_shared_references_is_refused_quickly(tmp_path, capsys, monkeypatch, kind):
    torch.save({"state_dict": shared_references(kind)}, tmp_path / "foreign.pt")
    torch.save({"family": "bgm", "model_config": {}, "model": {}, "recipe": shared_references(kind)},
               tmp_path / "ours.pt")
    assert (tmp_path / "foreign.pt").stat().st_size < 4000
    start = time.process_time()  # CPU seconds: a hang shows however busy the machine is
    code, text = run(capsys, monkeypatch, "weights", "import", "bgm-v1", tmp_path / "foreign.pt", "-o", tmp_path / "x.pt")
    assert code == 2 and "foreign.pt" in error_line(text) and "200,000 objects" in text
    code, text = run(capsys, monkeypatch, "weights", "info", tmp_path / "ours.pt")
    assert code == 2 and "ours.pt" in error_line(text) and "shared references" in text
    assert time.process_time() - start < 10
    assert not (tmp_path / "x.pt").exists()


def test_the_restricted_reader_keeps_shared_references_shared(tmp_path):
    from mattecli.io.foreign import read_foreign_checkpoint

    leaf = [torch.ones(2)]
    torch.save({"a": leaf, "b": leaf, "c": shared_references("list", 12)}, tmp_path / "s.pt")
    payload = read_foreign_checkpoint(tmp_path / "s.pt").payload
    assert payload["a"] is payload["b"]  # walked once, copied once
    assert payload["c"][0] is payload["c"][1]


# --- 7. small files that expand ---------------------------------------------------------------------------------
def test_a_deflated_zip_bomb_is_refused_before_reading(tmp_path, capsys, monkeypatch):
    """A torch zip whose one tensor entry is 80 MB of zeros, deflated to about 80 KB."""
    torch.save({"state_dict": {"w": torch.zeros(4)}}, tmp_path / "plain.pt")
    bomb = tmp_path / "bomb.pt"
    zeros = bytes(80 << 20)
    with zipfile.ZipFile(tmp_path / "plain.pt") as src, zipfile.ZipFile(bomb, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("/data/0"):
                data = zeros
            dst.writestr(info.filename, data, compress_type=zipfile.ZIP_DEFLATED)
    assert bomb.stat().st_size < 1 << 20
    for args in (["weights", "import", "bgm-v1", bomb, "-o", tmp_path / "x.pt"], ["weights", "info", bomb]):
        code, text = run(capsys, monkeypatch, *args)
        assert code == 2 and "bomb.pt" in error_line(text) and "decompression bomb" in text


def test_zero_stride_tensors_that_expand_are_refused(tmp_path, capsys, monkeypatch):
    """4 bytes on disk standing for 400 MB once made contiguous (as a converter does)."""
    state = {k: v for k, v in official_state().state_dict().items()}
    state["model_enc1.1.weight"] = torch.ones(1).expand(100_000_000)
    torch.save(state, tmp_path / "netG.pth")
    code, text = run(capsys, monkeypatch, "weights", "import", "bgm-v1", tmp_path / "netG.pth", "-o", tmp_path / "x.pt")
    assert code == 2 and "netG.pth" in error_line(text) and "once expanded" in text


def test_a_model_config_too_large_is_refused_before_allocating(tmp_path, capsys, monkeypatch):
    """ngf=1024 would build 4.5 G parameters (18 GB); refused from the meta-device count."""
    save_checkpoint(tmp_path / "huge.pt", {"family": "bgm", "model_config": {"ngf": 1024}, "model": {}})
    for args in (["weights", "info", tmp_path / "huge.pt"], ["export", tmp_path / "huge.pt", "-f", "torchscript",
                                                              "-o", tmp_path / "h.ts"]):
        code, text = run(capsys, monkeypatch, *args)
        assert code == 2 and "huge.pt" in error_line(text) and "parameters, above the limit" in text


# --- 12. weights that are not finite floats ----------------------------------------------------------------------
@pytest.mark.parametrize("poison,words", [
    (lambda t: t.to(torch.int64), "torch.int64"),
    (lambda t: t.bool(), "torch.bool"),
    (lambda t: t.to(torch.complex64), "torch.complex64"),
    (lambda t: torch.where(torch.arange(t.numel()).view(t.shape) == 0, torch.tensor(float("nan")), t), "NaN"),
    (lambda t: t + float("inf"), "infinite"),
])
def test_import_refuses_non_float_and_non_finite_weights(tmp_path, capsys, monkeypatch, poison, words):
    state = dict(official_state().state_dict())
    state["model_al_out.9.weight"] = poison(state["model_al_out.9.weight"])
    torch.save(state, tmp_path / "netG.pth")
    code, text = run(capsys, monkeypatch, "weights", "import", "bgm-v1", tmp_path / "netG.pth", "-o", tmp_path / "x.pt")
    assert code == 2 and "netG.pth" in error_line(text) and words in text and "alpha_head" in text
    assert not (tmp_path / "x.pt").exists()


@pytest.mark.parametrize("dtype,words", [(torch.float8_e4m3fn, "torch.float8_e4m3fn"), (None, "NaN")])
def test_matte_refuses_poisoned_checkpoints_instead_of_writing_black_mattes(tmp_path, capsys, monkeypatch, dtype, words):
    from mattecli.families.registry import build_model

    state = build_model("bgm", CONFIG).state_dict()
    name = "alpha_head.6.weight" if "alpha_head.6.weight" in state else next(k for k in state if k.endswith("weight"))
    state[name] = state[name].to(dtype) if dtype is not None else state[name] * float("nan")
    bgm_checkpoint(tmp_path / "p.pt", state)
    code, text = matte_one(tmp_path, tmp_path / "p.pt", capsys, monkeypatch)
    assert code == 2 and "p.pt" in error_line(text) and words in text
    assert not (tmp_path / "out" / "alpha" / "a.png").exists()
    code, text = run(capsys, monkeypatch, "weights", "info", tmp_path / "p.pt")
    assert code == 2 and words in text


# --- 13. damaged files ---------------------------------------------------------------------------------------------
def test_a_checkpoint_with_zeroed_bytes_is_refused_as_damaged(tmp_path, capsys, monkeypatch):
    bgm_checkpoint(tmp_path / "c.pt")
    data = bytearray((tmp_path / "c.pt").read_bytes())
    middle = len(data) // 2
    data[middle:middle + 100] = bytes(100)
    (tmp_path / "c.pt").write_bytes(bytes(data))
    for args in (["export", tmp_path / "c.pt", "-f", "torchscript", "-o", tmp_path / "c.ts"],
                 ["weights", "info", tmp_path / "c.pt"]):
        code, text = run(capsys, monkeypatch, *args)
        assert code == 2 and "c.pt" in error_line(text) and ("CRC" in text or "damaged" in text)
    assert not (tmp_path / "c.ts").exists()


# --- 15. an existing --out needs --overwrite -------------------------------------------------------------------------
def test_import_and_export_ask_for_overwrite(tmp_path, capsys, monkeypatch):
    torch.save(official_state().state_dict(), tmp_path / "netG.pth")
    (tmp_path / "keep.pt").write_bytes(b"mine")
    code, text = run(capsys, monkeypatch, "weights", "import", "bgm-v1", tmp_path / "netG.pth", "-o", tmp_path / "keep.pt")
    assert code == 2 and "keep.pt" in error_line(text) and "--overwrite" in text
    assert (tmp_path / "keep.pt").read_bytes() == b"mine"
    code, text = run(capsys, monkeypatch, "weights", "import", "bgm-v1", tmp_path / "netG.pth", "-o", tmp_path / "keep.pt",
                     "--overwrite")
    assert code == 0, text
    (tmp_path / "keep.onnx").write_bytes(b"mine")
    code, text = run(capsys, monkeypatch, "export", tmp_path / "keep.pt", "-f", "onnx", "-o", tmp_path / "keep.onnx")
    assert code == 2 and "keep.onnx" in error_line(text) and "--overwrite" in text
    assert (tmp_path / "keep.onnx").read_bytes() == b"mine"


# --- messages ----------------------------------------------------------------------------------------------------------
def test_checkpoint_messages(tmp_path, capsys, monkeypatch):
    from mattecli.errors import first_line

    (tmp_path / "run").mkdir()
    code, text = run(capsys, monkeypatch, "weights", "info", tmp_path / "run")
    assert code == 2 and "is a folder" in error_line(text) and "best.pt" in text
    cut = first_line(ValueError("word " * 100), limit=40)
    assert len(cut) <= 40 and cut.endswith("...") and cut[:-3].rstrip().endswith("word")
    # a checkpoint whose weights do not fit its config: refused, not "parameters 0"
    bgm_checkpoint(tmp_path / "m.pt", {"something": torch.zeros(3)})
    code, text = run(capsys, monkeypatch, "weights", "info", tmp_path / "m.pt")
    assert code == 2 and "do not fit" in error_line(text)


def test_the_bgm_export_contract_names_every_input_shape():
    from mattecli.export.graph import input_specs
    from mattecli.families.registry import build_model

    specs = input_specs(build_model("bgm", CONFIG))
    shapes = {s["name"]: s["shape"] for s in specs}
    assert shapes == {"image": "Bx3xHxW", "background": "Bx3xHxW", "segmentation": "Bx1xHxW", "motion": "Bx4xHxW"}
    assert all(s["values"] and not s["values"].startswith("Bx") for s in specs)


def test_a_network_that_outputs_nan_fails_the_image_instead_of_a_black_matte(tmp_path, capsys, monkeypatch):
    """Finite weights can still make NaN (a negative batch-norm variance): never "1 matted"."""
    from mattecli.families.registry import build_model

    state = build_model("bgm", CONFIG).state_dict()
    for name in state:
        if name.endswith("running_var"):
            state[name] = -torch.ones_like(state[name])
    bgm_checkpoint(tmp_path / "v.pt", state)
    code, text = matte_one(tmp_path, tmp_path / "v.pt", capsys, monkeypatch)
    assert code == 1 and "NaN" in text and "0 matted" in text
    assert not (tmp_path / "out" / "alpha" / "a.png").exists()
