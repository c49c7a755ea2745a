"""The studio in a real browser: headless Chromium driven by Selenium with the system chromedriver.

Clicks on the canvas, waits for the updated matte, undoes, saves, and checks the files.
Skips locally when Chromium, chromedriver or selenium is missing; fails when CI=true.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from conftest import skip_or_fail
from mattecli.inference.batch import MatteOptions, run_matte
from mattecli.inference.clicks import read_clicks
from mattecli.io.images import read_raw, write_image
from studio_helpers import blob_image, classical_session, serving

H, W = 96, 128


def browser_paths() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    problem = None
    try:
        import selenium  # noqa: F401
    except ImportError:
        problem = "selenium is not installed (pip install -e '.[test]')"
    if chromium is None or driver is None:
        problem = "headless Chromium and chromedriver are needed (apt-get install chromium chromium-driver)"
    if problem:
        skip_or_fail(problem)
    return chromium, driver


def start_browser(width: int = 1400, height: int = 900):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def wait_for(driver, script: str, value: int, timeout: float = 60) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: (d.execute_script(script) or 0) >= value)


def click_canvas(driver, canvas, x: float, y: float, right: bool = False) -> None:
    """Click the canvas at image pixel (x, y); Selenium's offsets are from the element's centre."""
    from selenium.webdriver.common.action_chains import ActionChains

    rect = canvas.rect
    dx = round((x + 0.5) / W * rect["width"] - rect["width"] / 2)
    dy = round((y + 0.5) / H * rect["height"] - rect["height"] / 2)
    chain = ActionChains(driver).move_to_element_with_offset(canvas, dx, dy)
    (chain.context_click() if right else chain.click()).perform()


def test_click_wait_undo_save_in_headless_chromium(tmp_path):
    browser_paths()
    write_image(tmp_path / "in" / "shot.png", blob_image(H, W, 3))
    write_image(tmp_path / "in" / "other.png", blob_image(H, W, 4))
    session = classical_session(tmp_path / "in", tmp_path / "out", outputs=("alpha", "rgba"))
    driver = start_browser()
    try:
        with serving(session) as server:
            host, port = server.server_address[:2]
            driver.get(f"http://{host}:{port}/?token={server.token}")
            wait_for(driver, "return window.studio && window.studio.updates", 1)  # the first image is open
            assert driver.execute_script("return window.studio.ui.data.name") == "other.png"
            driver.find_element("id", "next").click()
            wait_for(driver, "return window.studio.updates", 2)
            assert driver.execute_script("return window.studio.ui.data.name") == "shot.png"
            source = driver.find_element("id", "source")
            click_canvas(driver, source, 64, 48)  # inside the ellipse: foreground
            wait_for(driver, "return window.studio.updates", 3)
            result = driver.find_element("id", "result")
            click_canvas(driver, result, 6, 6, right=True)  # on the matte view: background
            wait_for(driver, "return window.studio.updates", 4)
            click_canvas(driver, source, 120, 90, right=True)
            wait_for(driver, "return window.studio.updates", 5)
            clicks = driver.execute_script("return window.studio.ui.data.clicks")
            assert [c["label"] for c in clicks] == ["fg", "bg", "bg"]
            for c, (x, y) in zip(clicks, [(64, 48), (6, 6), (120, 90)]):
                assert abs(c["x"] - x) <= 1.5 and abs(c["y"] - y) <= 1.5, c
            latencies = driver.execute_script("return window.studio.latencies")
            assert len(latencies) == 3 and all(t > 0 for t in latencies)
            # the cutout drawn on the result canvas: orange foreground at the click, checkerboard far away
            pixel = "const c = document.getElementById('result'); return Array.from(c.getContext('2d').getImageData(arguments[0], arguments[1], 1, 1).data);"
            scale = driver.execute_script("return document.getElementById('result').width") / W
            fg = driver.execute_script(pixel, int(64 * scale), int(48 * scale))
            bg = driver.execute_script(pixel, int(4 * scale), int(4 * scale))
            assert fg[0] > 180 and fg[2] < 120, fg
            assert min(bg[:3]) >= 190 and max(bg[:3]) - min(bg[:3]) <= 5, bg  # checker grey/white
            driver.find_element("id", "undo").click()
            wait_for(driver, "return window.studio.updates", 6)
            assert len(driver.execute_script("return window.studio.ui.data.clicks")) == 2
            driver.find_element("id", "save").click()
            wait_for(driver, "return window.studio.saves", 1)
            saved = driver.execute_script("return window.studio.lastSave.saved")
            status = driver.find_element("id", "status").text
    finally:
        driver.quit()
    assert saved == ["alpha/shot.png", "rgba/shot.png", "clicks.json"] and "saved" in status
    stored = read_clicks(tmp_path / "out" / "clicks.json")
    assert list(stored) == ["shot.png"] and [c.positive for c in stored["shot.png"]] == [True, False]
    alpha = read_raw(tmp_path / "out" / "alpha" / "shot.png")
    assert alpha.shape == (H, W) and alpha[48, 64] == 255 and alpha[6, 6] == 0
    rgba = read_raw(tmp_path / "out" / "rgba" / "shot.png")
    assert np.array_equal(rgba[:, :, 3], alpha)
    # the batch command on the saved clicks writes the same matte
    summary = run_matte(MatteOptions(input=tmp_path / "in" / "shot.png", out=tmp_path / "batch",
                                     clicks=tmp_path / "out" / "clicks.json"), session.method)
    assert summary.done == 1
    assert np.array_equal(read_raw(tmp_path / "batch" / "alpha" / "shot.png"), alpha)


def test_click_network_heat_map_outlines_and_budget_slider(tmp_path):
    from selenium.webdriver.common.keys import Keys

    from studio_tiny_click import save_tiny_click

    browser_paths()
    write_image(tmp_path / "in" / "shot.png", blob_image(H, W, 5))
    save_tiny_click(tmp_path / "click.pt")
    session = classical_session(tmp_path / "in", tmp_path / "out", weights=tmp_path / "click.pt")
    driver = start_browser()
    try:
        with serving(session) as server:
            host, port = server.server_address[:2]
            driver.get(f"http://{host}:{port}/?token={server.token}")
            wait_for(driver, "return window.studio && window.studio.updates", 1)
            assert driver.find_element("id", "budget-box").is_displayed()
            assert driver.find_element("id", "budget-value").text == "2"
            click_canvas(driver, driver.find_element("id", "source"), 64, 48)
            wait_for(driver, "return window.studio.updates", 2)
            driver.find_element("css selector", "input[name=view][value=uncertainty]").click()
            patches = driver.execute_script("return window.studio.ui.data.preview.patches")
            assert len(patches) == 2
            x0, y0, x1, y1 = patches[0]
            scale = driver.execute_script("return document.getElementById('result').width") / W
            edge = driver.execute_script(
                "const c = document.getElementById('result'); "
                "return Array.from(c.getContext('2d').getImageData(arguments[0], arguments[1], 1, 1).data);",
                int(x0 * scale + 0.5 * (x1 - x0) * scale), int(y0 * scale))
            assert edge[:3] == [0, 229, 255], edge  # the patch outline (#00e5ff) over the heat map
            slider = driver.find_element("id", "budget")
            slider.send_keys(Keys.ARROW_RIGHT)  # the keyboard moves the slider: input and change events
            wait_for(driver, "return window.studio.updates", 3)
            assert len(driver.execute_script("return window.studio.ui.data.preview.patches")) == 3
            assert session.budget == 3
    finally:
        driver.quit()
