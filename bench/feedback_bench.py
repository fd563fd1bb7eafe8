"""Station feedback: MQTT feedback request → the tower light's byte, → the station page's event;
and the daemon's idle RSS with the HTTP server on.

    .venv/bin/python bench/feedback_bench.py [--requests 300]

One local mosquitto, the real ``gatewayd run`` as a subprocess with a ``tower-serial``
indicator on a pseudo-terminal and ``[http]`` on; this process plays the WMS (paho), the
light (it reads the pty's master side) and a station page (a raw server-sent-events
reader on ``/stations/dock-03/events``), all on one clock. Requests alternate reject and
accept, one at a time:

* light: the request handed to the client library → the lamp-on byte (0x11 red, 0x14
  green) arriving on the pty;
* page: the same request → its ``verdict`` event arriving on the event stream.

Idle RSS is read from /proc after the gateway is online and a page has connected, before
the requests. Prints a markdown table and writes it to bench/feedback_results.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tty
from pathlib import Path

import paho.mqtt.client as paho
from harness import _status_kb, machine, percentile, stop
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gatewayd.demo.local_broker import LocalBroker  # noqa: E402

RED_ON, GREEN_ON = 0x11, 0x14


class Light:
    """The pty master: timestamps every lamp-on byte the gateway writes."""

    def __init__(self, workdir: Path) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = workdir / "tower.tty"
        self.path.symlink_to(os.ttyname(self.slave))
        self.on: dict[int, list[int]] = {RED_ON: [], GREEN_ON: []}
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            select.select([self.master], [], [])
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            now = time.perf_counter_ns()
            with self.changed:
                for b in data:
                    if b in self.on:
                        self.on[b].append(now)
                self.changed.notify_all()

    def wait(self, byte: int, count: int, timeout: float = 10.0) -> int:
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.on[byte]) >= count, timeout):
                raise TimeoutError(f"light: byte {byte:#04x} not written within {timeout} s")
            return self.on[byte][count - 1]


class Page:
    """A station page's event stream, read raw: timestamps every ``verdict`` event."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(b"GET /stations/dock-03/events HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n")
        self.verdicts: list[tuple[int, str]] = []
        self.connected = threading.Event()
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buf = b""
        while chunk := self.sock.recv(65536):
            now = time.perf_counter_ns()
            buf += chunk
            if b"event: snapshot" in buf:
                self.connected.set()
            while b"\n\n" in buf:
                event, buf = buf.split(b"\n\n", 1)
                if b"event: verdict" in event:
                    data = json.loads(event.split(b"data: ", 1)[1].split(b"\n", 1)[0])
                    with self.changed:
                        self.verdicts.append((now, data["verdict"]))
                        self.changed.notify_all()

    def wait(self, count: int, timeout: float = 10.0) -> tuple[int, str]:
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.verdicts) >= count, timeout):
                raise TimeoutError("page: no verdict event")
            return self.verdicts[count - 1]


def in_process(requests: int, warmup: int) -> list[float]:
    """The gateway's own share: ``Feedback.handle`` → the lamp byte on a pty, no MQTT, no
    other process, in one event loop (ms)."""
    import asyncio

    from gatewayd.config import parse
    from gatewayd.feedback.service import Feedback

    async def run() -> list[float]:
        work = Path(tempfile.mkdtemp(prefix="gatewayd-feedback-inproc-"))
        light = Light(work)
        settings = parse({
            "gateway": {"id": "bench"},
            "stations": [{"id": "dock-03", "step": "receiving"}],
            "indicators": [{"id": "light", "station": "dock-03", "driver": "tower-serial", "port": str(light.path)}],
            "feedback": {"buzz_ms": 0, "accept_ms": 60000},
        })  # fmt: skip
        out: list[float] = []
        async with Feedback(settings) as fb:
            ind = fb.indicators["dock-03"][0]
            while not ind.connected:
                await asyncio.sleep(0.01)
            for i in range(warmup + requests):
                verdict, byte = ("reject", RED_ON) if i % 2 == 0 else ("accept", GREEN_ON)
                n = len(light.on[byte]) + 1
                sent = time.perf_counter_ns()
                fb.handle({"station": "dock-03", "verdict": verdict})
                while len(light.on[byte]) < n:
                    await asyncio.sleep(0)
                if i >= warmup:
                    out.append((light.on[byte][n - 1] - sent) / 1e6)
        return out

    return asyncio.run(run())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "feedback_results.md")
    args = parser.parse_args()
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="gatewayd-feedback-bench-"))
    light = Light(work)
    http_port = free_port()
    with LocalBroker(workdir=work / "broker") as broker:
        cfg = work / "gatewayd.toml"
        cfg.write_text(
            f"""
[gateway]
id = "bench"
state_dir = "{work / "state"}"
[mqtt]
brokers = ["{broker.url}"]
[[stations]]
id = "dock-03"
step = "receiving"
[[indicators]]
id = "light"
station = "dock-03"
driver = "tower-serial"
port = "{light.path}"
[feedback]
accept_ms = 60000
buzz_ms = 0
[http]
listen = "127.0.0.1:{http_port}"
"""
        )
        log = (work / "gatewayd.log").open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "gatewayd", "run", "--config", str(cfg)], stdout=log,
                                stderr=log, cwd=ROOT)  # fmt: skip
        ready = threading.Event()
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id="fb-bench", protocol=MQTTProtocolVersion.MQTTv5)

        def on_message(c: paho.Client, u: object, msg: paho.MQTTMessage) -> None:
            if msg.topic.endswith("/devices/light/state") and json.loads(msg.payload).get("state") == "connected":
                ready.set()

        client.on_message = on_message
        client.on_connect = lambda c, *a: c.subscribe("gatewayd/bench/devices/light/state", qos=1)
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        try:
            if not ready.wait(30):
                raise RuntimeError("gatewayd did not open the light")
            page = Page(http_port)
            if not page.connected.wait(10):
                raise RuntimeError("no event stream")
            time.sleep(3)  # settle: idle with one page connected
            rss_mb = _status_kb(proc.pid, "VmRSS") / 1024
            light_ms: list[float] = []
            page_ms: list[float] = []
            for i in range(args.warmup + args.requests):
                verdict, byte = ("reject", RED_ON) if i % 2 == 0 else ("accept", GREEN_ON)
                n_light = len(light.on[byte]) + 1
                n_page = len(page.verdicts) + 1
                body = json.dumps({"station": "dock-03", "verdict": verdict})
                sent = time.perf_counter_ns()
                client.publish("gatewayd/bench/request/feedback", body, qos=1)
                at_light = light.wait(byte, n_light)
                at_page, shown = page.wait(n_page)
                assert shown == verdict, (shown, verdict)
                if i >= args.warmup:
                    light_ms.append((at_light - sent) / 1e6)
                    page_ms.append((at_page - sent) / 1e6)
        finally:
            client.disconnect()
            client.loop_stop()
            stop(proc)
    light_ms.sort()
    page_ms.sort()
    own_ms = sorted(in_process(args.requests, args.warmup))

    def row(name: str, values: list[float], target: float) -> str:
        p99 = percentile(values, 99)
        met = "yes" if p99 <= target else "**no**"
        return (f"| {name} | {len(values)} | {percentile(values, 50):.2f} | {p99:.2f} | {values[-1]:.2f} "
                f"| p99 ≤ {target:g} ms | {met} |")  # fmt: skip

    text = f"""# gatewayd feedback benchmarks

Reproduce from the repository root: `.venv/bin/python bench/feedback_bench.py`

- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, total {time.monotonic() - started:.0f} s
- machine: {machine()}
- load average at the end (1, 5, 15 min): {", ".join(f"{x:.1f}" for x in os.getloadavg())} (a shared machine)
- the broker runs with `set_tcp_nodelay true` (as `gatewayd demo` and the tests start it): with
  mosquitto's default, Nagle's algorithm holds some requests until the gateway's delayed ACK,
  and the request → lamp p99 was 50-80 ms
- one local mosquitto, the real `gatewayd run` with a tower light on a pty and `[http]` on;
  requests alternate reject and accept, one at a time

| measure | runs | p50 ms | p99 ms | max ms | target | met |
|---|--:|--:|--:|--:|---|---|
{row("feedback request → lamp byte on the light's serial line", light_ms, 20)}
{row("feedback request → verdict event on the station page's stream", page_ms, 200)}
{row("in process, no MQTT: `Feedback.handle` → lamp byte (the gateway's own share)", own_ms, 20)}

| measure | result | target | met |
|---|--:|---|---|
| idle RSS, HTTP on, one station page connected | {rss_mb:.1f} MB | ≤ 60 MB | {"yes" if rss_mb <= 60 else "**no**"} |
"""
    print(text)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
