"""Lower layers never import higher ones (docs/families.md): parsed with ast, imports inside
functions included, relative imports resolved."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mattecli"
LOWER = ("io", "data", "backbones", "losses", "metrics", "tensors")
HIGHER = ("families", "train", "inference", "cli", "weights", "export")


def imported_modules(path: Path, package: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import statement in the file, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # `from mattecli import train` names a sub-module too
            found.extend((node.lineno, f"{module}.{alias.name}") for alias in node.names)
    return found


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "mattecli" else None


def violations(root: Path = PACKAGE) -> list[str]:
    bad = []
    for layer in LOWER:
        files = [root / f"{layer}.py"] if (root / f"{layer}.py").is_file() else sorted((root / layer).rglob("*.py"))
        for path in files:
            rel = path.relative_to(root.parent).with_suffix("")
            package = ".".join(rel.parts[:-1])  # a module's package; an __init__'s own package
            for line, module in imported_modules(path, package):
                if layer_of(module) in HIGHER:
                    bad.append(f"{path.relative_to(root.parent)}:{line} imports {module}")
    return bad


def test_lower_layers_do_not_import_higher_ones():
    assert violations() == []


@pytest.mark.parametrize("source", [
    "from mattecli.families.registry import build_model\n",
    "def f():\n    import mattecli.train.engine\n",
    "def f():\n    from mattecli import inference\n",
    "from ..cli import app\n",
    "class A:\n    def m(self):\n        from mattecli.export.run import export_checkpoint\n",
])
def test_the_check_catches_each_form_of_import(tmp_path, source):
    root = tmp_path / "mattecli"
    (root / "io").mkdir(parents=True)
    (root / "io" / "bad.py").write_text(source)
    found = violations(root)
    assert len(found) >= 1 and found[0].startswith("mattecli/io/bad.py:")


def test_allowed_imports_pass(tmp_path):
    root = tmp_path / "mattecli"
    (root / "io").mkdir(parents=True)
    (root / "io" / "ok.py").write_text("from mattecli.errors import BadInput\nfrom . import atomic\n"
                                       "def f():\n    from mattecli.data.trimap import UNKNOWN\n")
    (root / "tensors.py").write_text("import torch\n")
    assert violations(root) == []


def test_the_training_engine_is_handed_a_family():
    """mattecli.train looks nothing up in the family registry above it: the caller hands it one."""
    bad = []
    for path in sorted((PACKAGE / "train").rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        for line, module in imported_modules(path, ".".join(rel.parts[:-1])):
            if layer_of(module) == "families":
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}")
    assert bad == []
