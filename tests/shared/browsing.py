"""What the student's browser tests share (tests/student, tests/letters and tests/formations):
Debian's Chromium driven by Playwright at a phone's width (390 px) and a desktop's, a service served by uvicorn in a
thread on a port of the test's own range, and the checks made on every page: no axe-core violation (tests/axe),
nothing wider than the window, a screenshot kept; a PDF's page count."""

from __future__ import annotations

import os
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "axe"))
from axe import violations  # noqa: E402

CHROMIUM = os.environ.get("PASSPRO_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [  # no background traffic: this machine's network is closed (the component updater, sync)
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
WIDTHS = {
    "telephone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2},
    "ordinateur": {"viewport": {"width": 1280, "height": 900}},
}


def unavailable(reason: str) -> None:
    if os.environ.get("PASSPRO_TEST_REQUIRE_SERVERS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def free_port(ports: range) -> int:
    for port in ports:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")


@contextmanager
def serve(passpro, service: str, ports: range) -> Iterator[str]:
    """The service (its app from services.<service>.app) on a free port of `ports`, in this process: its base URL."""
    import importlib

    import uvicorn

    create_app = importlib.import_module(f"services.{service}.app").create_app
    passpro.migrate(service)
    port = free_port(ports)
    server = uvicorn.Server(uvicorn.Config(create_app(passpro.settings(service)), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail(f"the {service} service did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def chromium(screenshots: Path) -> Iterator:
    """Chromium, headless, or the test skipped (failed with PASSPRO_TEST_REQUIRE_SERVERS=1) when it is missing."""
    if not Path(CHROMIUM).exists():
        unavailable(f"no Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed")
    screenshots.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def overflow(page) -> int:
    """How many CSS pixels the page is wider than its window (0: no sideways scrolling)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def check_page(page, screenshots: Path, name: str, width: str) -> None:
    """No axe violation, nothing wider than the window, and a screenshot kept."""
    assert violations(page) == []
    assert overflow(page) <= 0, f"{name}: {overflow(page)} px wider than the {width} window"
    page.screenshot(path=str(screenshots / f"{width}-{name}.png"), full_page=True)


def pdf_pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", pdf))
