"""Issue 18: the studio used as a careless or hostile user would. Each test reproduces a probe that
failed (an input overwritten, a write out of --out, lost clicks, a hung thread, a 500, invalid JSON)
and checks the refusal or the safe result instead."""
from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time

import pytest

from mattecli.cli.app import main
from mattecli.errors import MatteError
from mattecli.io.images import write_image
from mattecli.studio import server as studio_server
from mattecli.studio import session as studio_session
from studio_helpers import Client, blob_image, classical_session, make_folder, serving
from test_studio import studio  # noqa: F401 - the fixture: a classical studio on a thread

FG, BG = (32, 24), (3, 3)


def click(client, i, xy, label):
    return client.post("click", {"i": i, "x": xy[0], "y": xy[1], "label": label})


def clicked(client, i=0):
    click(client, i, FG, "fg")
    click(client, i, BG, "bg")


def files_of(folder) -> dict[str, bytes]:
    return {os.path.relpath(os.path.join(d, f), folder): open(os.path.join(d, f), "rb").read()
            for d, _, names in os.walk(folder) for f in names}


# --- 1. inputs are never overwritten -----------------------------------------------------------------------------------
def test_an_out_whose_outputs_would_be_inputs_is_refused_at_start(tmp_path):
    write_image(tmp_path / "w" / "alpha" / "a.png", blob_image(48, 64))
    with pytest.raises(MatteError, match="over the input image"):
        classical_session(tmp_path / "w" / "alpha", tmp_path / "w")
    with pytest.raises(MatteError, match="over the input image"):
        classical_session(tmp_path / "w" / "alpha" / "a.png", tmp_path / "w")
    write_image(tmp_path / "ds" / "fg" / "x.png", blob_image(48, 64))
    with pytest.raises(MatteError, match="fg output over the input image"):
        classical_session(tmp_path / "ds" / "fg", tmp_path / "ds", outputs=("alpha", "fg"))
    with pytest.raises(MatteError, match="--out is the input folder"):
        classical_session(tmp_path / "ds" / "fg", tmp_path / "ds" / "fg")


def shm_checkpoint(path) -> None:
    from mattecli.families.registry import build_model
    from mattecli.io.checkpoint import save_checkpoint

    config = {"infer_size": 32, "tnet_width": 8, "mnet_width": 8}
    save_checkpoint(path, {"family": "shm", "model_config": config, "model": build_model("shm", config).state_dict()})


def run(capsys, monkeypatch, *args) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["mattecli", *map(str, args)])
    with pytest.raises(SystemExit) as exc:
        main()
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return exc.value.code, err


def test_trimap_into_its_input_folder_says_so(tmp_path, capsys, monkeypatch):
    write_image(tmp_path / "d" / "a.png", blob_image(24, 32))
    shm_checkpoint(tmp_path / "shm.pt")
    code, err = run(capsys, monkeypatch, "trimap", tmp_path / "d", "--weights", tmp_path / "shm.pt", "--out", tmp_path / "d")
    assert code == 2 and "--out is the input folder" in err and "no images found" not in err
    # 9: the trimap network's input size obeys the pixel limit
    code, err = run(capsys, monkeypatch, "trimap", tmp_path / "d", "--weights", tmp_path / "shm.pt", "--out",
                    tmp_path / "t", "--infer-size", "100000")
    assert code == 2 and "--infer-size 100000" in err and "pixel limit" in err
    assert not (tmp_path / "t").exists()


# --- 2. nothing written outside --out -----------------------------------------------------------------------------------
def test_a_symlinked_output_folder_out_of_out_is_refused_at_start(tmp_path):
    make_folder(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "alpha").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(MatteError, match="symbolic link out of --out"):
        classical_session(tmp_path / "in", tmp_path / "out")
    assert not os.listdir(tmp_path / "elsewhere")


# --- 3. two studios sharing one --out keep every clicks.json entry ------------------------------------------------------
def test_concurrent_saves_from_two_studios_keep_every_entry(tmp_path, monkeypatch):
    for k in range(6):
        write_image(tmp_path / "in" / f"{k}.png", blob_image(48, 64, k))
    real = studio_session.write_clicks

    def slow_write(path, clicks):  # widens the read-modify-write window a lock must close
        time.sleep(0.3)
        real(path, clicks)

    monkeypatch.setattr(studio_session, "write_clicks", slow_write)
    first = classical_session(tmp_path / "in", tmp_path / "out")
    second = classical_session(tmp_path / "in", tmp_path / "out")
    for session in (first, second):
        for k in range(6):
            session.add_click(k, *FG, True)
            session.add_click(k, *BG, False)
    for pair in ((0, 1), (2, 3), (4, 5)):
        threads = [threading.Thread(target=s.save, args=(k,)) for s, k in zip((first, second), pair)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    saved = json.loads((tmp_path / "out" / "clicks.json").read_text())
    assert sorted(saved) == [f"{k}.png" for k in range(6)]


# --- 5. all or nothing ----------------------------------------------------------------------------------------------------
def test_a_save_that_cannot_write_clicks_json_writes_no_matte(studio):
    client, session, tmp = studio
    (tmp / "out" / "clicks.json").mkdir(parents=True)  # a folder where the clicks file goes
    clicked(client)
    status, err = client.json("POST", "/api/save", {"i": 0})
    assert status == 400 and "clicks.json" in err["error"]
    assert not (tmp / "out" / "alpha" / "a.png").exists() and not (tmp / "out" / "rgba" / "a.png").exists()
    assert not [n for n in files_of(tmp / "out") if "tmp" in n]


# --- 8. slow and idle clients -----------------------------------------------------------------------------------------------
def test_a_client_that_stops_sending_is_dropped(studio, monkeypatch, capfd):
    monkeypatch.setattr(studio_server.StudioHandler, "timeout", 1.0)
    client, _, _ = studio
    sock = socket.create_connection((client.host, client.port), timeout=8)
    sock.sendall(f"POST /api/click HTTP/1.1\r\nHost: {client.host}:{client.port}\r\nX-Studio-Token: {client.token}\r\n"
                 "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"i\": 0".encode())
    start = time.perf_counter()
    data = b""
    while chunk := sock.recv(4096):  # the server closes the connection
        data += chunk
    assert time.perf_counter() - start < 6
    sock.close()
    idle = socket.create_connection((client.host, client.port), timeout=8)
    assert idle.recv(10) == b""  # an idle connection is closed too, not held forever
    idle.close()
    gone = socket.create_connection((client.host, client.port))  # a client that leaves mid-answer
    gone.sendall(f"GET /api/view?i=0 HTTP/1.1\r\nHost: {client.host}:{client.port}\r\nX-Studio-Token: {client.token}\r\n\r\n".encode())
    gone.close()
    assert client.json("GET", "/api/state")[0] == 200
    time.sleep(0.3)
    assert "Traceback" not in capfd.readouterr().err


def test_connections_beyond_the_bound_get_a_503_at_once(tmp_path):
    make_folder(tmp_path)
    session = classical_session(tmp_path / "in", tmp_path / "out")
    server = studio_server.StudioServer(session, "127.0.0.1", 0, max_connections=3)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        idle = [socket.create_connection(server.server_address[:2]) for _ in range(3)]
        deadline = time.monotonic() + 10  # the server has accepted all three
        while server.slots._value > 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        status, _, body = Client(server).request("GET", "/api/state")
        assert status == 503 and b"busy" in body
        for s in idle:
            s.close()
        deadline = time.monotonic() + 10  # the closed connections' threads end and free their slots
        while (status := Client(server).request("GET", "/api/state")[0]) == 503 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status == 200
    finally:
        server.shutdown()
        server.server_close()


# --- 9. bounded clicks and undo -----------------------------------------------------------------------------------------------
def test_clicks_and_undo_history_are_bounded(studio, monkeypatch):
    monkeypatch.setattr(studio_session, "MAX_CLICKS", 4)
    monkeypatch.setattr(studio_session, "MAX_UNDO", 3)
    client, session, _ = studio
    for k in range(4):
        click(client, 0, (2 + k, 3), "bg")
    status, err = client.json("POST", "/api/click", {"i": 0, "x": 9, "y": 3, "label": "bg"})
    assert status == 400 and "4 clicks is the most" in err["error"]
    assert len(session.states[0].undo) == 3


# --- 11. 400s instead of 500s; bad settings refused at start ------------------------------------------------------------------
@pytest.mark.parametrize("body", [
    b'{"i": 0, "x": 1' + b"0" * 400 + b', "y": 2, "label": "fg"}',
    b'{"i": 1' + b"0" * 400 + b', "x": 1, "y": 2, "label": "fg"}',
    b'{"i": 1' + b"0" * 5000 + b', "x": 1, "y": 2, "label": "fg"}',
    b'{"i": 0, "x": NaN, "y": 2, "label": "fg"}',
], ids=["x-400-digits", "i-400-digits", "i-5000-digits", "x-nan"])
def test_huge_and_non_json_numbers_are_400s(studio, body):
    client, _, _ = studio
    status, _, payload = client.request("POST", "/api/click", raw_body=body)
    assert status == 400, payload
    assert len(payload) < 400 and b"\n" not in payload
    status, _, payload = client.request("GET", "/api/image?i=1" + "0" * 400)
    assert status == 400 and len(payload) < 400


def test_a_deep_path_and_memory_pressure_are_one_line(studio, monkeypatch):
    client, session, _ = studio
    status, _, payload = client.request("GET", "/files/in/" + "a/" * 5000 + "x.png")
    assert status in (400, 404, 414) and b"internal error" not in payload

    def no_memory(index):
        raise MemoryError()

    monkeypatch.setattr(session, "save", no_memory)
    status, err = client.json("POST", "/api/save", {"i": 0})
    assert status == 503 and "not enough memory" in err["error"]


def test_an_infinite_click_radius_is_refused_at_start(tmp_path, capsys, monkeypatch):
    make_folder(tmp_path)
    monkeypatch.setattr(sys, "argv", ["mattecli", "studio", str(tmp_path / "in"), "--out", str(tmp_path / "o"),
                                      "--click-radius", "inf", "--port", "0"])
    with pytest.raises(SystemExit) as exc:
        main()
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--click-radius inf" in err and "Traceback" not in err


# --- 16. restored clicks are validated --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["NaN", "Infinity", "1e400"])
def test_non_finite_saved_clicks_are_refused_on_reopening(tmp_path, value):
    make_folder(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "clicks.json").write_text('{"a.png": [{"x": %s, "y": 2, "label": "fg"}]}' % value)
    with pytest.raises(MatteError, match="finite number"):
        classical_session(tmp_path / "in", tmp_path / "out")


# --- messages ---------------------------------------------------------------------------------------------------------------------
def test_host_header_and_methods_are_checked_before_anything(studio):
    client, _, _ = studio
    status, _, body = client.request("GET", "/api/state", headers={"Host": "evil.example:80"})
    assert status == 403 and b"Host" in body
    assert client.request("GET", "/api/state", headers={"Host": f"localhost:{client.port}"})[0] == 200
    for method in ("PUT", "DELETE", "PATCH"):
        assert client.request(method, "/api/state", token=None)[0] == 403
        status, _, body = client.request(method, "/api/state")
        assert status == 405 and b"not allowed" in body


def test_a_browser_without_the_token_gets_a_page_and_no_favicon_403(studio):
    client, _, _ = studio
    status, headers, body = client.request("GET", "/", token=None, headers={"Accept": "text/html,*/*"})
    assert status == 403 and headers["Content-Type"].startswith("text/html")
    assert b"printed" in body and b"?token=" in body and client.token.encode() not in body
    status, headers, body = client.request("GET", "/favicon.ico", token=None)
    assert status == 204 and body == b""


def test_images_linked_out_of_the_input_folder_are_not_served(tmp_path):
    make_folder(tmp_path)
    write_image(tmp_path / "secret.png", blob_image(48, 64, 5))
    (tmp_path / "in" / "link.png").symlink_to(tmp_path / "secret.png")
    session = classical_session(tmp_path / "in", tmp_path / "out")
    assert session.outside_links == ["link.png"]
    with serving(session) as server:
        names = [im["name"] for im in Client(server).json("GET", "/api/state")[1]["images"]]
    assert "link.png" not in names and "a.png" in names


def test_the_replay_command_is_shell_quoted(tmp_path):
    import shlex

    write_image(tmp_path / "my pics" / "a.png", blob_image(48, 64))
    session = classical_session(tmp_path / "my pics", tmp_path / "it's out")
    words = shlex.split(session.batch_command())
    assert words[2] == str(tmp_path / "my pics") and str(tmp_path / "it's out") in words


def test_the_studio_listens_on_ipv6_loopback(tmp_path):
    probe = socket.socket(socket.AF_INET6) if socket.has_ipv6 else None
    try:
        probe.bind(("::1", 0))
    except (OSError, AttributeError):
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            raise
        pytest.skip("this machine has no IPv6 loopback")
    finally:
        if probe is not None:
            probe.close()
    make_folder(tmp_path)
    session = classical_session(tmp_path / "in", tmp_path / "out")
    with serving(session, "::1") as server:
        assert "[::1]" in server.url
        assert Client(server).request("GET", "/api/state")[0] == 200


def test_a_browser_opening_the_address_without_the_token_reads_what_to_do(tmp_path):
    from test_studio_browser import start_browser

    make_folder(tmp_path)
    session = classical_session(tmp_path / "in", tmp_path / "out")
    driver = start_browser(800, 600)
    try:
        with serving(session) as server:
            host, port = server.server_address[:2]
            driver.get(f"http://{host}:{port}/")
            text = driver.find_element("tag name", "body").text
    finally:
        driver.quit()
    assert "Open the address" in text and "?token=" in text and "{" not in text
