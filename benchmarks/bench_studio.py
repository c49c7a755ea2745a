"""Studio latency: click to updated matte, at 512 and 1024 px, server side and in a real browser.

For each image size (longer side) and method, a simulated user makes 20 clicks on one
alphamatting.com image resized to that size: clicks drawn (seeded) from the ground truth,
foreground where alpha = 1 and background where alpha = 0, alternating, starting with a
foreground one. Three clocks per click:

- compute: the session's matting + foreground colour at the working resolution (the
  ``compute_ms`` the server reports);
- server: the /api/click round trip from a Python HTTP client on the same machine
  (compute + PNG encoding + JSON);
- browser: headless Chromium (Selenium, the system chromedriver) from the mousedown on the
  canvas to the redrawn matte (the page's own ``performance.now()`` clock).

Median and 95th percentile (numpy's linear interpolation) over the 20 clicks. ``--weights``
adds a click checkpoint; ``--click-quick`` adds the click family's network in the
``recipes/click-quick.toml`` configuration with *untrained* weights (its latency is the trained
network's: same architecture, same refinement budget; its mattes mean nothing); ``--full`` adds
the classical method without a working resolution
(work size = image size) at the sizes given, to show what the working resolution buys.
``--screenshot PATH`` saves a picture of the page after the clicks (the first size).

    python benchmarks/bench_studio.py [--sizes 512,1024] [--clicks 20] [--weights click.pt] [--click-quick]
        [--full 512] [--screenshot docs/img/studio.jpg]
"""
from __future__ import annotations

import argparse
import http.client
import json
import shutil
import sys
import tempfile
import threading
from pathlib import Path

import cv2
import numpy as np

from mattecli.inference.batch import MatteOptions
from mattecli.inference.methods import build_method
from mattecli.io.images import read_alpha, read_rgb, write_image
from mattecli.studio.server import StudioServer
from mattecli.studio.session import WORK_SIZE, StudioSession

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "real" / "alphamatting"


def resized(arr: np.ndarray, side: int) -> np.ndarray:
    h, w = arr.shape[:2]
    s = side / max(h, w)
    size = (round(w * s), round(h * s))
    return cv2.resize(arr, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)


def simulated_clicks(alpha: np.ndarray, n: int, seed: int) -> list[tuple[float, float, str]]:
    rng = np.random.default_rng(seed)
    fg, bg = np.argwhere(alpha == 255), np.argwhere(alpha == 0)
    out = []
    for k in range(n):
        pool, label = (fg, "fg") if k % 2 == 0 else (bg, "bg")
        y, x = pool[rng.integers(len(pool))]
        out.append((float(x), float(y), label))
    return out


def stats(ms: list[float]) -> str:
    a = np.asarray(ms)
    return f"{np.median(a):8.0f} {np.percentile(a, 95):8.0f}"


def start(session: StudioSession) -> tuple[StudioServer, threading.Thread]:
    server = StudioServer(session, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread


def server_side(server: StudioServer, clicks) -> tuple[list[float], list[float]]:
    import time

    host, port = server.server_address[:2]
    compute, round_trip = [], []
    for x, y, label in clicks:
        conn = http.client.HTTPConnection(host, port, timeout=600)
        t = time.perf_counter()
        conn.request("POST", "/api/click", json.dumps({"i": 0, "x": x, "y": y, "label": label}),
                     {"X-Studio-Token": server.token, "Content-Type": "application/json"})
        data = json.loads(conn.getresponse().read())
        round_trip.append((time.perf_counter() - t) * 1000)
        conn.close()
        compute.append(data["preview"]["compute_ms"])
    return compute, round_trip


def browser_side(server: StudioServer, clicks, size: tuple[int, int], screenshot: Path | None) -> list[float]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1500,900", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=options)
    h, w = size
    try:
        host, port = server.server_address[:2]
        driver.get(f"http://{host}:{port}/?token={server.token}")
        wait = WebDriverWait(driver, 600, poll_frequency=0.1)
        wait.until(lambda d: d.execute_script("return window.studio && window.studio.updates") == 1)
        canvas = driver.find_element("id", "source")
        rect = canvas.rect
        for k, (x, y, label) in enumerate(clicks):
            dx = round((x + 0.5) / w * rect["width"] - rect["width"] / 2)
            dy = round((y + 0.5) / h * rect["height"] - rect["height"] / 2)
            chain = ActionChains(driver).move_to_element_with_offset(canvas, dx, dy)
            (chain.click() if label == "fg" else chain.context_click()).perform()
            wait.until(lambda d: d.execute_script("return window.studio.updates") == k + 2)
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            png = driver.get_screenshot_as_png()
            if screenshot.suffix.lower() in (".jpg", ".jpeg"):  # smaller for the docs
                png = cv2.imencode(".jpg", cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR),
                                   [cv2.IMWRITE_JPEG_QUALITY, 88])[1].tobytes()
            screenshot.write_bytes(png)
        return list(driver.execute_script("return window.studio.latencies"))
    finally:
        driver.quit()


def save_click_quick(path: Path) -> None:
    """The click family's network as recipes/click-quick.toml builds it (refine stage), random weights."""
    import torch

    from mattecli.families.registry import build_model, get_family
    from mattecli.io.checkpoint import save_checkpoint
    from mattecli.train.recipe import load_recipe, stage_recipe

    recipe = stage_recipe(load_recipe("click-quick"), "refine")
    config = get_family("click").model_config(recipe)
    torch.manual_seed(0)
    save_checkpoint(path, {"family": "click", "model_config": config, "model": build_model("click", config).state_dict()})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)  # or --data ../shared/data/real/alphamatting
    ap.add_argument("--image", default="GT04", help="alphamatting.com image name")
    ap.add_argument("--sizes", default="512,1024")
    ap.add_argument("--clicks", type=int, default=20)
    ap.add_argument("--weights", type=Path, default=None, help="a click checkpoint to time as well")
    ap.add_argument("--click-quick", action="store_true", help="time the click-quick network (untrained weights)")
    ap.add_argument("--full", default="512", help="sizes at which to time the classical method at full resolution too")
    ap.add_argument("--click-methods", default="grabcut,disks",
                    help="the weights-free methods to time (matte --click-method): adaptive, grabcut, chain, disks")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--screenshot", type=Path, default=None)
    args = ap.parse_args()

    image = read_rgb(args.data / "image" / f"{args.image}.png")
    gt = read_alpha(args.data / "alpha" / f"{args.image}.png")
    sizes = [int(s) for s in args.sizes.split(",") if s]
    full = {int(s) for s in args.full.split(",") if s}
    free = [m for m in args.click_methods.split(",") if m]
    runs = [(side, f"classical {m}", None, WORK_SIZE, m) for m in free for side in sizes]
    runs += [(side, f"classical {m}, full res", None, side, m) for m in free for side in sizes if side in full]
    if args.weights is not None:
        runs += [(side, f"checkpoint {args.weights.name}", args.weights, WORK_SIZE, None) for side in sizes]
    scratch = tempfile.TemporaryDirectory()
    if args.click_quick:
        quick = Path(scratch.name) / "click-quick-untrained.pt"
        save_click_quick(quick)
        runs += [(side, "click-quick net (untrained)", quick, WORK_SIZE, None) for side in sizes]
    print(f"{args.image}, {args.clicks} clicks; compute = matting + foreground at the working resolution; "
          f"server = /api/click round trip; browser = mousedown to redrawn matte (ms)", flush=True)
    print(f"{'size':>9} {'method':<28} {'work':>5} {'compute p50':>11} {'p95':>5} {'server p50':>10} {'p95':>5} "
          f"{'browser p50':>11} {'p95':>5}", flush=True)
    shot = args.screenshot
    for side, name, weights, work, click_method in runs:
        img, alpha = resized(image, side), resized(gt, side)
        clicks = simulated_clicks(alpha, args.clicks, seed=side)
        with tempfile.TemporaryDirectory() as tmp:
            write_image(Path(tmp) / "in" / f"{args.image}.png", img)
            method = build_method(weights, "classical", args.device, 1, "fp32", 5.0, click_method=click_method)
            opts = MatteOptions(input=Path(tmp) / "in" / f"{args.image}.png", out=Path(tmp) / "out", overwrite=True)
            session = StudioSession(opts, method, work, weights)
            server, thread = start(session)
            try:
                compute, server_ms = server_side(server, clicks)
                browser = None
                if not args.no_browser:
                    session.clear(0)
                    session.states[0].undo.clear()
                    browser = browser_side(server, clicks, img.shape[:2], shot)
                    shot = None
            finally:
                server.shutdown()
                server.server_close()
        label = f"{img.shape[1]}x{img.shape[0]}"
        line = f"{label:>9} {name:<28} {min(work, side):>5} {stats(compute)} {stats(server_ms)}"
        line += f" {stats(browser)}" if browser else "        -        -"
        print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
