"""What a running gateway costs: a scan-only gateway loads nothing for features it does not
use, and gives back the memory its start-up freed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gatewayd.demo.local_broker import LocalBroker
from tests.mqtt_tools import ROOT, gateway_config
from tests.pty_scanner import PtyScanner

# Runs the real `gatewayd run`; once its status file says it is running and connected,
# a thread writes the loaded modules out and stops it as systemd would.
RUN_AND_LIST_MODULES = """
import json, os, signal, sys, threading, time
from pathlib import Path
from gatewayd.cli.main import main

config, status, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])

def watch():
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            body = json.loads(status.read_text())
        except (OSError, ValueError):
            body = {}
        if body.get("state") == "running" and body.get("mqtt", {}).get("connected"):
            out.write_text(json.dumps(sorted(sys.modules)))
            break
        time.sleep(0.01)
    os.kill(os.getpid(), signal.SIGTERM)

threading.Thread(target=watch, daemon=True).start()
sys.exit(main(["run", "--config", config]))
"""

# Loaded only where their feature is configured ([epcis], [http], printers, indicators,
# an EPCIS time zone name) or by another verb.
NOT_FOR_A_SCAN_ONLY_GATEWAY = (
    "gatewayd.epcis",
    "gatewayd.delivery.epcis_capture",
    "gatewayd.delivery.feed",
    "gatewayd.printing",
    "gatewayd.http",
    "gatewayd_drivers.printer_transport",
    "gatewayd_drivers.cups_printer",
    "gatewayd_drivers.usb_printer",
    "gatewayd_drivers.tower_light",
    "gatewayd_drivers.gpio_light",
    "gatewayd_drivers.scanner_light",
    "zoneinfo",
    "starlette",
    "uvicorn",
    "anyio",
    "prometheus_client",
    "escpos",
    "PIL",
    "segno",
    "gpiozero",
)


def test_a_scan_only_gateway_loads_no_module_of_an_unconfigured_feature(
    tmp_path: Path, broker: LocalBroker, scanner: PtyScanner
) -> None:
    cfg = gateway_config(tmp_path, [broker.url], scanner, gateway_id="footprint")
    out = tmp_path / "modules.json"
    result = subprocess.run(
        [sys.executable, "-c", RUN_AND_LIST_MODULES, str(cfg), str(tmp_path / "state" / "status.json"), str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert out.exists(), f"the gateway never said it was running and connected:\n{result.stderr}"
    modules = json.loads(out.read_text())
    assert "gatewayd.daemon" in modules and "gatewayd_drivers.serial_scanner" in modules  # it did run
    loaded = sorted(m for m in modules if m.startswith(NOT_FOR_A_SCAN_ONLY_GATEWAY))
    assert loaded == []


# Fragments the C heap as start-up does (blocks past pymalloc's 512 bytes come from
# malloc; every tenth stays alive so the heap cannot shrink from its top), then releases.
FRAGMENT_AND_RELEASE = """
import json, re
from gatewayd.memory import release_freed_memory

def rss_kb():
    return int(re.search(r"VmRSS:\\s+(\\d+)", open("/proc/self/status").read()).group(1))

blocks = [bytes(2000 + i % 7) for i in range(30_000)]
kept = blocks[::10]
del blocks
before = rss_kb()
supported = release_freed_memory()
print(json.dumps({"supported": supported, "before": before, "after": rss_kb()}))
"""


def test_release_freed_memory_gives_free_heap_pages_back() -> None:
    result = subprocess.run(
        [sys.executable, "-c", FRAGMENT_AND_RELEASE], capture_output=True, text=True, cwd=ROOT, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    if not got["supported"]:
        pytest.skip("no malloc_trim in this C library")
    # About 54 MB were freed in holes between the kept blocks: most of it goes back.
    assert got["before"] - got["after"] > 30_000, got
