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


def test_an_announced_gap_counts_as_filled() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("wms_subscriber", ROOT / "scripts" / "wms_subscriber.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    consumer = module.Consumer(prefix="gatewayd", group=None, from_seq=1)

    class Msg:
        def __init__(self, body: dict[str, object]) -> None:
            self.topic = "gatewayd/gw/scans/x"
            self.payload = json.dumps(body).encode()

    def scan(seq: int) -> Msg:
        return Msg({"schema": "gatewayd.scan/1", "event_id": f"e{seq}", "seq": seq, "gateway": "gw"})

    for seq in (1, 2, 3, 1002):
        consumer.on_message(None, None, scan(seq))
    assert consumer.gaps() == {"gw": [(4, 1001)]}
    gap = {"schema": "gatewayd.gap/1", "event_id": "g", "seq": 1001, "gateway": "gw",
           "from_seq": 4, "to_seq": 1000, "reason": "outbox lost or damaged"}  # fmt: skip
    consumer.on_message(None, None, Msg(gap))
    assert consumer.gaps() == {}
    consumer.on_message(None, None, Msg(gap))  # a redelivery changes nothing
    assert consumer.gaps() == {}
