"""Shared by the studio's tests and benchmark: test pictures, a server on a thread, raw HTTP."""
from __future__ import annotations

import base64
import http.client
import json
import threading
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from mattecli.inference.batch import MatteOptions
from mattecli.inference.methods import build_method
from mattecli.io.images import write_image
from mattecli.studio.server import StudioServer
from mattecli.studio.session import StudioSession


def blob_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """An orange ellipse on a dark textured background: clicks inside and outside make a clear matte."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), (40, 50, 70), np.float64) + rng.normal(0, 6, (h, w, 3))
    mask = np.zeros((h, w), np.float64)
    cv2.ellipse(mask, (w // 2, h // 2), (w // 4, h // 3), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (5, 5), 0)[:, :, None]
    img = img * (1 - mask) + np.array((230, 140, 60)) * mask
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def make_folder(root: Path, size: tuple[int, int] = (48, 64)) -> Path:
    """in/a.png, in/b.jpg, in/sub/c.png (c is the odd size)."""
    h, w = size
    write_image(root / "in" / "a.png", blob_image(h, w, 0))
    write_image(root / "in" / "b.jpg", blob_image(h, w, 1))
    write_image(root / "in" / "sub" / "c.png", blob_image(h + 8, w - 8, 2))
    return root / "in"


def classical_session(input_path: Path, out: Path, work_size: int = 384, weights: Path | None = None,
                      click_method: str | None = None, **options) -> StudioSession:
    method = build_method(weights, "classical", "cpu", 1, "fp32", options.get("click_radius"), click_method=click_method)
    return StudioSession(MatteOptions(input=input_path, out=out, overwrite=True, **options), method, work_size, weights)


@contextmanager
def serving(session: StudioSession, host: str = "127.0.0.1"):
    server = StudioServer(session, host, 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class Client:
    """Raw HTTP (http.client sends paths exactly as given: no '..' normalisation)."""

    def __init__(self, server: StudioServer) -> None:
        self.host, self.port = server.server_address[:2]
        self.token = server.token

    def request(self, method: str, path: str, body: object = None, token: str | None = "header",
                raw_body: bytes | None = None, headers: dict | None = None) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        hdrs = dict(headers or {})
        if token == "header":
            hdrs["X-Studio-Token"] = self.token
        elif token == "query":
            path += ("&" if "?" in path else "?") + f"token={self.token}"
        elif token is not None:
            hdrs["X-Studio-Token"] = token
        data = raw_body if raw_body is not None else (None if body is None else json.dumps(body).encode())
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        payload = r.read()
        conn.close()
        return r.status, dict(r.getheaders()), payload

    def json(self, method: str, path: str, body: object = None, **kw) -> tuple[int, dict]:
        status, headers, payload = self.request(method, path, body, **kw)
        assert headers["Content-Type"].startswith("application/json"), (status, payload[:200])
        return status, json.loads(payload)

    def post(self, action: str, body: dict) -> dict:
        status, data = self.json("POST", f"/api/{action}", body)
        assert status == 200, data
        return data


def decode_png_url(url: str) -> np.ndarray:
    head, _, b64 = url.partition(",")
    assert head == "data:image/png;base64"
    arr = cv2.imdecode(np.frombuffer(base64.b64decode(b64), np.uint8), cv2.IMREAD_UNCHANGED)
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA if arr.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    return arr
