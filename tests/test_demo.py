"""`gatewayd demo` end to end: broker, replayed dock day, virtual printer, WMS view."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from gatewayd.demo.local_broker import LocalBroker, find_mosquitto
from tests.mqtt_tools import ROOT, wait_until


@pytest.mark.parametrize("broker", ["mosquitto", "amqtt"])
def test_demo_replays_a_dock_day_and_prints_labels(tmp_path: Path, broker: str) -> None:
    """amqtt is what a fresh Pi without mosquitto gets (MQTT 3.1.1)."""
    if broker == "mosquitto" and find_mosquitto() is None:
        pytest.skip("mosquitto is not installed here (apt-get install mosquitto)")
    out = tmp_path / "demo-out"
    proc = subprocess.run(
        [sys.executable, "-m", "gatewayd", "demo", "--once", "--speed", "20", "--out", str(out), "--broker", broker,
         "--http-port", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    scans = [line for line in proc.stdout.splitlines() if "  scan  " in line]
    # 17 reads in the day: one repeat inside the dedupe window and one step command are
    # not scans; everything else is published, the damaged and garbled reads included.
    assert len(scans) == 15, proc.stdout
    assert sum("unknown" in line for line in scans) == 1
    assert sum("invalid GTIN check digit" in line for line in scans) == 1
    assert any("ship-01 is now transfer" in line for line in proc.stdout.splitlines())
    # EPCIS: the pallet and the lot read at ship-01 before its step changed are bound.
    epcis = [line for line in proc.stdout.splitlines() if "  epcis  " in line]
    assert any("ObjectEvent" in line and "OBSERVE receiving" in line for line in epcis), proc.stdout
    packed = [line for line in epcis if "AggregationEvent ADD     packing" in line]
    assert len(packed) == 1, proc.stdout
    assert "https://id.gs1.org/00/195060001340000076 <- https://id.gs1.org/01/09506000134352/10/SUP1-" in packed[0]
    zpl = sorted((out / "labels").glob("*.zpl"))
    png = sorted((out / "labels").glob("*.png"))
    assert len(zpl) == 4 and len(png) == 4
    assert b"SUP3-" in zpl[-1].read_bytes()
    assert (out / "gatewayd.toml").exists()
    # The simulated WMS answers reads with accept and reject verdicts; the demo says where to look.
    verdicts = [line for line in proc.stdout.splitlines() if "  verdict  " in line]
    assert any(" accept: " in line for line in verdicts) and any(" reject: " in line for line in verdicts), verdicts
    assert sum("feedback ok:" in line for line in proc.stdout.splitlines()) == len(verdicts)
    assert re.search(r"station page http://127\.0\.0\.1:\d+/stations/dock-03", proc.stdout), proc.stdout


def test_demo_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    import signal
    import time

    out = tmp_path / "demo-out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gatewayd", "demo", "--speed", "5", "--out", str(out), "--http-port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (out / "labels" / "0001.zpl").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "demo did not print a label"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stdout + stderr
    assert "gateway demo-dock offline" in stdout


def test_the_demo_view_shows_a_gap_announcement(broker: LocalBroker) -> None:
    """A gatewayd.gap/1 event on P/scans/_gaps is not a scan (formerly a KeyError in the view)."""
    import io
    import json

    from gatewayd.demo.runner import WmsView

    out = io.StringIO()
    view = WmsView(port=broker.port, protocol=broker.protocol, root="gatewayd/demo-gw", out=out)
    try:
        assert view.ready.wait(10)
        gap = {"schema": "gatewayd.gap/1", "event_id": "e", "seq": 1001, "gateway": "demo-gw",
               "from_seq": 31, "to_seq": 1000, "reason": "outbox lost or damaged"}  # fmt: skip
        view.client.publish("gatewayd/demo-gw/scans/_gaps", json.dumps(gap), qos=1).wait_for_publish(5)
        wait_until(lambda: "gap" in out.getvalue(), what="the gap line")
        assert "seq 31..1000 will never come: outbox lost or damaged" in out.getvalue()
        assert view.scans == 0
    finally:
        view.close()
