"""Print path: MQTT print request → first ZPL byte at the printer socket, and a 500-label batch.

    .venv/bin/python bench/print_bench.py [--requests 300] [--batch 500]

One local mosquitto, the real ``gatewayd run`` as a subprocess, and a raw port-9100
printer in this process that answers ``~HS`` as a ready Zebra at once (so the numbers are
the gateway's time, the printer's speed aside). The publisher and the printer share this
process's clock:

* single ``lot`` labels: one request at a time; latency = the printer socket receiving the
  label's ``^XA`` − the request being handed to the client library;
* a batch of N labels (``batch`` with lot ids by the lot-number convention): request →
  the last byte of the last label.

Prints a markdown table and writes it to bench/print_results.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
from harness import machine, median, percentile, stop
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gatewayd.demo.local_broker import LocalBroker  # noqa: E402
from gatewayd.demo.virtual_printer import READY_HS  # noqa: E402


class Printer:
    """A threaded raw printer: answers ~HS, timestamps each ^XA and counts ^XZ."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.starts: list[int] = []  # perf_counter_ns of each ^XA
        self.ends: list[int] = []  # perf_counter_ns of each ^XZ
        self.changed = threading.Condition()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            conn, _ = self.sock.accept()
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        tail = b""
        with conn:
            while chunk := conn.recv(65536):
                now = time.perf_counter_ns()
                data = tail + chunk
                answers = data.count(b"~HS") - tail.count(b"~HS")
                with self.changed:
                    self.starts.extend([now] * (data.count(b"^XA") - tail.count(b"^XA")))
                    self.ends.extend([now] * (data.count(b"^XZ") - tail.count(b"^XZ")))
                    self.changed.notify_all()
                if answers:
                    conn.sendall(READY_HS * answers)
                tail = data[-3:]

    def wait(self, ends: int, timeout: float = 60.0) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.ends) >= ends, timeout):
                raise TimeoutError(f"printer: {len(self.ends)} of {ends} labels after {timeout} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "print_results.md")
    args = parser.parse_args()
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="gatewayd-print-bench-"))
    printer = Printer()
    import subprocess

    with LocalBroker(workdir=work / "broker") as broker:
        cfg = work / "gatewayd.toml"
        cfg.write_text(
            f"""
[gateway]
id = "bench"
state_dir = "{work / "state"}"
[mqtt]
brokers = ["{broker.url}"]
[labels]
max_batch = 5000
[[stations]]
id = "dock-03"
step = "receiving"
[[printers]]
id = "zebra"
driver = "zpl"
transport = "tcp://127.0.0.1:{printer.port}"
"""
        )
        log = (work / "gatewayd.log").open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "gatewayd", "run", "--config", str(cfg)], stdout=log,
                                stderr=log, cwd=ROOT)  # fmt: skip
        online = threading.Event()
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id="print-bench", protocol=MQTTProtocolVersion.MQTTv5)

        def on_message(c: paho.Client, u: object, msg: paho.MQTTMessage) -> None:
            if msg.topic.endswith("/status") and json.loads(msg.payload).get("state") == "online":
                online.set()

        client.on_message = on_message
        client.on_connect = lambda c, *a: c.subscribe("gatewayd/bench/status", qos=1)
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        try:
            if not online.wait(30):
                raise RuntimeError("gatewayd did not come online")
            label = {"gtin": "09506000134352", "expiry": "2027-12-31", "qty": 40, "supplier": "SUP1"}
            latencies: list[float] = []
            for i in range(args.warmup + args.requests):
                body = {"job_id": f"L-{i}", "printer": "zebra", "labels": [dict(label, lot=f"SUP1-20261127-{i:04d}")]}
                count = len(printer.starts)
                sent = time.perf_counter_ns()
                client.publish("gatewayd/bench/request/print", json.dumps(body), qos=1)
                printer.wait(count + 1)
                if i >= args.warmup:
                    latencies.append((printer.starts[count] - sent) / 1e6)
            batch_times: list[float] = []
            for b in range(args.batches):
                count = len(printer.ends)
                body = {"job_id": f"B-{b}", "printer": "zebra",
                        "batch": {"count": args.batch, "supplier": f"SUP{b}", "date": "2026-11-27",
                                  "gtin": "09506000134352", "expiry": "2027-12-31"}}  # fmt: skip
                sent = time.perf_counter_ns()
                client.publish("gatewayd/bench/request/print", json.dumps(body), qos=1)
                printer.wait(count + args.batch, timeout=120)
                batch_times.append((printer.ends[count + args.batch - 1] - sent) / 1e9)
        finally:
            client.disconnect()
            client.loop_stop()
            stop(proc)
    latencies.sort()
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    batch_median = median(batch_times)
    met1 = "yes" if p99 <= 20 else "**no**"
    met2 = "yes" if batch_median <= 2 else "**no**"
    row1 = (
        f"| print request → first ZPL byte, one `lot` label (ms) | {len(latencies)} | {p50:.2f} | {p99:.2f} "
        f"| {latencies[-1]:.2f} | p99 ≤ 20 ms | {met1} |"
    )
    row2 = (
        f"| {args.batch}-label batch, request → last byte (s) | {len(batch_times)} | {batch_median:.2f} (median) "
        f"| – | {max(batch_times):.2f} | ≤ 2 s | {met2} |"
    )
    text = f"""# gatewayd print benchmarks

Reproduce from the repository root: `.venv/bin/python bench/print_bench.py`

- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, total {time.monotonic() - started:.0f} s
- machine: {machine()}
- one local mosquitto, the real `gatewayd run`, a raw 9100 printer in the bench process answering `~HS` at once

| measure | runs | p50 | p99 | max | target | met |
|---|--:|--:|--:|--:|---|---|
{row1}
{row2}

Each label is sent after a `~HS` status answer (the gateway checks the printer before every
label so that a paper-out stops a batch at once); the printer here answers immediately.
"""
    print(text)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
