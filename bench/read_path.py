"""Where a read's time goes inside gatewayd: each step of the read path, timed alone.

    .venv/bin/python bench/read_path.py [--reads 3000] [--fsync-delay-ms 0]

Runs each step the daemon runs for one read (framing the bytes, decode and tag, the
repeat check, building the payload, the outbox capture, the live record written before a
live read is published, the publish to a local mosquitto) in this process, ``--reads``
times, and prints the median and p99 of each in µs, as markdown: each step hot, in a
loop (bench/read_timeline.py shows the running daemon, caches cold between reads). The
outbox commit is timed two ways: as the daemon commits now (the WAL fsync runs beside
the publish, :meth:`Outbox.sync`, timed on its own row) and as it did before (``PRAGMA
synchronous=FULL``: the commit waits for the fsync). What this leaves out (the pty and
pyserial, the event loop's turns, the broker and the subscriber) is the difference to
bench/run.py's end-to-end latency. ``--fsync-delay-ms`` needs the process started under
the slow-fsync shim (bench/run.py builds it): it only labels the output.
"""

from __future__ import annotations

import argparse
import platform
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as paho
from harness import median, percentile

from gatewayd.config import OutboxSettings, parse
from gatewayd.delivery.outbox import LiveRecord, Outbox
from gatewayd.demo.local_broker import LocalBroker
from gatewayd.payloads import json_bytes
from gatewayd.reads.decode import DecodeOptions
from gatewayd.reads.scan_event import ScanEvent, scan_event
from gatewayd.reads.stations import Stations
from gatewayd_drivers.base import RawRead
from gatewayd_drivers.framing import Framer

SETTINGS = parse({
    "gateway": {"id": "dock-pi-03"},
    "stations": [{"id": "dock-03", "step": "receiving", "location": "urn:epc:id:sgln:9506000134352.0.3"}],
})  # fmt: skip
READ = b"]C1010950600013435210ABC123\x1d17271231"


def timed(fn: Callable[[int], object], n: int) -> list[float]:
    out = []
    for i in range(n):
        t = time.perf_counter_ns()
        fn(i)
        out.append((time.perf_counter_ns() - t) / 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reads", type=int, default=3000)
    parser.add_argument("--fsync-delay-ms", type=float, default=0.0, help="label only: the shim's delay")
    args = parser.parse_args()
    n = args.reads
    stations = Stations(SETTINGS)
    options = DecodeOptions.from_settings(SETTINGS.decode)
    rows: list[tuple[str, list[float]]] = []

    framer = Framer()
    rows.append(("framing (Framer.feed)", timed(lambda i: framer.feed(READ + b"\r"), n)))

    def decode(i: int) -> ScanEvent:
        result = scan_event(
            RawRead(READ, device="dock-03-left"), settings=SETTINGS, station=stations["dock-03"],
            scanner="dock-03-left", clock_synced=True, step_command=stations.step_command, options=options,
        )  # fmt: skip
        assert isinstance(result, ScanEvent)
        return result

    rows.append(("decode and tag (scan_event)", timed(decode, n)))
    rows.append(("repeat check (Stations.is_repeat)", timed(lambda i: stations.is_repeat("dock-03", READ, i), n)))
    event = decode(0)
    rows.append(("payload (body + JSON)", timed(lambda i: json_bytes(event.body(i, "0193")), n)))

    with tempfile.TemporaryDirectory() as tmp:
        box = Outbox.open(Path(tmp) / "now" / "outbox.sqlite3", OutboxSettings())

        def build(seq: int, eid: str) -> bytes:
            return json_bytes(event.body(seq, eid))

        rows.append(("outbox capture: check, seq, event_id, payload, commit (no fsync)",
                     timed(lambda i: box.capture(topic="t", build=build), n)))  # fmt: skip
        record = LiveRecord(Path(tmp) / "seq.live")
        live = box.capture(topic="gatewayd/dock-pi-03/scans/dock-03", build=build)
        rows.append(("live record (LiveRecord.write, before the publish)", timed(lambda i: record.write(live), n)))
        record.close()
        syncs = []
        for _ in range(min(n, 300)):
            box.capture(topic="t", build=build)
            t = time.perf_counter_ns()
            box.sync()
            syncs.append((time.perf_counter_ns() - t) / 1000)
        rows.append(("WAL fsync (Outbox.sync, beside the publish)", syncs))
        box.close()
        old = Outbox.open(Path(tmp) / "old" / "outbox.sqlite3", OutboxSettings())
        old.db.execute("PRAGMA synchronous=FULL")
        rows.append(("outbox commit, as before (synchronous=FULL)",
                     timed(lambda i: old.capture(topic="t", build=build), min(n, 300))))  # fmt: skip
        old.close()

        with LocalBroker(workdir=Path(tmp) / "broker") as broker:
            acked = threading.Event()
            client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
            client.on_connect = lambda *a: acked.set()
            client.connect("127.0.0.1", broker.port)
            client.loop_start()
            acked.wait(10)
            payload = build(1, "0193")

            def publish(i: int) -> None:
                client.publish("bench/read_path", payload, qos=1)

            rows.append(("publish (paho, QoS 1, to the socket)", timed(publish, n)))
            client.loop_stop()
            client.disconnect()

    slow = f", every fsync +{args.fsync_delay_ms:g} ms" if args.fsync_delay_ms else ""
    print(f"# Read path, {n:,} reads; {platform.machine()}, Python {platform.python_version()}, "
          f"SQLite {sqlite3.sqlite_version}{slow}")  # fmt: skip
    print()
    print("| step | median µs | p99 µs |")
    print("|---|--:|--:|")
    for label, xs in rows:
        print(f"| {label} | {median(xs):,.1f} | {percentile(sorted(xs), 99):,.1f} |")


if __name__ == "__main__":
    main()
