"""The open dispatch context on the station page, in a real browser (Debian's headless
Chromium driven by Playwright, as in test_station_page_browser.py), and in its state.json.

The real daemon runs with ``[epcis]`` and ``[http]``; a pallet label and a lot scanned at a
dispatch station show as "Pallet <SSCC> · 1 item" on the page, and the box goes when a step
command closes the context.
"""

from __future__ import annotations

import json
import shutil
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gatewayd.demo.local_broker import LocalBroker
from tests.epcis_gateway import SSCC_1, lot_read
from tests.mqtt_tools import DaemonProcess, Subscriber, start_daemon, wait_until, write_config
from tests.pty_scanner import PtyScanner

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
ROOT = "gatewayd/gw-epcis-page"

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra")
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run does)", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def poll(page: Any, expression: str, *, what: str) -> Any:
    return wait_until(lambda: page.evaluate(expression), timeout=15, interval=0.02, what=what)


def test_the_open_pallet_shows_on_the_station_page(
    tmp_path: Path, broker: LocalBroker, scanner: PtyScanner, daemons: list[DaemonProcess], browser: Any
) -> None:
    port = free_port()
    cfg = write_config(
        tmp_path / "gatewayd.toml",
        f"""
[gateway]
id = "gw-epcis-page"
state_dir = "{tmp_path / "state"}"

[mqtt]
brokers = ["{broker.url}"]
reconnect_min_s = 0.1
reconnect_max_s = 0.3

[[stations]]
id = "ship-01"
step = "dispatch"
location = "urn:epc:id:sgln:9506000.13435.4"
dedupe_ms = 0

[[scanners]]
id = "ship-01-left"
station = "ship-01"
driver = "serial"
port = "{scanner.path}"
char_timeout_ms = 0

[http]
listen = "127.0.0.1:{port}"

[epcis]
""",
    )
    with Subscriber(broker.port, [f"{ROOT}/#"]) as wms:
        d = start_daemon(daemons, cfg, tmp_path)
        wait_until(lambda: "http: serving" in d.log() or not d.alive(), timeout=20, what="the HTTP server")
        wms.wait_for(f"{ROOT}/devices/ship-01-left/state", lambda p: p["state"] == "connected")
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(f"http://127.0.0.1:{port}/stations/ship-01")
        poll(page, "document.body.dataset.conn === 'live'", what="the page live")
        assert page.evaluate("document.getElementById('contextBox').hidden") is True  # nothing open yet
        scanner.write(f"]C100{SSCC_1}\r".encode())
        scanner.write(f"{lot_read('LOT-P')}\r".encode())
        shown = poll(
            page,
            "!document.getElementById('contextBox').hidden && document.getElementById('context').textContent",
            what="the pallet on the page",
        )
        assert shown == f"{SSCC_1} · 1 item"
        assert page.evaluate("document.getElementById('contextKind').textContent") == "Pallet"
        assert page.evaluate("window.getComputedStyle(document.getElementById('contextBox')).display") != "none"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/stations/ship-01/state.json", timeout=10) as r:
            state = json.load(r)
        assert state["context"]["sscc"] == SSCC_1 and state["context"]["items"] == 1
        scanner.write(b"STEP:picking\r")  # closes the context
        poll(page, "document.getElementById('contextBox').hidden", what="the pallet box gone")
        assert page.evaluate("window.getComputedStyle(document.getElementById('contextBox')).display") == "none"
        page.close()
        assert d.terminate() == 0
