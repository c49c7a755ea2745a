"""``mattecli export``: a checkpoint's network to ONNX or TorchScript, verified before it is written.

Both formats take the graph of :class:`mattecli.export.graph.ExportGraph` (fp32, CPU) with
dynamic batch, height and width (H, W multiples of the family's ``size_multiple``). Before
the file is moved into place it is run (onnxruntime on the CPU, or ``torch.jit.load``) on
an input of another batch size and shape than the one it was traced with, and compared
with the eager network: max abs difference <= :data:`TOLERANCE`.
"""
from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from mattecli.errors import BadInput, MatteError
from mattecli.export.graph import ExportGraph, export_contract, input_specs, output_names, size_multiple
from mattecli.families.registry import load_model
from mattecli.io import atomic
from mattecli.io.foreign import file_sha256

FORMATS = ("onnx", "torchscript")
EXPORTERS = ("auto", "dynamo", "legacy")
TOLERANCE = 1e-4
#: the TorchScript extra file and the ONNX metadata key holding the contract
CONTRACT_KEY = "mattecli.contract"
TORCHSCRIPT_CONTRACT = "mattecli_contract.json"
ONNX_OPSET = 18


@dataclass
class ExportResult:
    out: Path
    fmt: str
    exporter: str
    max_abs_diff: float
    contract: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def example_inputs(model: torch.nn.Module, batch: int, height: int, width: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Inputs of the graph's contract: an image in [0, 1] and the family's guidance."""
    gen = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, height, width, generator=gen)
    names = [spec["name"] for spec in input_specs(model)]
    tensors: list[torch.Tensor] = [image]
    for name in names[1:]:
        if name == "trimap":
            trimap = torch.full((batch, 1, height, width), 0.5)
            trimap[..., : height // 4, :] = 0.0
            trimap[..., -(height // 4):, :] = 1.0
            tensors.append(trimap)
        elif name == "background":
            tensors.append((image + 0.2 * torch.rand(image.shape, generator=gen)).clamp(0, 1))
        elif name == "clicks":
            clicks = torch.zeros(batch, 2, height, width)
            clicks[:, 0, height // 2, width // 2] = 1.0
            clicks[:, 1, 1, 1] = 1.0
            tensors.append(clicks)
        else:  # a family's own extra input: values in [0, 1] of the image's size
            shape = getattr(model, "export_input_shapes", {}).get(name, (batch, 1, height, width))
            tensors.append(torch.rand(shape, generator=gen))
    return tuple(tensors)


def _as_tuple(out: Any) -> tuple[torch.Tensor, ...]:
    return out if isinstance(out, tuple) else (out,)


def _max_diff(a: tuple[Any, ...], b: tuple[Any, ...]) -> float:
    return max(float(np.abs(np.asarray(x, dtype=np.float64) - np.asarray(y, dtype=np.float64)).max())
               for x, y in zip(a, b))


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TELLING = ("No ONNX function found", "not supported", "Unsupported", "aten::")


def _first_line(exc: BaseException) -> str:
    """The line of an exporter's (many-line) error that says what went wrong."""
    lines = [_ANSI.sub("", line).strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if any(mark in line for mark in _TELLING):
            return line[:200]
    return (lines[0] if lines else type(exc).__name__)[:200]


def _unsupported_operator(messages: list[str]) -> str | None:
    for message in messages:
        found = re.search(r"(aten::[A-Za-z0-9_.]+)|op='([A-Za-z0-9_.]+)'", message)
        if found:
            return found.group(1) or found.group(2)
    return None


def _onnx_export(graph: ExportGraph, inputs: tuple[torch.Tensor, ...], path: Path, in_names: list[str],
                 out_names: list[str], multiple: int, exporter: str) -> None:
    if exporter == "dynamo":
        batch = torch.export.Dim("batch", min=1, max=4096)
        h = multiple * torch.export.Dim("height_blocks", min=1, max=16384 // multiple)
        w = multiple * torch.export.Dim("width_blocks", min=1, max=16384 // multiple)
        shapes = tuple({0: batch, 2: h, 3: w} for _ in inputs)
        program = torch.onnx.export(graph, inputs, None, dynamo=True, input_names=in_names, output_names=out_names,
                                    dynamic_shapes=(shapes,), opset_version=ONNX_OPSET, verbose=False)
        program.save(str(path))
    else:
        axes = {name: {0: "batch", 2: "height", 3: "width"} for name in in_names + out_names}
        torch.onnx.export(graph, inputs, str(path), dynamo=False, input_names=in_names, output_names=out_names,
                          dynamic_axes=axes, opset_version=17)


def _write_onnx_metadata(path: Path, contract: dict[str, Any]) -> None:
    import onnx

    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    for key, value in ((CONTRACT_KEY, json.dumps(contract, sort_keys=True)), ("mattecli.family", contract["family"]),
                       ("mattecli.size_multiple", str(contract["size_multiple"]))):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = f"mattecli {contract['family']} network; contract in metadata '{CONTRACT_KEY}'"
    onnx.save(proto, str(path))


def run_onnx(path: str | os.PathLike, inputs: tuple[np.ndarray | torch.Tensor, ...]) -> tuple[np.ndarray, ...]:
    """Run an exported ONNX file with onnxruntime on the CPU (inputs already padded)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feeds = {spec.name: np.asarray(x, dtype=np.float32) for spec, x in zip(session.get_inputs(), inputs)}
    return tuple(session.run(None, feeds))


def _require(module: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise MatteError(f"--format onnx needs the '{module}' package: pip install 'mattecli[export]'")


def export_checkpoint(ckpt_path: str | os.PathLike, fmt: str, out: str | os.PathLike,
                      exporter: str = "auto", log: Callable[[str], None] | None = None,
                      overwrite: bool = False) -> ExportResult:
    """Export, verify against the eager network, write atomically with the contract inside."""
    if fmt not in FORMATS:
        raise MatteError(f"--format {fmt}: choose from {', '.join(FORMATS)}")
    if exporter not in EXPORTERS:
        raise MatteError(f"--exporter {exporter}: choose from {', '.join(EXPORTERS)}")
    if fmt == "torchscript" and exporter != "auto":
        raise MatteError("--exporter chooses the ONNX exporter; it does not apply to --format torchscript")
    if fmt == "onnx":
        _require("onnx")
        _require("onnxruntime")
        if exporter in ("auto", "dynamo"):
            _require("onnxscript")
    ckpt_path, out = Path(ckpt_path), Path(out)
    if out.resolve() == ckpt_path.resolve():
        raise BadInput(out, "--out would replace the checkpoint being exported; choose another path")
    atomic.refuse_existing(out, overwrite)
    model, ckpt = load_model(ckpt_path, "cpu")
    model = model.float().eval()
    multiple = size_multiple(model)
    graph = ExportGraph(model)
    trace_inputs = example_inputs(model, 1, 2 * multiple if multiple > 1 else 64, 2 * multiple if multiple > 1 else 64)
    check_inputs = example_inputs(model, 2, 3 * multiple if multiple > 1 else 96, 2 * multiple if multiple > 1 else 48,
                                  seed=1)
    with torch.no_grad():
        outputs = output_names(model, graph.raw_outputs(*trace_inputs))
        graph = ExportGraph(model, outputs)
        expected = tuple(t.numpy() for t in _as_tuple(graph(*check_inputs)))
    contract = export_contract(model, ckpt, outputs, file_sha256(ckpt_path))
    in_names = [spec["name"] for spec in input_specs(model)]
    notes: list[str] = []
    say = log or (lambda _msg: None)

    with atomic.atomic_path(out) as tmp:
        if fmt == "torchscript":
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    traced = torch.jit.trace(graph, trace_inputs, check_trace=False)  # checked below, loaded
                except Exception as exc:  # noqa: BLE001 - the family's graph does not trace
                    raise MatteError(f"{ckpt_path}: TorchScript tracing failed ({_first_line(exc)})") from None
                torch.jit.save(traced, str(tmp), _extra_files={TORCHSCRIPT_CONTRACT: json.dumps(contract, sort_keys=True)})
                loaded = torch.jit.load(str(tmp))
                got = tuple(t.numpy() for t in _as_tuple(loaded(*check_inputs)))
            used = "torch.jit.trace"
        else:
            order = ["dynamo", "legacy"] if exporter == "auto" else [exporter]
            failures: list[str] = []
            used = ""
            got = ()
            for name in order:
                say(f"ONNX: trying the {name} exporter")
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        _onnx_export(graph, trace_inputs, tmp, in_names, list(outputs), multiple, name)
                    got = run_onnx(tmp, tuple(t.numpy() for t in check_inputs))
                except Exception as exc:  # noqa: BLE001 - each exporter fails in its own way
                    failures.append(f"{name}: {_first_line(exc)}")
                    continue
                used = name
                break
            if not used:
                op = _unsupported_operator(failures)
                what = f"operator {op} has no ONNX form here" if op else "the exporters failed"
                raise MatteError(f"{ckpt_path}: ONNX export failed: {what} ({'; '.join(failures)}); "
                                 "--format torchscript works for every family")
            if failures:
                notes.extend(failures)
            _write_onnx_metadata(tmp, {**contract, "exporter": used})
        diff = _max_diff(got, expected)
        if not all(np.isfinite(e).all() for e in expected):
            raise MatteError(f"{ckpt_path}: the network itself outputs NaN or infinite values on a test input; "
                             "nothing written (check the checkpoint's weights)")
        if not np.isfinite(diff):
            raise MatteError(f"{ckpt_path}: the exported {fmt} graph outputs NaN or infinite values where the "
                             "network does not; nothing written")
        if not diff <= TOLERANCE:
            raise MatteError(f"{ckpt_path}: the exported {fmt} graph differs from the network by {diff:.3g} "
                             f"(> {TOLERANCE}) on a {tuple(check_inputs[0].shape)} input; nothing written")
    return ExportResult(out, fmt, used, diff, contract, notes)


def read_contract(path: str | os.PathLike) -> dict[str, Any]:
    """The contract stored in an exported file (ONNX metadata or TorchScript extra file)."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(path, "exported file not found")
    if path.suffix == ".onnx":
        import onnx

        proto = onnx.load(str(path), load_external_data=False)
        for entry in proto.metadata_props:
            if entry.key == CONTRACT_KEY:
                return json.loads(entry.value)
        raise BadInput(path, f"no '{CONTRACT_KEY}' metadata (not exported by mattecli)")
    extra = {TORCHSCRIPT_CONTRACT: ""}
    torch.jit.load(str(path), _extra_files=extra)
    if not extra[TORCHSCRIPT_CONTRACT]:
        raise BadInput(path, f"no {TORCHSCRIPT_CONTRACT} inside (not exported by mattecli)")
    return json.loads(extra[TORCHSCRIPT_CONTRACT])


def run_exported(path: str | os.PathLike, image: torch.Tensor, guidance: torch.Tensor | None = None) -> torch.Tensor:
    """Alpha from an exported file for any H, W: pads as the contract says, runs, crops back.

    ``image`` Bx3xHxW in [0, 1], ``guidance`` as the family's ``predict`` takes it.
    """
    from mattecli.tensors import crop_to, pad_to_multiple

    contract = read_contract(path)
    multiple = int(contract["size_multiple"])
    tensors = [image] + ([guidance] if guidance is not None else [])
    padded = [pad_to_multiple(t.float(), multiple, mode="reflect")[0] for t in tensors]
    size = tuple(image.shape[-2:])
    if str(path).endswith(".onnx"):
        alpha = torch.from_numpy(run_onnx(path, tuple(t.numpy() for t in padded))[0])
    else:
        with torch.no_grad():
            alpha = _as_tuple(torch.jit.load(str(path))(*padded))[0]
    return crop_to(alpha, size)
