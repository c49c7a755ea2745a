"""Flags that only take effect with --weights are refused without it, in one line, never ignored."""
from __future__ import annotations

import sys

import pytest

from mattecli.cli.app import main


def run_cli(capsys, monkeypatch, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["mattecli", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    captured = capsys.readouterr()
    return exc.value.code, captured.err + captured.out


@pytest.mark.parametrize("args, flags", [
    (("video", "in.mp4", "--background", "plate.png", "--out", "o", "--device", "cpu"), "--device"),
    (("video", "in.mp4", "--background", "plate.png", "--out", "o", "--precision", "bf16", "--batch-size", "2"),
     "--precision, --batch-size"),
    (("eval", "pred", "--data", "ds", "--device", "cpu"), "--device"),
    (("eval", "pred", "--data", "ds", "--batch-size", "8"), "--batch-size"),
    (("matte", "in", "--out", "o", "--batch-size", "8"), "--batch-size"),
])
def test_weights_only_flags_are_refused_without_weights(tmp_path, capsys, monkeypatch, args, flags):
    monkeypatch.chdir(tmp_path)
    code, out = run_cli(capsys, monkeypatch, *args)
    lines = [line for line in out.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, out
    assert f"{flags} appl" in lines[0] and "only with --weights" in lines[0]
    assert not (tmp_path / "o").exists()


def test_matte_method_is_refused_with_weights(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out = run_cli(capsys, monkeypatch, "matte", "in", "--out", "o", "--method", "classical",
                        "--weights", "net.pt")
    assert code == 2 and "--method classical" in out and "--weights" in out and len(out.strip().splitlines()) == 1


def test_matte_method_other_than_classical_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    code, out = run_cli(capsys, monkeypatch, "matte", "in", "--out", "o", "--method", "dim")
    flat = " ".join(out.replace("│", " ").split())
    assert code == 2 and "'--method'" in flat and "'dim' is not one of 'classical'" in flat


def test_matte_help_says_what_method_is_for(capsys, monkeypatch):
    code, out = run_cli(capsys, monkeypatch, "matte", "--help")
    assert code == 0 and "closed-form" in " ".join(out.split())


@pytest.mark.parametrize("command", ["matte", "studio", "eval"])
def test_click_method_help_shows_its_default_and_the_cores_choices(capsys, monkeypatch, command):
    """One --click-method for three commands: its choices are the core's, and the default is printed
    (rich markup once swallowed an unescaped "[default: ...]")."""
    import typing

    from mattecli.cli.options import ClickMethod
    from mattecli.inference.methods import CLICK_METHODS, DEFAULT_CLICK_METHOD

    assert typing.get_args(ClickMethod) == CLICK_METHODS
    code, out = run_cli(capsys, monkeypatch, command, "--help")
    flat = " ".join(out.replace("│", " ").split())
    assert code == 0 and f"[default: {DEFAULT_CLICK_METHOD}]" in flat, flat
