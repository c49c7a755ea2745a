"""The command line teaches itself: every ``--help`` ends with examples, and the README's tour runs.

Both are parsed out of the text a user reads (the rendered ``--help``; the README's tour block) and
run here, in a folder holding what they say they run after: ``mattecli demo --out demo-out``.

What the test changes, and why (nothing else is changed):

- ``train`` commands get ``--iters 1 --no-progress`` and ``--set`` keys that shrink the networks and
  crops (the quick recipes take minutes per family on a CPU; a step at the recipe's sizes is what
  tests/test_train_*.py check). Their checkpoints are what the later examples use
  (``runs/<family>/best.pt``), exactly as a user who ran the train example would have them.
- ``studio`` serves until stopped: it is started as a process with ``--port 0`` (a busy 8765 must not
  fail the test), its printed page is fetched, and it is stopped.
- The README's tour is run in a fresh folder beside the same demo output, so its train commands do not
  meet the help examples' runs.
- ``weights import mmagic-dim FILE`` names the published file, which needs a download: the test writes
  a state dict in mmagic's naming under that name (tests/test_weights_import.py checks the import
  against mmagic's own forward pass).

Lines that start with ``#`` are comments (full-scale variants on the user's own data or a GPU) and are
not run; every other line that starts with ``mattecli`` is.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
import typer
from typer.testing import CliRunner

from mattecli.cli.app import app

REPO = Path(__file__).resolve().parents[1]

#: documented flags that make one training step small (see the module docstring)
SHRINK = {
    "dim": {"input_size": 32, "crop_sizes": "[48, 64]", "trimap_iterations": "[1, 3]", "workers": 0},
    "shm": {"infer_size": 16, "full_size": 64, "tnet_crop": 16, "mnet_crop": 32, "e2e_crop": 64, "tnet_width": 4,
            "mnet_width": 4, "workers": 0, "tnet_trimap_kernel": 2},
    "bgm": {"ngf": 4, "nf_part": 4, "n_blocks1": 1, "n_blocks2": 1, "input_size": 32, "crop_sizes": "[32, 40]",
            "base_size": 0, "workers": 0, "trimap_iterations": "[1, 3]", "cue_scale": 0.0625},
    "click": {"input_size": 32, "crop_sizes": "[32, 40]", "workers": 0, "decoder_widths": "[16, 16, 8, 8, 8]",
              "refiner_channels": 8, "patch_size": 16, "click_radius": 3.0},
}
MMAGIC_FILE = "dim_stage3_v16_pln_1x1_1000k_comp1k_SAD-50.6_20200609_111851-647f24b6.pth"


# ----------------------------------------------------------------------------- reading the examples

def command_paths() -> list[tuple[str, ...]]:
    """Every command and group of the application, as the words after ``mattecli``."""
    paths: list[tuple[str, ...]] = []

    def walk(command: typer.core.TyperGroup, path: tuple[str, ...]) -> None:
        paths.append(path)
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return paths


def rendered_help(path: tuple[str, ...]) -> str:
    """``mattecli PATH --help`` as a user sees it (wide, so no example is wrapped)."""
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "400", "TERMINAL_WIDTH": "400"})
    assert result.exit_code == 0, result.output
    return result.output


def example_lines(text: str) -> list[str]:
    """Lines that start with ``mattecli`` (a trailing ``# comment`` is not part of the command)."""
    return [" ".join(shlex.split(line.strip(), comments=True)) for line in text.splitlines()
            if line.strip().startswith("mattecli ")]


def tour_lines() -> list[str]:
    """The README tour's commands: its bash block, continuation lines joined, comments dropped."""
    readme = (REPO / "README.md").read_text()
    block = re.search(r"## A tour\n.*?```bash\n(.*?)```", readme, re.S)
    assert block, "README.md has no '## A tour' section with a bash block"
    joined = block.group(1).replace("\\\n", " ")
    return [" ".join(shlex.split(line, comments=True)) for line in joined.splitlines()
            if line.strip() and not line.strip().startswith("#")]


# ----------------------------------------------------------------------------- running them

@contextmanager
def inside(folder: Path):
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def shrunk(words: list[str]) -> list[str]:
    """A ``train FAMILY`` command with one small step (module docstring); others unchanged."""
    if len(words) < 3 or words[1] != "train" or words[2] not in SHRINK:
        return words
    sets = [a for key, value in SHRINK[words[2]].items() for a in ("--set", f"{key}={value}")]
    return [*words, "--iters", "1", "--no-progress", *sets]


class Workspace:
    """A folder after ``mattecli demo --out demo-out``; runs each distinct command line once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.results: dict[str, tuple[int, str]] = {}

    def run(self, line: str) -> tuple[int, str]:
        if line in self.results:
            return self.results[line]
        words = shlex.split(line)
        assert words[0] == "mattecli", line
        with inside(self.root):
            if words[1] == "studio":
                result = run_studio(words)
            else:
                if words[1:3] == ["weights", "import"] and words[3] == "mmagic-dim" and not Path(words[4]).exists():
                    from test_weights_import import mmagic_state_dict

                    torch.save({"state_dict": mmagic_state_dict(refiner=True)}, words[4])
                r = CliRunner().invoke(app, shrunk(words)[1:])
                output = r.output + (f"\n{type(r.exception).__name__}: {r.exception}"
                                     if r.exception and not isinstance(r.exception, SystemExit) else "")
                result = (r.exit_code, output)
        self.results[line] = result
        return result

    def check(self, line: str) -> None:
        code, output = self.run(line)
        assert code == 0, f"`{line}` exited with {code}:\n{output[-3000:]}"
        assert "Traceback" not in output, output


def run_studio(words: list[str]) -> tuple[int, str]:
    """Start the studio (``--port 0``), fetch the page it prints, stop it."""
    args = words[1:] + ([] if "--port" in words else ["--port", "0"])
    proc = subprocess.Popen([sys.executable, "-m", "mattecli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        for line in proc.stdout:  # the URL comes on a line of its own
            lines.append(line)
            if line.startswith("http://"):
                with urllib.request.urlopen(line.strip(), timeout=60) as page:
                    html = page.read().decode()
                return (0 if page.status == 200 and "<canvas" in html else 1), "".join(lines)
        return proc.wait(), "".join(lines)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="session")
def workspace(tmp_path_factory) -> Workspace:
    """The demo (the examples say they run after it), then each family's first train example, whose
    checkpoint the other examples use."""
    ws = Workspace(tmp_path_factory.mktemp("examples"))
    ws.check("mattecli demo --out demo-out")
    for family in SHRINK:
        ws.check(example_lines(rendered_help(("train", family)))[0])
    return ws


# ----------------------------------------------------------------------------- the tests

ALL_COMMANDS = command_paths()


def test_every_command_and_group_has_examples_in_its_help():
    lacking = [" ".join(("mattecli", *p)) for p in ALL_COMMANDS if not example_lines(rendered_help(p))]
    assert not lacking, f"no example in --help of: {', '.join(lacking)}"
    assert len(ALL_COMMANDS) >= 17  # root, 10 commands, train + 4 families, weights + 3


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(p) or "mattecli")
def test_help_examples_run_as_written(workspace, path):
    for line in example_lines(rendered_help(path)):
        workspace.check(line)


def test_status_line_of_a_guidance_free_network_says_no_guidance(workspace):
    code, output = workspace.run(example_lines(rendered_help(("trimap",)))[0])
    assert code == 0 and "'shm' network, no guidance," in " ".join(output.split()), output


def test_fixed_value_options_list_their_choices_and_name_them_when_wrong():
    # the choices the CLI offers are the ones the core accepts
    from mattecli.families.registry import get_family
    from mattecli.inference.video import ALPHA_FORMATS, RGBA_FORMATS
    from mattecli.metrics import CONVENTIONS, REGIONS

    command = typer.main.get_command(app)

    def choices(path: tuple[str, ...], flag: str) -> tuple[str, ...]:
        cmd = command
        for word in path:
            cmd = cmd.commands[word]
        ctx = cmd.context_class(cmd)
        option = next(p for p in cmd.get_params(ctx) if flag in p.opts or flag == p.name)
        return tuple(c.value for c in option.shell_complete(ctx, ""))

    assert set(choices(("eval",), "--region")) == set(REGIONS)
    assert set(choices(("eval",), "--convention")) == set(CONVENTIONS)
    assert set(choices(("video",), "--rgba-format")) == set(RGBA_FORMATS)
    assert set(choices(("video",), "--alpha-format")) == set(ALPHA_FORMATS)
    assert set(choices(("compose",), "--crop")) == {"topleft", "random"}
    assert set(choices(("compose",), "--convention")) == {"published", "opencv-float32"}
    assert set(choices(("export",), "--format")) == {"onnx", "torchscript"}
    for family in SHRINK:
        assert set(choices(("train", family), "--stage")) == {*get_family(family).stages, "all"}
    # weights import FORMAT: not a fixed set (families provide formats), but completion lists them
    from mattecli.weights.importer import import_formats

    assert set(choices(("weights", "import"), "fmt")) == set(import_formats()) >= {"mmagic-dim", "bgm-v1"}
    # the help lists them, and a wrong value is refused naming the valid ones
    assert "<unknown|all>" in rendered_help(("eval",))
    r = CliRunner().invoke(app, ["compose", "--out", "x", "--samples", "--crop", "centre"])
    flat = " ".join(r.output.replace("│", " ").split())
    assert r.exit_code == 2 and "'centre' is not one of 'topleft', 'random'" in flat


def test_help_has_no_stray_space_where_a_default_was_swallowed():
    for path in ALL_COMMANDS:
        text = " ".join(rendered_help(path).replace("│", " ").split())
        assert not re.search(r"\w \.(\s|$)", text), (path, re.search(r".{40}\w \.(\s|$)", text))


def test_short_out_flag_on_every_command_that_has_out():
    command = typer.main.get_command(app)
    missing = []
    for path in ALL_COMMANDS:
        cmd = command
        for word in path:
            cmd = cmd.commands[word]
        for param in cmd.get_params(cmd.context_class(cmd)):
            if "--out" in param.opts and "-o" not in param.opts:
                missing.append(" ".join(path))
    assert not missing, missing


def test_readme_tour_runs_as_written_after_the_demo(workspace, tmp_path):
    """Every command of the README's tour, in order, in a fresh folder beside the demo's output."""
    import shutil

    lines = tour_lines()
    assert lines[0] == "mattecli demo --out demo-out" and len(lines) > 15
    tour = Workspace(tmp_path)  # the demo's output, as the session's run of that same first line wrote it
    shutil.copytree(workspace.root / "demo-out", tmp_path / "demo-out", ignore=shutil.ignore_patterns("test"))
    for line in lines[1:]:
        tour.check(line)
