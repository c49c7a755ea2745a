"""Exporting a checkpoint's network to ONNX or TorchScript (``mattecli export``); see docs/families.md."""
from mattecli.export.graph import ExportGraph, export_contract  # noqa: F401
