"""ImageNet starts by default (issue 17): the paper recipes name torchvision's files; `train` finds
them in torch's hub cache or downloads them there (sha256 checked), or refuses in one line before
any training; --from-scratch opts out and is recorded. Every download here goes to a server on
127.0.0.1 started by the test; TORCH_HOME points at an empty folder, so nothing reaches the internet."""
from __future__ import annotations

import functools
import hashlib
import http.server
import json
import socket
import threading
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from compose_helpers import composed_training_set
from mattecli.backbones.imagenet import MIRROR_ENV, TORCHVISION, cache_dir, fetch_published
from mattecli.backbones.vgg import CONV_INDICES, VGG16_LAYOUT
from mattecli.cli.app import app
from mattecli.data.samples import write_samples
from mattecli.errors import MatteError
from mattecli.io.checkpoint import load_checkpoint
from mattecli.train.recipe import load_recipe
from test_demo_and_progress import run_cli  # the console entry point: exit code and output

PAPER = {"dim": "vgg16-397923af.pth", "shm": "resnet50-0676ba61.pth", "click": "resnet34-b627a593.pth"}
#: small enough for one step a second: the paper recipes' networks on 32 px crops
TINY = {"dim": ["input_size=32", "crop_sizes=[32]", "trimap_iterations=[1, 3]"],
        "shm": ["infer_size=16", "full_size=64", "tnet_crop=16", "mnet_crop=32", "e2e_crop=64", "tnet_trimap_kernel=2"],
        "click": ["input_size=32", "crop_sizes=[32, 40]", "patch_size=16", "click_radius=3.0"]}
FIRST_STAGE = {"dim": "encoder", "shm": "tnet", "click": "matting"}


@pytest.fixture
def torch_home(tmp_path, monkeypatch) -> Path:
    """An empty torch home: torch.hub.get_dir() reads TORCH_HOME on every call."""
    home = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    assert cache_dir() == home / "hub" / "checkpoints"
    return home


@pytest.fixture
def server(tmp_path):
    """A file server on 127.0.0.1 for the folder it returns with its base URL."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_paper_recipes_name_torchvisions_published_files():
    for family, name in PAPER.items():
        recipe = load_recipe(family)
        assert recipe["imagenet_url"] == f"https://download.pytorch.org/models/{name}"
        # torchvision's file names carry the first 8 hex digits of the file's sha256
        assert recipe["imagenet_sha256"].startswith(name.rsplit("-", 1)[1].split(".")[0])
        assert len(recipe["imagenet_sha256"]) == 64 and recipe["from_scratch"] is False
    assert load_recipe("shm")["mnet_imagenet_url"].endswith("/vgg16-397923af.pth")
    assert {url for url, _ in TORCHVISION.values()} >= {load_recipe(f)["imagenet_url"] for f in PAPER}


def test_download_with_the_right_hash_lands_in_the_hub_cache(torch_home, server):
    root, base = server
    payload = root / "vgg16-397923af.pth"
    payload.write_bytes(b"weights " * 1000)
    path = fetch_published(f"{base}/vgg16-397923af.pth", sha256(payload), "--backbone-weights", progress=False)
    assert path == torch_home / "hub" / "checkpoints" / "vgg16-397923af.pth"
    assert path.read_bytes() == payload.read_bytes()
    payload.unlink()  # found in the cache now: no second download
    assert fetch_published(f"{base}/vgg16-397923af.pth", sha256(path), "--backbone-weights", progress=False) == path


def test_download_with_a_wrong_hash_is_refused_and_leaves_nothing(torch_home, server):
    root, base = server
    (root / "vgg16-397923af.pth").write_bytes(b"not the published weights")
    with pytest.raises(MatteError) as exc:
        fetch_published(f"{base}/vgg16-397923af.pth", "397923af" + "0" * 56, "--backbone-weights", progress=False)
    message = str(exc.value)
    assert "\n" not in message and "vgg16-397923af.pth" in message and "--from-scratch" in message
    assert not any(cache_dir().iterdir())  # neither the file nor torch's .partial


def test_a_cached_file_with_the_wrong_hash_is_refused(torch_home):
    cache_dir().mkdir(parents=True)
    (cache_dir() / "resnet34-b627a593.pth").write_bytes(b"truncated")
    with pytest.raises(MatteError) as exc:
        fetch_published(TORCHVISION["resnet34"][0], TORCHVISION["resnet34"][1], "--backbone-weights", progress=False)
    assert "resnet34-b627a593.pth" in str(exc.value) and "delete it" in str(exc.value)


def test_server_down_names_the_file_the_place_and_from_scratch(torch_home, monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, f"http://127.0.0.1:{closed_port()}/models")
    url, digest = TORCHVISION["vgg16"]
    with pytest.raises(MatteError) as exc:
        fetch_published(url, digest, "--backbone-weights", progress=False)
    message = str(exc.value)
    assert "\n" not in message
    for part in ("vgg16-397923af.pth", str(cache_dir()), url, "--backbone-weights FILE", "--from-scratch"):
        assert part in message, (part, message)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("imagenet-data")
    write_samples(root / "src", seed=5, foregrounds=2, backgrounds=2, size=(64, 64))
    return composed_training_set(root / "src", root / "ds")


def train_args(family: str, dataset: Path, out: Path, *extra: str) -> list[str]:
    sets = [a for kv in TINY[family] for a in ("--set", kv)]
    return ["train", family, "--data", str(dataset), "--out", str(out), "--device", "cpu", "--iters", "1",
            "--batch-size", "2", "--workers", "0", "--no-progress", "--stage", FIRST_STAGE[family], *sets, *extra]


@pytest.mark.parametrize("family", sorted(PAPER))
def test_offline_with_an_empty_cache_refuses_in_one_line_before_training(family, dataset, torch_home, tmp_path,
                                                                          monkeypatch, capsys):
    monkeypatch.setenv(MIRROR_ENV, f"http://127.0.0.1:{closed_port()}")
    out = tmp_path / "run"
    code, output = run_cli(capsys, monkeypatch, "train", family, "--data", str(dataset), "--out", str(out),
                           "--device", "cpu")
    lines = [line for line in output.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: needs the ImageNet weights"), output
    for part in (PAPER[family], str(cache_dir()), "--from-scratch"):
        assert part in lines[0], (part, output)
    assert not list(out.rglob("*.pt"))  # nothing trained


@pytest.mark.parametrize("family", sorted(PAPER))
def test_from_scratch_trains_offline_and_is_recorded(family, dataset, torch_home, tmp_path, monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, f"http://127.0.0.1:{closed_port()}")
    out = tmp_path / "run"
    r = CliRunner().invoke(app, train_args(family, dataset, out, "--from-scratch"))
    assert r.exit_code == 0, (r.output, r.exception)
    ckpt = out / FIRST_STAGE[family] / "last.pt"
    assert load_checkpoint(ckpt)["recipe"]["from_scratch"] is True
    info = CliRunner().invoke(app, ["weights", "info", str(ckpt), "--json"])
    assert info.exit_code == 0 and json.loads(info.output)["start"].startswith("from scratch")


def test_from_scratch_and_a_backbone_file_contradict(dataset, torch_home, tmp_path, capsys, monkeypatch):
    weights = tmp_path / "vgg.pth"
    torch.save({}, weights)
    code, output = run_cli(capsys, monkeypatch, *train_args("dim", dataset, tmp_path / "run", "--from-scratch",
                                                            "--backbone-weights", str(weights)))
    lines = [line for line in output.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "contradict" in lines[0], output
    assert not (tmp_path / "run" / "encoder").exists()


def tiny_vgg16(width: float) -> dict[str, torch.Tensor]:
    """A torchvision-named VGG16 state dict (features.N, classifier.K) at ``width`` of its channels."""
    gen = torch.Generator().manual_seed(0)
    state, channels = {}, 3
    widths = [max(4, round(int(c) * width)) for c in VGG16_LAYOUT if c != "M"]
    for index, out in zip(CONV_INDICES, widths):
        state[f"features.{index}.weight"] = torch.randn(out, channels, 3, 3, generator=gen)
        state[f"features.{index}.bias"] = torch.randn(out, generator=gen)
        channels = out
    state["classifier.6.weight"] = torch.randn(10, 4, generator=gen)  # fc8: skipped by the loader
    return state


def test_the_downloaded_backbone_is_what_the_encoder_starts_from(dataset, torch_home, server, tmp_path):
    """Through `train dim`: the served file is downloaded, loaded into conv1_1..conv5_3 (RGB part), and
    the trimap channel's weights start at zero; lr 1e-12 keeps one Adam step below 1e-9 per weight."""
    root, base = server
    state = tiny_vgg16(1 / 16)
    torch.save(state, root / "tiny-vgg16.pth")
    out = tmp_path / "run"
    r = CliRunner().invoke(app, train_args("dim", dataset, out, "--set", "width=0.0625", "--set", "lr=1e-12",
                                           "--set", f'imagenet_url="{base}/tiny-vgg16.pth"',
                                           "--set", f'imagenet_sha256="{sha256(root / "tiny-vgg16.pth")}"'))
    assert r.exit_code == 0, (r.output, r.exception)
    assert (cache_dir() / "tiny-vgg16.pth").is_file()
    model = load_checkpoint(out / "encoder" / "last.pt")["model"]
    for index in CONV_INDICES:
        loaded = model[f"encoder.features.{index}.weight"]
        assert torch.allclose(loaded[:, :state[f"features.{index}.weight"].shape[1]], state[f"features.{index}.weight"],
                              atol=1e-6)
    assert model["encoder.features.0.weight"][:, 3].abs().max() < 1e-6
    info = CliRunner().invoke(app, ["weights", "info", str(out / "encoder" / "last.pt"), "--json"])
    assert json.loads(info.output)["start"] == "ImageNet: tiny-vgg16.pth"


@pytest.mark.parametrize("batch_norm", [False, True])
def test_dim_trimap_channel_starts_at_zero_from_scratch(dataset, torch_home, tmp_path, batch_norm):
    """The paper zeroes conv1_1's trimap weights; from scratch too (He init elsewhere)."""
    out = tmp_path / "run"
    r = CliRunner().invoke(app, train_args("dim", dataset, out, "--from-scratch", "--set", "lr=1e-12",
                                           "--set", f"batch_norm={str(batch_norm).lower()}"))
    assert r.exit_code == 0, (r.output, r.exception)
    conv1 = load_checkpoint(out / "encoder" / "last.pt")["model"]["encoder.features.0.weight"]
    assert conv1.shape[1] == 4
    assert conv1[:, 3].abs().max() < 1e-6
    assert conv1[:, :3].abs().mean() > 1e-2  # He init on RGB: kaiming std sqrt(2 / (64 * 9)) ~ 0.06
