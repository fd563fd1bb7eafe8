"""Test helpers: a recording MQTT subscriber and the real daemon as a subprocess."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

ROOT = Path(__file__).resolve().parent.parent


def wait_until(
    predicate: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.01, what: str = "condition"
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


class Received:
    __slots__ = ("payload", "properties", "retain", "topic")

    def __init__(self, topic: str, payload: bytes, retain: bool, properties: Any) -> None:
        self.topic = topic
        self.payload = payload
        self.retain = retain
        self.properties = properties

    def json(self) -> Any:
        return json.loads(self.payload)


class Subscriber:
    """A WMS stand-in: subscribes, records every message, and can publish requests."""

    def __init__(self, port: int, topics: list[str], *, protocol: int = 5, client_id: str | None = None) -> None:
        self.port = port
        self.topics = topics
        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-sub-{os.getpid()}-{id(self)}",
            protocol=MQTTProtocolVersion.MQTTv5 if protocol == 5 else MQTTProtocolVersion.MQTTv311,
        )
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._subscribed.set()

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        for t in self.topics:
            client.subscribe(t, qos=1)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(
                Received(msg.topic, bytes(msg.payload), bool(msg.retain), getattr(msg, "properties", None))
            )

    def __enter__(self) -> Subscriber:
        self.client.connect("127.0.0.1", self.port, keepalive=10)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise AssertionError("subscriber: no SUBACK within 10 s")
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def on(self, topic_prefix: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if m.topic.startswith(topic_prefix)]

    def payloads(self, topic_prefix: str) -> list[Any]:
        return [m.json() for m in self.on(topic_prefix)]

    def find(self, topic_prefix: str, predicate: Callable[[Any], bool] = lambda p: True) -> Any:
        for p in self.payloads(topic_prefix):
            if predicate(p):
                return p
        return None

    def wait_for(
        self, topic_prefix: str, predicate: Callable[[Any], bool] = lambda p: True, *, timeout: float = 15.0
    ) -> Any:
        """Blocking wait (for tests whose gateway runs in another process)."""
        return wait_until(
            lambda: self.find(topic_prefix, predicate), timeout=timeout, what=f"a message on {topic_prefix}"
        )

    async def await_for(
        self, topic_prefix: str, predicate: Callable[[Any], bool] = lambda p: True, *, timeout: float = 15.0
    ) -> Any:
        """Non-blocking wait (for tests whose gateway runs in this event loop)."""
        import asyncio

        deadline = time.monotonic() + timeout
        while (found := self.find(topic_prefix, predicate)) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g} s waiting for a message on {topic_prefix}")
            await asyncio.sleep(0.01)
        return found

    async def apublish(self, topic: str, payload: Any, **kwargs: Any) -> None:
        import asyncio

        data = payload if isinstance(payload, bytes | str) else json.dumps(payload)
        info = self.client.publish(topic, data, qos=1, **kwargs)
        deadline = time.monotonic() + 5
        while not info.is_published() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    def publish(self, topic: str, payload: Any, **kwargs: Any) -> None:
        data = payload if isinstance(payload, bytes | str) else json.dumps(payload)
        self.client.publish(topic, data, qos=1, **kwargs).wait_for_publish(5)


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


class DaemonProcess:
    """The real ``gatewayd run`` in a subprocess, logging to a file."""

    def __init__(self, config: Path, workdir: Path, *, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.log_path = workdir / "gatewayd.log"
        # PYTHONFAULTHANDLER: a daemon that hangs is sent SIGABRT, which dumps every thread.
        self.env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1", **(env or {}))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> DaemonProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gatewayd", "run", "--config", str(self.config)],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            env=self.env,
            cwd=ROOT,
            start_new_session=True,
        )
        log.close()
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 15.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)  # the faulthandler writes where it hangs
            self.proc.wait(timeout=10)
            raise AssertionError(f"gatewayd did not stop within {timeout:g} s of SIGTERM:\n{self.log()}") from None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def gateway_config(
    tmp_path: Path,
    brokers: list[str],
    scanner: Any,
    *,
    gateway_id: str,
    protocol: int = 5,
    reconnect_max_s: float = 0.3,
    mqtt: str = "",
    outbox: str = "",
    scanner_keys: str = "",
    name: str = "gatewayd.toml",
) -> Path:
    """A one-station, one-pty-scanner gateway with fast reconnects and no dedupe;
    ``scanner_keys`` are more keys for the scanner's table (TOML lines)."""
    brokers_toml = ", ".join(json.dumps(b) for b in brokers)
    return write_config(
        tmp_path / name,
        f"""
[gateway]
id = "{gateway_id}"
state_dir = "{tmp_path / "state"}"

[mqtt]
brokers = [{brokers_toml}]
protocol = {protocol}
keepalive = 5
reconnect_min_s = 0.1
reconnect_max_s = {reconnect_max_s}
{mqtt}

[outbox]
drain_rate = 0
{outbox}

[[stations]]
id = "dock-03"
step = "receiving"
dedupe_ms = 0

[[scanners]]
id = "dock-03-left"
station = "dock-03"
driver = "serial"
port = "{scanner.path}"
char_timeout_ms = 0
{scanner_keys}
""",
    )


def start_daemon(daemons: list[DaemonProcess], cfg: Path, tmp_path: Path) -> DaemonProcess:
    """Start ``gatewayd run`` and register it with the ``daemons`` fixture for cleanup."""
    d = DaemonProcess(cfg, tmp_path).start()
    daemons.append(d)
    return d


def wait_online(sub: Subscriber, d: DaemonProcess, *, root: str, since: int = 0) -> None:
    """Wait for an ``online`` status after the first ``since`` status messages."""
    wait_until(
        lambda: any(m.json()["state"] == "online" for m in sub.on(f"{root}/status")[since:]) or not d.alive(),
        timeout=20,
        what="gateway online",
    )
    assert d.alive(), d.log()


def last_seq_in(tmp_path: Path) -> int:
    """The last captured seq, straight from the outbox file under ``tmp_path/state``."""
    with sqlite3.connect(tmp_path / "state" / "outbox.sqlite3") as db:
        return int(db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])


def undelivered_in(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / "state" / "outbox.sqlite3") as db:
        return int(db.execute("SELECT count(*) FROM events WHERE delivered_at IS NULL").fetchone()[0])
