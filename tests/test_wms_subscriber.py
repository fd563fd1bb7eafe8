"""The example WMS subscriber fills the gap of events published before it subscribed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from gatewayd.demo.local_broker import LocalBroker
from tests.mqtt_tools import ROOT, DaemonProcess, Subscriber, last_seq_in, undelivered_in, wait_until
from tests.pty_scanner import PtyScanner
from tests.test_delivery_e2e import P, config


def test_late_subscriber_replays_what_it_missed(broker: LocalBroker, tmp_path: Path) -> None:
    if broker.protocol != 5:
        import pytest

        pytest.skip("the example subscriber uses MQTT 5; this machine's broker is amqtt (MQTT 3.1.1)")
    scanner = PtyScanner(tmp_path)
    daemon = DaemonProcess(config(tmp_path, [broker.url], broker.protocol, scanner), tmp_path)
    try:
        with Subscriber(broker.port, [f"{P}/#"], protocol=broker.protocol) as sub:
            daemon.start()
            sub.wait_for(f"{P}/devices/dock-03-left/state", lambda p: p["state"] == "connected", timeout=20)
            for i in range(40):
                scanner.write(f"LOT-{i:04d}\r".encode())
            wait_until(lambda: last_seq_in(tmp_path) == 40 and undelivered_in(tmp_path) == 0, timeout=20,
                       what="40 reads delivered")
        # Nobody was subscribed for the WMS: those 40 events are gone from the broker.
        proc = subprocess.run(
            [sys.executable, "scripts/wms_subscriber.py", "--broker", broker.url, "--from-seq", "1",
             "--until-complete", "--run-for", "30"],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        )
        assert proc.returncode == 0, proc.stderr
        events = [json.loads(line) for line in proc.stdout.splitlines()]
        assert sorted(e["seq"] for e in events) == list(range(1, 41))
        assert len({e["event_id"] for e in events}) == 40
        assert "replay requested" in proc.stderr
    finally:
        daemon.stop()
        scanner.close()
