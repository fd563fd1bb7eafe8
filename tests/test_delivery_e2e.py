"""End to end with the real daemon: pty scanner → gatewayd → mosquitto → subscriber.

Broker and gateway are killed with SIGKILL mid-stream; every captured read must arrive,
with ``seq`` complete, and redeliveries must carry the same ``event_id``.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from gatewayd.demo.local_broker import LocalBroker
from tests.mqtt_tools import (
    DaemonProcess,
    Subscriber,
    gateway_config,
    last_seq_in,
    start_daemon,
    undelivered_in,
    wait_online,
    wait_until,
    write_config,
)
from tests.pty_scanner import PtyScanner

P = "gatewayd/e2e-gw"


def config(tmp_path: Path, brokers: list[str], protocol: int, scanner: PtyScanner, **extra: str) -> Path:
    return gateway_config(
        tmp_path, brokers, scanner, gateway_id="e2e-gw", protocol=protocol, reconnect_max_s=0.5,
        outbox=extra.get("outbox", ""),
    )  # fmt: skip


def start(daemons: list[DaemonProcess], cfg: Path, tmp_path: Path, sub: Subscriber | None = None) -> DaemonProcess:
    since = len(sub.on(f"{P}/status")) if sub is not None else 0
    d = start_daemon(daemons, cfg, tmp_path)
    if sub is not None:
        wait_online(sub, d, root=P, since=since)
    return d


def scans(sub: Subscriber) -> list[dict[str, Any]]:
    return sub.payloads(f"{P}/scans/")


def is_replay(msg: Any) -> bool:
    props = msg.properties
    return bool(props is not None and ("replay", "1") in (getattr(props, "UserProperty", None) or []))


def fill_gaps(sub: Subscriber, last_seq: int) -> int:
    """Do what the example WMS subscriber does: find missing seqs and ask for a replay."""
    seen = {p["seq"] for p in scans(sub)}
    missing = sorted(set(range(1, last_seq + 1)) - seen)
    ranges: list[tuple[int, int]] = []
    for s in missing:
        if ranges and ranges[-1][1] == s - 1:
            ranges[-1] = (ranges[-1][0], s)
        else:
            ranges.append((s, s))
    for i, (a, b) in enumerate(ranges):
        # A WMS retries a request that got no answer (the subscriber's own publish can be
        # lost with a broker that dies under it).
        for attempt in range(5):
            tx = f"gap-{i}-{attempt}"
            sub.publish(f"{P}/request/replay", {"transaction": tx, "from_seq": a, "to_seq": b})
            try:
                wait_until(
                    lambda t=tx: sub.find(f"{P}/response/replay", lambda p: p.get("transaction") == t),
                    timeout=5,
                    what="replay response",
                )
                break
            except AssertionError:
                continue
    if ranges:
        wait_until(
            lambda: {p["seq"] for p in scans(sub)} >= set(range(1, last_seq + 1)), timeout=30, what="gaps filled"
        )
    return len(missing)


def check_stream(sub: Subscriber, last_seq: int, sent: set[str]) -> None:
    msgs = sub.on(f"{P}/scans/")
    by_seq: dict[int, dict[str, Any]] = {}
    live_order: list[int] = []
    for m in msgs:
        p = m.json()
        if p["seq"] in by_seq:
            assert by_seq[p["seq"]] == p, f"redelivery of seq {p['seq']} differs"
        else:
            by_seq[p["seq"]] = p
            if not is_replay(m):
                live_order.append(p["seq"])
    assert sorted(by_seq) == list(range(1, last_seq + 1))
    assert live_order == sorted(live_order), "live events arrived out of seq order"
    event_ids = {p["event_id"] for p in by_seq.values()}
    assert len(event_ids) == last_seq
    assert {p["raw"] for p in by_seq.values()} <= sent
    assert len({p["raw"] for p in by_seq.values()}) == last_seq, "one captured read published under two seqs"


def test_pty_scan_reaches_subscriber_and_shutdown_says_offline(
    broker: LocalBroker, tmp_path: Path, scanner: PtyScanner, daemons: list[DaemonProcess]
) -> None:
    cfg = config(tmp_path, [broker.url], broker.protocol, scanner)
    with Subscriber(broker.port, [f"{P}/#"], protocol=broker.protocol) as sub:
        d = start(daemons, cfg, tmp_path, sub)
        sub.wait_for(f"{P}/devices/dock-03-left/state", lambda p: p["state"] == "connected")
        scanner.write(b"]d2010950600013435210LOT-7\x1d17271200\r")
        scan = sub.wait_for(f"{P}/scans/dock-03")
        assert scan["kind"] == "gs1" and scan["symbology"] == "]d2"
        assert (scan["lot"], scan["expiry"], scan["errors"]) == ("LOT-7", "2027-12-31", [])
        assert scan["seq"] == 1 and scan["scanner"] == "dock-03-left"
        assert d.terminate() == 0
        status = sub.on(f"{P}/status")[-1].json()
        assert status["state"] == "offline"
    assert "Traceback" not in d.log()


def test_last_will_says_offline_when_gateway_dies(
    broker: LocalBroker, tmp_path: Path, scanner: PtyScanner, daemons: list[DaemonProcess]
) -> None:
    cfg = config(tmp_path, [broker.url], broker.protocol, scanner)
    with Subscriber(broker.port, [f"{P}/status"], protocol=broker.protocol) as sub:
        d = start(daemons, cfg, tmp_path, sub)
        d.kill9()
        sub.wait_for(f"{P}/status", lambda p: p["state"] == "offline")


def stream(scanner: PtyScanner, start: int, count: int, sent: set[str], *, gap_s: float = 0.0) -> threading.Thread:
    """Write ``count`` reads from a thread; ``gap_s`` between them (none: as fast as the pty takes them)."""

    def run() -> None:
        for i in range(start, start + count):
            data = f"SUP1-20261127-{i:06d}"
            sent.add(data)
            try:
                scanner.write(data.encode() + b"\r")
            except OSError:
                return  # the scanner was unplugged under the writer: the stream ends there
            if gap_s:
                time.sleep(gap_s)  # pacing a scanner, not waiting for a condition

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_broker_killed_repeatedly_during_stream(
    tmp_path: Path, scanner: PtyScanner, daemons: list[DaemonProcess]
) -> None:
    total = 3000
    with LocalBroker(workdir=tmp_path / "broker") as broker:
        cfg = config(tmp_path, [broker.url], broker.protocol, scanner)
        sub = Subscriber(broker.port, [f"{P}/#"], protocol=broker.protocol, client_id="wms-e2e")
        sub.client.reconnect_delay_set(0.05, 0.2)
        with sub:
            start(daemons, cfg, tmp_path, sub)
            sub.wait_for(f"{P}/devices/dock-03-left/state", lambda p: p["state"] == "connected")
            sent: set[str] = set()
            # Paced, so the stream outlasts the three broker restarts: the gateway captures
            # and drains 3,000 reads in about a second, faster than the subscriber
            # resubscribes to a restarted broker, and a stream that ended before the
            # restart would leave no live read to make progress with.
            writer = stream(scanner, 0, total, sent, gap_s=0.003)
            for round_ in range(3):
                wait_until(lambda r=round_: len(scans(sub)) >= (r + 1) * total // 5, timeout=60, what="progress")
                broker.kill()
                broker.start()
            writer.join(60)
            wait_until(lambda: last_seq_in(tmp_path) >= total, timeout=60, what="all reads captured")
            last = last_seq_in(tmp_path)
            wait_until(sub.client.is_connected, timeout=20, what="subscriber reconnected")
            # Events the broker acknowledged and then lost with its memory (including a
            # tail after the last seq seen: P/status and health report last_seq) are gaps
            # the subscriber fills by replay, exactly as a WMS would.
            wait_until(lambda: undelivered_in(tmp_path) == 0, timeout=60, what="outbox drained")
            fill_gaps(sub, last)
            assert last == total
            check_stream(sub, last, sent)


def test_gateway_killed_during_stream_loses_nothing_captured(
    broker: LocalBroker, tmp_path: Path, scanner: PtyScanner, daemons: list[DaemonProcess]
) -> None:
    cfg = config(tmp_path, [broker.url], broker.protocol, scanner)
    with Subscriber(broker.port, [f"{P}/#"], protocol=broker.protocol) as sub:
        d = start(daemons, cfg, tmp_path, sub)
        sub.wait_for(f"{P}/devices/dock-03-left/state", lambda p: p["state"] == "connected")
        sent: set[str] = set()
        writer = stream(scanner, 0, 1000, sent)
        wait_until(lambda: last_seq_in(tmp_path) >= 300, timeout=30, what="300 captured")
        d.kill9()
        writer.join(0.5)
        captured_before = last_seq_in(tmp_path)
        # Reads the scanner sent while the gateway was down were never captured: the
        # pty drops them with the last open file. Unplug and re-plug to start clean.
        scanner.unplug()
        scanner.plug()
        writer.join(30)
        seen = len(sub.on(f"{P}/devices/dock-03-left/state"))
        d2 = start(daemons, cfg, tmp_path, sub)
        # pyserial flushes the port's input when it opens it: write once it is open.
        wait_until(
            lambda: any(m.json()["state"] == "connected" for m in sub.on(f"{P}/devices/dock-03-left/state")[seen:]),
            timeout=20,
            what="scanner reopened",
        )
        writer2 = stream(scanner, 10_000, 500, sent)
        writer2.join(30)
        wait_until(lambda: last_seq_in(tmp_path) >= captured_before + 500, timeout=30, what="second stream captured")
        last = last_seq_in(tmp_path)
        wait_until(lambda: {p["seq"] for p in scans(sub)} >= set(range(1, last + 1)), timeout=30, what="all delivered")
        check_stream(sub, last, sent)
        assert d2.terminate() == 0


def test_tcp_scanner_and_cli_replay_through_the_daemon(
    broker: LocalBroker, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    """A network scanner connecting to the gateway (server mode), then `gatewayd outbox --replay`."""
    import socket
    import subprocess
    import sys

    from gatewayd.demo.local_broker import free_port
    from tests.mqtt_tools import ROOT

    port = free_port()
    cfg = write_config(
        tmp_path / "gatewayd.toml",
        f"""
[gateway]
id = "e2e-gw"
state_dir = "{tmp_path / "state"}"
[mqtt]
brokers = ["{broker.url}"]
protocol = {broker.protocol}
[[stations]]
id = "zone-a"
step = "transfer"
dedupe_ms = 0
[[scanners]]
id = "zone-a-cognex"
station = "zone-a"
driver = "tcp"
mode = "server"
host = "127.0.0.1"
port = {port}
terminator = "\\r\\n"
""",
    )
    with Subscriber(broker.port, [f"{P}/#"], protocol=broker.protocol) as sub:
        start(daemons, cfg, tmp_path, sub)
        conn = wait_until(lambda: _connect(socket, port), timeout=20, what="scanner port listening")
        with conn:
            conn.sendall(
                b"]d2010950600013435210LOT-A\x1d17271231\r\n]Q1https://id.gs1.org/01/09506000134352/10/LOT-B\r\n"
            )
            wait_until(lambda: len(scans(sub)) >= 2, timeout=20, what="two scans")
        first = scans(sub)
        assert [(s["kind"], s["lot"], s["step"]) for s in first] == [
            ("gs1", "LOT-A", "transfer"),
            ("digital_link", "LOT-B", "transfer"),
        ]
        result = subprocess.run(
            [sys.executable, "-m", "gatewayd", "outbox", "--config", str(cfg), "--replay", "1:2"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["data"]["count"] == 2
        wait_until(lambda: len(scans(sub)) >= 4, timeout=20, what="replayed scans")
        assert scans(sub)[2:] == first


def _connect(socket: Any, port: int) -> Any:
    try:
        return socket.create_connection(("127.0.0.1", port), timeout=1)
    except OSError:
        return None


def test_scanner_unplugged_and_replugged_needs_nothing(
    broker: LocalBroker, tmp_path: Path, scanner: PtyScanner, daemons: list[DaemonProcess]
) -> None:
    """USERS: a scanner cable pulled and pushed back: it recovers, nothing to do."""
    cfg = config(tmp_path, [broker.url], broker.protocol, scanner)
    with Subscriber(broker.port, [f"{P}/#"], protocol=broker.protocol) as sub:
        d = start(daemons, cfg, tmp_path, sub)
        sub.wait_for(f"{P}/devices/dock-03-left/state", lambda p: p["state"] == "connected")
        scanner.write(b"BEFORE-1\r")
        sub.wait_for(f"{P}/scans/", lambda p: p["raw"] == "BEFORE-1")
        scanner.unplug()
        gone = sub.wait_for(f"{P}/devices/dock-03-left/state", lambda p: p["state"] == "disconnected")
        assert "scanner.tty" in gone["detail"]
        seen = len(sub.on(f"{P}/devices/dock-03-left/state"))
        scanner.plug()
        wait_until(
            lambda: any(m.json()["state"] == "connected" for m in sub.on(f"{P}/devices/dock-03-left/state")[seen:]),
            timeout=30,
            what="scanner reconnected",
        )
        scanner.write(b"AFTER-1\r")
        after = sub.wait_for(f"{P}/scans/", lambda p: p["raw"] == "AFTER-1")
        assert after["seq"] == 2
        assert d.alive()
    assert "Traceback" not in d.log()


def test_backlog_survives_kill9_while_the_broker_is_down(
    broker: LocalBroker, tmp_path: Path, scanner: PtyScanner, daemons: list[DaemonProcess]
) -> None:
    cfg = config(tmp_path, [broker.url], broker.protocol, scanner)
    broker.kill()
    d = start(daemons, cfg, tmp_path)
    wait_until(lambda: "dock-03-left: connected" in d.log(), timeout=20, what="scanner open")
    sent: set[str] = set()
    stream(scanner, 0, 200, sent).join(30)
    wait_until(lambda: last_seq_in(tmp_path) == 200, timeout=30, what="200 reads captured offline")
    d.kill9()
    broker.start()
    with Subscriber(broker.port, [f"{P}/#"], protocol=broker.protocol) as sub:
        start(daemons, cfg, tmp_path, sub)
        wait_until(lambda: len({p["seq"] for p in scans(sub)}) == 200, timeout=30, what="backlog delivered")
        check_stream(sub, 200, sent)
