"""`mattecli studio`: every endpoint over real HTTP, the token, path escapes, and save == `matte --clicks`."""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from mattecli.cli.app import main
from mattecli.errors import MatteError
from mattecli.inference.batch import MatteOptions, run_matte
from mattecli.inference.clicks import Click, read_clicks
from mattecli.inference.methods import LearnedMethod
from mattecli.io.images import read_raw
from mattecli.studio import server as studio_server
from studio_helpers import Client, classical_session, decode_png_url, make_folder, serving
from studio_tiny_click import save_tiny_click

FG, BG, BG2 = (32, 24), (3, 3), (60, 44)


def click(client, i, xy, label):
    return client.post("click", {"i": i, "x": xy[0], "y": xy[1], "label": label})


@pytest.fixture
def studio(tmp_path):
    make_folder(tmp_path)
    session = classical_session(tmp_path / "in", tmp_path / "out")
    with serving(session) as server:
        yield Client(server), session, tmp_path


def run_cli(args, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["mattecli", *map(str, args)])
    with pytest.raises(SystemExit) as exc:
        main()
    captured = capsys.readouterr()
    return exc.value.code, captured.out + captured.err


def test_token_is_required_on_every_route(studio):
    client, _, _ = studio
    for path in ("/", "/static/studio.js", "/api/state", "/api/image?i=0", "/api/view?i=0", "/files/in/a.png", "/nope"):
        for token in (None, "wrong"):
            status, _, body = client.request("GET", path, token=token)
            assert status == 403 and b"token" in body, (path, token, status)
    status, _, body = client.request("POST", "/api/click", {"i": 0, "x": 1, "y": 1, "label": "fg"}, token=None)
    assert status == 403
    assert client.json("GET", "/api/state")[0] == 200  # header
    status, headers, page = client.request("GET", "/", token="query")  # query string, as the printed address
    assert status == 200 and client.token.encode() in page and b"__TOKEN__" not in page
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert client.request("GET", "/static/studio.js", token="query")[0] == 200
    assert "Access-Control-Allow-Origin" not in headers


def test_click_undo_redo_clear_navigate(studio):
    client, _, _ = studio
    status, state = client.json("GET", "/api/state")
    assert [im["name"] for im in state["images"]] == ["a.png", "b.jpg", "sub/c.png"] and state["budget"] is None
    data = click(client, 0, FG, "fg")  # foreground alone is refused as matte refuses it: a note, no matte
    assert "alpha" not in data["preview"] and "no background" in data["preview"]["note"]
    data = click(client, 0, BG, "bg")
    alpha = decode_png_url(data["preview"]["alpha"])
    assert alpha.shape == (48, 64) and alpha[FG[1], FG[0]] == 255 and alpha[BG[1], BG[0]] == 0
    cutout = decode_png_url(data["preview"]["cutout"])
    assert cutout.shape == (48, 64, 4) and np.array_equal(cutout[:, :, 3], alpha)
    assert cutout[FG[1], FG[0], 0] > 180  # the orange foreground colour
    assert [c["label"] for c in data["clicks"]] == ["fg", "bg"] and data["can_undo"] and not data["can_redo"]
    data = client.post("undo", {"i": 0})
    assert [c["label"] for c in data["clicks"]] == ["fg"] and data["can_redo"]
    data = client.post("redo", {"i": 0})
    assert len(data["clicks"]) == 2 and not data["can_redo"]
    data = client.post("clear", {"i": 0})
    assert data["clicks"] == [] and data["preview"] is None
    data = client.post("undo", {"i": 0})  # clear is undoable
    assert len(data["clicks"]) == 2 and data["preview"]["alpha"].startswith("data:image/png")
    status, other = client.json("GET", "/api/image?i=2")
    assert status == 200 and other["name"] == "sub/c.png" and other["clicks"] == [] and (other["width"], other["height"]) == (56, 56)
    status, back = client.json("GET", "/api/image?i=0")
    assert len(back["clicks"]) == 2  # each image keeps its own clicks
    status, headers, jpeg = client.request("GET", "/api/view?i=2")
    assert status == 200 and headers["Content-Type"] == "image/jpeg" and jpeg[:2] == b"\xff\xd8"


def test_only_background_clicks_give_a_note_not_an_error(studio):
    client, _, _ = studio
    data = click(client, 1, BG, "bg")
    assert "alpha" not in data["preview"]
    assert "no foreground" in data["preview"]["note"]
    status, err = client.json("POST", "/api/save", {"i": 1})
    assert status == 400 and "no foreground" in err["error"]


@pytest.mark.parametrize("method,path,body,raw,status,words", [
    ("POST", "/api/click", None, b"{not json", 400, "not valid JSON"),
    ("POST", "/api/click", None, b"[1, 2]", 400, "JSON object"),
    ("POST", "/api/click", {"i": 0, "x": 1, "label": "fg"}, None, 400, "'y' must be a number"),
    ("POST", "/api/click", {"i": 0, "x": 1, "y": 2, "label": "maybe"}, None, 400, "label must be"),
    ("POST", "/api/click", {"i": 0, "x": 64, "y": 2, "label": "fg"}, None, 400, "outside the 64x48 image"),
    ("POST", "/api/click", {"i": 7, "x": 1, "y": 2, "label": "fg"}, None, 400, "no image number 7"),
    ("POST", "/api/click", {"i": "0", "x": 1, "y": 2, "label": "fg"}, None, 400, "'i' must be an integer"),
    ("POST", "/api/undo", {"i": 0}, None, 400, "nothing to undo"),
    ("POST", "/api/redo", {"i": 0}, None, 400, "nothing to redo"),
    ("POST", "/api/save", {"i": 0}, None, 400, "no clicks to save"),
    ("POST", "/api/budget", {"i": 0, "value": 3}, None, 400, "no refinement budget"),
    ("POST", "/api/explode", {"i": 0}, None, 404, "no such action"),
    ("GET", "/api/image?i=x", None, None, 400, "?i=N"),
    ("GET", "/api/image?i=-1", None, None, 400, "no image number -1"),
    ("GET", "/api/click", None, None, 405, "not allowed"),
    ("POST", "/", {}, None, 405, "not allowed"),
    ("GET", "/static/../session.py", None, None, 404, "no asset"),
    ("GET", "/nowhere", None, None, 404, "no such page"),
    ("DELETE", "/api/state", None, None, 405, "not allowed"),
])
def test_bad_requests_get_4xx_with_one_line(studio, method, path, body, raw, status, words):
    client, _, _ = studio
    got, headers, payload = client.request(method, path, body, raw_body=raw)
    assert got == status, payload
    assert headers["Content-Type"] == "application/json"
    message = json.loads(payload)["error"]
    assert words in message and "\n" not in message and "Traceback" not in message


def test_oversized_body_is_refused(studio):
    client, _, _ = studio
    got, _, payload = client.request("POST", "/api/click", raw_body=b" " * (studio_server.MAX_BODY + 1))
    assert got == 413 and b"at most" in payload


def test_files_only_under_input_and_output(studio, tmp_path):
    client, _, root = studio
    (root / "secret.txt").write_text("top secret")
    os.symlink(root / "secret.txt", root / "in" / "link.txt")
    os.symlink(root, root / "in" / "dirlink")
    status, _, body = client.request("GET", "/files/in/sub/c.png")
    assert status == 200 and body == (root / "in" / "sub" / "c.png").read_bytes()
    for path, code in [("/files/in/../secret.txt", 403), ("/files/in/sub/../../secret.txt", 403),
                       ("/files/in/%2e%2e/secret.txt", 403), ("/files/in/..%2Fsecret.txt", 403),
                       ("/files/in//etc/passwd", 400), (f"/files/in/{root}/secret.txt", 400),
                       ("/files/in/%2Fetc%2Fpasswd", 400), ("/files/in/link.txt", 403),
                       ("/files/in/dirlink/secret.txt", 403), ("/files/out/../secret.txt", 403),
                       ("/files/root/secret.txt", 404), ("/files/in/missing.png", 404), ("/files/in/", 400)]:
        status, _, body = client.request("GET", path)
        assert status == code, (path, status, body)
        assert b"top secret" not in body and b"Traceback" not in body
    click(client, 0, FG, "fg")
    click(client, 0, BG, "bg")
    client.post("save", {"i": 0})
    status, _, body = client.request("GET", "/files/out/alpha/a.png")
    assert status == 200 and body == (root / "out" / "alpha" / "a.png").read_bytes()


def test_save_is_reproduced_bit_for_bit_by_matte_clicks(tmp_path, capsys, monkeypatch):
    make_folder(tmp_path)
    session = classical_session(tmp_path / "in", tmp_path / "out", outputs=("alpha", "rgba", "fg", "comp"),
                                click_radius=3.0, bg_color=(0, 128, 255))
    with serving(session) as server:
        client = Client(server)
        for i, clicks in enumerate([[(FG, "fg"), (BG, "bg")], [(FG, "fg"), (BG2, "bg"), (BG, "bg")],
                                    [((27.5, 28.3), "fg"), ((1, 54), "bg")]]):
            for xy, label in clicks:
                click(client, i, xy, label)
        saved = [client.post("save", {"i": i}) for i in range(3)]
    assert saved[0]["saved"] == ["alpha/a.png", "rgba/a.png", "fg/a.png", "comp/a.png", "clicks.json"]
    assert saved[2]["saved"][0] == "alpha/sub/c.png"
    command = saved[0]["command"].split()
    assert command[:3] == ["mattecli", "matte", str(tmp_path / "in")]
    stored = read_clicks(tmp_path / "out" / "clicks.json")
    assert stored["sub/c.png"] == [Click(27.5, 28.3, True), Click(1.0, 54.0, False)]
    # the printed batch command, with another output folder
    command[command.index("--out") + 1] = str(tmp_path / "batch")
    code, text = run_cli(command[1:], capsys, monkeypatch)
    assert code in (0, None), text
    for kind in ("alpha", "rgba", "fg", "comp"):
        for name in ("a.png", "b.png", "sub/c.png"):
            got = read_raw(tmp_path / "out" / kind / name)
            again = read_raw(tmp_path / "batch" / kind / name)
            assert np.array_equal(got, again), (kind, name)
    alpha = read_raw(tmp_path / "out" / "alpha" / "a.png")
    assert alpha[FG[1], FG[0]] == 255 and alpha[BG[1], BG[0]] == 0 and 0 < np.mean(alpha == 255) < 0.6


def test_reopening_restores_saved_clicks_and_keeps_other_entries(tmp_path):
    make_folder(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "clicks.json").write_text(json.dumps({
        "b": [{"x": 5, "y": 6, "label": "bg"}, {"x": 30, "y": 20, "label": "fg"}],
        "gone.png": [{"x": 1, "y": 1, "label": "fg"}]}))
    session = classical_session(tmp_path / "in", tmp_path / "out")
    assert session.states[1].clicks == [Click(5, 6, False), Click(30, 20, True)]
    assert session.states[0].clicks == []
    session.add_click(1, 40, 30, True)
    session.save(1)
    stored = json.loads((tmp_path / "out" / "clicks.json").read_text())
    assert set(stored) == {"b.jpg", "gone.png"}  # "b" replaced by its full name, the other key kept
    assert len(stored["b.jpg"]) == 3
    assert classical_session(tmp_path / "in", tmp_path / "out").states[1].clicks == session.states[1].clicks


def test_large_images_preview_at_working_resolution_save_at_full(tmp_path):
    make_folder(tmp_path, size=(96, 128))
    session = classical_session(tmp_path / "in", tmp_path / "out", work_size=32)
    session.add_click(0, 64, 48, True)
    session.add_click(0, 4, 4, False)
    preview = session.preview(0)
    assert preview.alpha.shape == (24, 32) and preview.alpha[12, 16] == 255 and preview.alpha[0, 0] == 0
    files = session.save(0)
    full = read_raw(files[0])
    assert full.shape == (96, 128) and full[48, 64] == 255
    # the full-resolution save is the batch result, not an upsampled preview
    out = run_matte(MatteOptions(input=tmp_path / "in" / "a.png", out=tmp_path / "one",
                                 clicks=tmp_path / "out" / "clicks.json", outputs=("alpha",)), session.method)
    assert out.done == 1 and np.array_equal(read_raw(tmp_path / "one" / "alpha" / "a.png"), full)


def test_click_network_uncertainty_patches_and_budget(tmp_path, capsys, monkeypatch):
    make_folder(tmp_path)
    save_tiny_click(tmp_path / "click.pt")
    session = classical_session(tmp_path / "in", tmp_path / "out", weights=tmp_path / "click.pt",
                                outputs=("alpha", "rgba", "uncertainty"))
    assert isinstance(session.method, LearnedMethod) and session.supports_budget and session.budget == 2
    with serving(session) as server:
        client = Client(server)
        assert client.json("GET", "/api/state")[1]["budget"] == 2
        data = click(client, 0, FG, "fg")
        preview = data["preview"]
        heat = decode_png_url(preview["uncertainty"])
        assert heat.shape == (48, 64, 3) and len(preview["patches"]) == 2
        for x0, y0, x1, y1 in preview["patches"]:
            assert x1 - x0 == 8 and y1 - y0 == 8 and x0 % 8 == 0 and y0 % 8 == 0
        data = client.post("budget", {"i": 0, "value": 5})
        assert len(data["preview"]["patches"]) == 5 and data["budget"] == 5
        status, err = client.json("POST", "/api/budget", {"i": 0, "value": -1})
        assert status == 400 and "0 or more" in err["error"]
        click(client, 0, BG, "bg")
        saved = client.post("save", {"i": 0})
    assert saved["saved"] == ["alpha/a.png", "rgba/a.png", "uncertainty/a.png", "clicks.json"]
    command = saved["command"].split()
    assert "--weights" in command and command[command.index("--refine-patches") + 1] == "5"
    assert "--click-radius" not in command  # the network's own radius rule, as matte's default
    # the printed batch command (the other two images have no clicks and fail) reproduces the saved files
    command[command.index("--out") + 1] = str(tmp_path / "batch")
    code, text = run_cli(command[1:], capsys, monkeypatch)
    assert code == 1 and "1 matted" in " ".join(text.split()), text
    for kind in ("alpha", "rgba", "uncertainty"):
        assert np.array_equal(read_raw(tmp_path / "out" / kind / "a.png"), read_raw(tmp_path / "batch" / kind / "a.png"))
    assert read_raw(tmp_path / "out" / "uncertainty" / "a.png").dtype == np.uint16


def test_extra_outputs_are_refused_for_the_classical_method(tmp_path):
    make_folder(tmp_path)
    with pytest.raises(MatteError, match="predicts no uncertainty map"):
        classical_session(tmp_path / "in", tmp_path / "out", outputs=("alpha", "uncertainty"))


def test_cli_refuses_and_warns(tmp_path, capsys, monkeypatch):
    make_folder(tmp_path)
    code, text = run_cli(["studio", tmp_path / "in", "--out", tmp_path / "out", "--refine-patches", "3"], capsys, monkeypatch)
    assert code == 2 and "no local refinement" in text and "Traceback" not in text
    code, text = run_cli(["studio", tmp_path / "nothing", "--out", tmp_path / "out"], capsys, monkeypatch)
    assert code == 2 and "no such file or folder" in text

    def stop(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(studio_server.StudioServer, "serve_forever", stop)
    monkeypatch.setattr(sys, "argv", ["mattecli", "studio", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                                      "--port", "0", "--host", "0.0.0.0"])
    with pytest.raises(SystemExit):
        main()
    captured = capsys.readouterr()
    assert "warning" in captured.err and "0.0.0.0" in captured.err
    url = captured.out.strip().splitlines()[-1]
    assert url.startswith("http://0.0.0.0:") and "token=" in url and len(url.split("token=")[1]) >= 24
    monkeypatch.setattr(sys, "argv", ["mattecli", "studio", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                                      "--port", "0"])
    with pytest.raises(SystemExit):
        main()
    captured = capsys.readouterr()
    assert "warning" not in captured.err and captured.out.startswith("http://127.0.0.1:")


def test_a_click_superseded_by_a_waiting_one_skips_its_preview(studio):
    client, session, _ = studio
    with session.arriving(0):  # as if the next click had already arrived
        data = click(client, 0, FG, "fg")
    assert data["preview"] == {"superseded": True} and len(data["clicks"]) == 1 and data["revision"] == 1
    data = click(client, 0, BG, "bg")  # nothing waits: the matte of both clicks
    assert data["revision"] == 2 and decode_png_url(data["preview"]["alpha"])[FG[1], FG[0]] == 255


def test_single_image_input_serves_only_that_image(tmp_path):
    make_folder(tmp_path)
    session = classical_session(tmp_path / "in" / "a.png", tmp_path / "out")
    with serving(session) as server:
        client = Client(server)
        assert client.request("GET", "/files/in/a.png")[0] == 200
        status, _, body = client.request("GET", "/files/in/b.jpg")  # beside it, but not the input
        assert status == 403 and b"only the input image" in body
        assert client.request("GET", "/files/in/sub/c.png")[0] == 403
        assert [im["name"] for im in client.json("GET", "/api/state")[1]["images"]] == ["a.png"]
        click(client, 0, FG, "fg")
        click(client, 0, BG, "bg")
        assert client.post("save", {"i": 0})["saved"] == ["alpha/a.png", "rgba/a.png", "clicks.json"]


def test_unwritable_output_is_one_line_and_nothing_is_lost(tmp_path):
    make_folder(tmp_path)
    (tmp_path / "out").write_text("a file where the output folder should be")
    session = classical_session(tmp_path / "in", tmp_path / "out")
    with serving(session) as server:
        client = Client(server)
        click(client, 0, FG, "fg")
        click(client, 0, BG, "bg")
        status, err = client.json("POST", "/api/save", {"i": 0})
        assert status == 400 and "cannot write" in err["error"] and "\n" not in err["error"]
        assert len(client.json("GET", "/api/image?i=0")[1]["clicks"]) == 2  # the clicks are still there


def test_a_trimap_network_is_refused_with_one_line(tmp_path):
    import train_tiny_family as tiny

    from mattecli.io.checkpoint import save_checkpoint

    make_folder(tmp_path)
    save_checkpoint(tmp_path / "dim.pt", {"family": "tiny", "model_config": {"width": 6, "refine": False},
                                          "model": tiny.TinyMatter().state_dict()})
    with pytest.raises(MatteError, match="takes --trimap, not --clicks"):
        classical_session(tmp_path / "in", tmp_path / "out", weights=tmp_path / "dim.pt")
