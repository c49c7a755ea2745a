"""The studio's HTTP server: the standard library's ThreadingHTTPServer, a JSON API, the page.

Security, as the user can rely on it:

- every request must name the studio's own address in its ``Host`` header (a page of another
  site that re-points its name at 127.0.0.1, "DNS rebinding", is refused) and carry the
  session's random token (``?token=`` in the URL, or the ``X-Studio-Token`` header the page
  sends); without them: 403, before anything else is read (a browser asking for a page gets a
  short HTML page that says to open the printed address); only ``/favicon.ico`` answers
  without the token (204, nothing);
- every method (PUT, DELETE ... included) passes the same checks before it is refused;
- slow or idle clients cannot hold the server: each connection times out after
  ``REQUEST_TIMEOUT`` seconds of silence, and at most ``MAX_CONNECTIONS`` are served at once
  (the rest get a 503 at once);
- files are served only from under the input folder and the output folder
  (``/files/in/<path>``, ``/files/out/<path>``), after resolving ``..`` and symlinks;
- no CORS headers, so other web pages cannot read the answers;
- a bad request gets a 4xx JSON answer ``{"error": "<one line>"}``; an unexpected failure a
  500 with one line, never a traceback page.

API (JSON bodies and answers; ``i`` is the image number):

=======================  ====================================================================
GET  /                   the page
GET  /static/<name>      the page's script and style sheet (shipped in the package)
GET  /api/state          the images, the method, whether it has a refinement budget
GET  /api/image?i=       that image's clicks and current matte (as ``data:`` PNG URLs)
GET  /api/view?i=        the image itself (JPEG, longer side at most 2048)
POST /api/click          ``{"i", "x", "y", "label": "fg"|"bg"}``; answers like /api/image
POST /api/undo|redo|clear ``{"i"}``; answers like /api/image
POST /api/budget         ``{"i", "value"}``: the refinement budget (click networks only)
POST /api/save           ``{"i"}``: write the outputs and clicks.json; answers the files
GET  /files/in|out/<p>   a file under the input or output folder
=======================  ====================================================================
"""
from __future__ import annotations

import base64
import html
import ipaddress
import json
import mimetypes
import secrets
import socket
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np

from mattecli.errors import MatteError, first_line
from mattecli.io.images import encode_image
from mattecli.studio.session import Preview, StudioSession

TOKEN_HEADER = "X-Studio-Token"
MAX_BODY = 64 * 1024
#: seconds a connection may stay silent (a short body, an idle keep-alive) before it is closed
REQUEST_TIMEOUT = 15.0
#: connections served at once; more are answered 503 without a thread
MAX_CONNECTIONS = 32
#: the largest integer a number field accepts (beyond it, floats lose integer precision)
MAX_INTEGER = 2 ** 53
STATIC = {"studio.js": "text/javascript; charset=utf-8", "studio.css": "text/css; charset=utf-8"}


def _no_constant(name: str) -> None:
    """JSON bodies are strict: NaN and Infinity are not JSON."""
    raise ValueError(f"{name} is not a JSON number")


class RequestError(Exception):
    """A request the studio refuses: HTTP status and one line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _asset(name: str) -> bytes:
    return resources.files("mattecli.studio").joinpath("static", name).read_bytes()


def _png_url(arr: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(encode_image(arr, ".png", png_compression=1)).decode("ascii")


def preview_json(preview: Preview | None) -> dict | None:
    if preview is None:
        return None
    out: dict = {"compute_ms": round(preview.compute_ms, 1), "note": preview.note, "patches": preview.patches}
    if preview.alpha is not None:
        h, w = preview.alpha.shape
        out.update(width=w, height=h, alpha=_png_url(preview.alpha), cutout=_png_url(preview.cutout))
        if preview.uncertainty is not None:
            out["uncertainty"] = _png_url(preview.uncertainty)
    return out


def resolve_under(root: Path, rel: str) -> Path:
    """``root/rel`` if it names an existing file inside ``root`` once ``..`` and symlinks are resolved."""
    if not rel or rel.startswith("/") or "\\" in rel or "\x00" in rel:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"not a relative path: {rel[:80]!r}")
    base = root.resolve()
    try:
        target = (base / rel).resolve()
        if not target.is_relative_to(base):
            raise RequestError(HTTPStatus.FORBIDDEN, f"{rel[:80]}: outside the served folder")
        if not target.is_file():
            raise RequestError(HTTPStatus.NOT_FOUND, f"{rel[:80]}: no such file")
    except OSError as exc:  # a name too long, too many links ...
        raise RequestError(HTTPStatus.BAD_REQUEST, f"{rel[:80]}...: not a usable path ({exc.strerror or exc})") from None
    return target


class StudioServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, session: StudioSession, host: str = "127.0.0.1", port: int = 0, token: str | None = None,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        self.session = session
        self.token = token or secrets.token_urlsafe(24)
        self.host = host.strip("[]")
        self.address_family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self.slots = threading.BoundedSemaphore(max_connections)
        try:
            super().__init__((self.host, port), StudioHandler)
        except (OSError, OverflowError) as exc:
            raise MatteError(f"cannot listen on {host}:{port} ({getattr(exc, 'strerror', None) or exc})") from None
        options = session.options
        self.roots = {"in": options.input if options.input.is_dir() else options.input.parent, "out": options.out}
        self.allowed_hosts = self._allowed_hosts()

    def _allowed_hosts(self) -> set[str] | None:
        """Names the Host header may carry (without the port); None: any (a wildcard address)."""
        bound = str(self.server_address[0])
        try:
            ip = ipaddress.ip_address(bound)
        except ValueError:
            ip = None
        if ip is not None and ip.is_unspecified:
            return None
        names = {self.host.lower(), bound.lower()}
        if ip is not None and ip.is_loopback:
            names |= {"localhost", "127.0.0.1", "::1"}
        return names

    def host_allowed(self, header: str | None) -> bool:
        if self.allowed_hosts is None:
            return True
        if not header:
            return False
        header = header.strip().lower()
        if header.startswith("["):  # [::1]:8765
            name, _, rest = header[1:].partition("]")
            port = rest.removeprefix(":")
        else:
            name, _, port = header.rpartition(":") if header.count(":") == 1 else (header, "", "")
        return name in self.allowed_hosts and port in ("", str(self.server_address[1]))

    def process_request(self, request, client_address) -> None:
        """A thread per connection, at most ``max_connections`` at once: the rest get a 503 at once."""
        if not self.slots.acquire(blocking=False):
            try:
                request.settimeout(1.0)
                body = b'{"error": "the studio is busy: too many open connections; try again"}'
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                                b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request, client_address) -> None:
        """A client that went away is no error; anything else is one line on the console, no traceback."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        print(f"studio: connection from {client_address[0]}: {type(exc).__name__}: {exc}", file=sys.stderr)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = f"[{host}]" if ":" in str(host) else host
        return f"http://{shown}:{port}/?token={self.token}"


class StudioHandler(BaseHTTPRequestHandler):
    server: StudioServer
    server_version = "mattecli-studio"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = REQUEST_TIMEOUT  # socket timeout: a client that stops sending is dropped, not waited for

    # -- plumbing -------------------------------------------------------------------------------
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the stdlib's name
        pass  # one line per request would drown the console; errors reach the page

    def _send(self, status: int, body: bytes, content_type: str, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj: object, status: int = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(obj).encode("utf-8"), "application/json")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The stdlib's own refusals (malformed request line, unknown method) as one JSON line too."""
        self.close_connection = True
        try:
            self._json({"error": message or HTTPStatus(code).phrase}, code)
        except OSError:
            pass

    def _refuse(self, exc: RequestError) -> None:
        """A refusal as JSON; a browser navigating to a page without the token gets a short HTML page."""
        self.close_connection = True  # a refused request's body may be unread
        if (exc.status == HTTPStatus.FORBIDDEN and self.command == "GET"
                and "text/html" in (self.headers.get("Accept") or "")):
            page = ("<!doctype html><meta charset=utf-8><title>mattecli studio</title>"
                    f"<h1>mattecli studio</h1><p>{html.escape(str(exc))}.</p>"
                    "<p>Open the address the <code>mattecli studio</code> command printed: it ends with "
                    "<code>/?token=...</code>, the key to this session.</p>").encode("utf-8")
            self._send(exc.status, page, "text/html; charset=utf-8")
            return
        self._json({"error": str(exc)}, exc.status)

    def _dispatch(self) -> None:
        try:
            if not self.server.host_allowed(self.headers.get("Host")):
                raise RequestError(HTTPStatus.FORBIDDEN, f"Host {str(self.headers.get('Host'))[:80]!r} is not this "
                                                         "studio's address: open the address the studio printed")
            url = urlsplit(self.path)
            if url.path == "/favicon.ico" and self.command in ("GET", "HEAD"):
                self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")  # browsers ask for it without the token
                return
            query = parse_qs(url.query)
            token = self.headers.get(TOKEN_HEADER) or (query.get("token") or [""])[0]
            if not secrets.compare_digest(token.encode("utf-8", "replace"), self.server.token.encode("utf-8")):
                raise RequestError(HTTPStatus.FORBIDDEN, "missing or wrong token: open the address the studio printed")
            self._route(unquote(url.path), query)
        except RequestError as exc:
            self._refuse(exc)
        except MatteError as exc:
            self.close_connection = True
            self._json({"error": str(exc)}, HTTPStatus.BAD_REQUEST)
        except (ConnectionError, TimeoutError):  # the client went away or stopped sending
            self.close_connection = True
        except MemoryError:
            self.close_connection = True
            self._json({"error": "not enough memory for this request (the image at full resolution); close other "
                                 "programs, or matte it with `mattecli matte`"}, HTTPStatus.SERVICE_UNAVAILABLE)
        except Exception as exc:  # noqa: BLE001 - the page gets one line, the console the type
            print(f"studio: {self.command} {urlsplit(self.path).path}: {type(exc).__name__}: {exc}", file=sys.stderr)
            self._json({"error": f"internal error ({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''})"},
                       HTTPStatus.INTERNAL_SERVER_ERROR)

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self._dispatch()

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch()

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch()

    # other methods pass the Host and token checks too, then get a 405 (not the stdlib's 501 first)
    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_POST

    def _body(self) -> dict:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "a JSON body with a Content-Length is required") from None
        if length > MAX_BODY or length < 0:
            self.close_connection = True
            raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body of {length} bytes; at most {MAX_BODY}")
        raw = self.rfile.read(length)
        if len(raw) < length:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"body of {len(raw)} bytes, not the {length} announced")
        try:
            data = json.loads(raw or b"null", parse_constant=_no_constant)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # ValueError: an integer of 4,300+ digits
            raise RequestError(HTTPStatus.BAD_REQUEST, f"body is not valid JSON ({first_line(exc, 120)})") from None
        if not isinstance(data, dict):
            raise RequestError(HTTPStatus.BAD_REQUEST, "body must be a JSON object")
        return data

    @staticmethod
    def _number(data: dict, key: str, kind: type = float):
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RequestError(HTTPStatus.BAD_REQUEST, f"{key!r} must be {'an integer' if kind is int else 'a number'}")
        if isinstance(value, int) and abs(value) > MAX_INTEGER:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"{key!r} is out of range")
        if not np.isfinite(value):
            raise RequestError(HTTPStatus.BAD_REQUEST, f"{key!r} must be finite")
        if kind is int and value != int(value):
            raise RequestError(HTTPStatus.BAD_REQUEST, f"{key!r} must be an integer")
        return kind(value)

    @staticmethod
    def _index(query: dict) -> int:
        try:
            text = query["i"][0]
            if len(text) > 12:
                raise ValueError(text)
            return int(text)
        except (KeyError, ValueError):
            raise RequestError(HTTPStatus.BAD_REQUEST, "give the image number as ?i=N") from None

    # -- routes ---------------------------------------------------------------------------------
    def _route(self, path: str, query: dict) -> None:
        session = self.server.session
        get = self.command in ("GET", "HEAD")
        if get and path in ("/", "/index.html"):
            page = _asset("index.html").replace(b"__TOKEN__", self.server.token.encode("ascii"))
            self._send(HTTPStatus.OK, page, "text/html; charset=utf-8",
                       {"Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
                                                   "style-src 'self'; script-src 'self'; connect-src 'self'"})
        elif get and path.startswith("/static/"):
            name = path[len("/static/"):]
            if name not in STATIC:
                raise RequestError(HTTPStatus.NOT_FOUND, f"no asset {name!r}")
            self._send(HTTPStatus.OK, _asset(name), STATIC[name])
        elif get and path == "/api/state":
            self._json(self._state())
        elif get and path == "/api/image":
            self._json(self._image(self._index(query)))
        elif get and path == "/api/view":
            self._send(HTTPStatus.OK, session.view_jpeg(self._checked(self._index(query))), "image/jpeg")
        elif get and path.startswith("/files/"):
            where, _, rel = path[len("/files/"):].partition("/")
            if where not in self.server.roots:
                raise RequestError(HTTPStatus.NOT_FOUND, "files are served from /files/in/ and /files/out/ only")
            target = resolve_under(self.server.roots[where], rel)
            single = session.options.input
            if where == "in" and single.is_file() and target != single.resolve():
                raise RequestError(HTTPStatus.FORBIDDEN, f"{rel}: only the input image itself is served")
            self._send(HTTPStatus.OK, target.read_bytes(), mimetypes.guess_type(target.name)[0] or "application/octet-stream")
        elif self.command == "POST" and path.startswith("/api/"):
            self._post(path[len("/api/"):], self._body())
        elif path.startswith("/api/") or path in ("/", "/index.html") or path.startswith("/static/"):
            raise RequestError(HTTPStatus.METHOD_NOT_ALLOWED, f"{self.command} is not allowed on {path}")
        else:
            raise RequestError(HTTPStatus.NOT_FOUND, f"no such page: {path}")

    def _checked(self, index: int) -> int:
        self.server.session.state(index)  # raises for a number out of range
        return index

    def _post(self, action: str, data: dict) -> None:
        session = self.server.session
        index = self._checked(self._number(data, "i", int))
        if action in ("click", "undo", "redo", "clear", "budget"):
            with session.arriving(index):
                self._change(action, index, data)
            self._json(self._image(index, skip_superseded=True))
            return
        if action == "save":
            files = session.save(index)
            out = session.options.out
            self._json({"saved": [p.relative_to(out).as_posix() for p in files], "out": str(out),
                        "command": session.batch_command()})
            return
        raise RequestError(HTTPStatus.NOT_FOUND, f"no such action: {action}")

    def _change(self, action: str, index: int, data: dict) -> None:
        session = self.server.session
        if action == "click":
            label = data.get("label")
            if label not in ("fg", "bg"):
                raise RequestError(HTTPStatus.BAD_REQUEST, f"label must be \"fg\" or \"bg\", not {label!r}")
            session.add_click(index, self._number(data, "x"), self._number(data, "y"), label == "fg")
        elif action == "undo":
            session.undo(index)
        elif action == "redo":
            session.redo(index)
        elif action == "clear":
            session.clear(index)
        else:
            session.set_budget(self._number(data, "value", int))

    def _state(self) -> dict:
        s = self.server.session
        return {"images": [{"name": st.item.rel.as_posix(), "clicks": len(st.clicks)} for st in s.states],
                "method": s.method.describe(), "budget": s.budget if s.supports_budget else None,
                "work_size": s.work_size, "outputs": list(s.options.outputs), "out": str(s.options.out)}

    def _image(self, index: int, skip_superseded: bool = False) -> dict:
        """An image's clicks and matte; ``"preview": {"superseded": true}`` when another change
        to it is already waiting (the page keeps the matte it shows until that change's answer)."""
        s = self.server.session
        with s.lock:
            st = s.state(index)
            h, w = s.image(index).shape[:2]
            skip = skip_superseded and s.superseded(index)
            return {"i": index, "name": st.item.rel.as_posix(), "width": w, "height": h, "revision": st.revision,
                    "clicks": [{"x": c.x, "y": c.y, "label": "fg" if c.positive else "bg"} for c in st.clicks],
                    "can_undo": bool(st.undo), "can_redo": bool(st.redo),
                    "budget": s.budget if s.supports_budget else None,
                    "preview": {"superseded": True} if skip else preview_json(s.preview(index))}
