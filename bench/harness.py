"""What every benchmark shares: the pty scanner, the recording subscriber, process stats.

Every peer is measured with the same pieces: reads are written to the master side of one
pseudo-terminal (the peer opens the slave side as its serial port) and one paho
subscriber in this process timestamps each message on arrival. Reads carry a sequence
number (``B`` and nine digits, in the GS1 serial AI 21) that survives every peer's
framing and payload format, so a single regular expression finds it in a raw read
(naive bridge, Node-RED) and in a gatewayd scan event alike.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import signal
import subprocess
import termios
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

SEQ_RE = re.compile(rb"21B(\d{9})")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def scan(seq: int) -> bytes:
    """One CR-terminated read: a GS1 element string (GTIN, expiry, lot, serial) as a
    fixed-mount scanner sends it with its AIM prefix; the serial carries ``seq``."""
    return b"]d2" + b"0109506000134352" + b"17271231" + b"10LOT42\x1d" + b"21B%09d\r" % seq


# ---------------------------------------------------------------------------------------
# The scanner


class Pty:
    """A serial scanner played through a pseudo-terminal; peers open ``path`` (a symlink)."""

    def __init__(self, workdir: Path, name: str = "scanner") -> None:
        self.path = workdir / f"{name}.tty"
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        attrs = termios.tcgetattr(self.slave)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(self.slave, termios.TCSANOW, attrs)
        # The slave stays open here too, so the master never sees a hang-up between peers.
        if self.path.is_symlink():
            self.path.unlink()
        self.path.symlink_to(os.ttyname(self.slave))

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.master, view)
            view = view[n:]

    def close(self) -> None:
        if self.path.is_symlink():
            self.path.unlink()
        for fd in (self.master, self.slave):
            os.close(fd)


# ---------------------------------------------------------------------------------------
# The subscriber


class Subscriber:
    """A paho subscriber (MQTT 5, QoS 1) that timestamps every read it can find a seq in.

    ``expect(seq)`` returns an event set when that read arrives; ``arrivals`` maps each seq
    to the ``perf_counter_ns`` of its first arrival; ``duplicates`` counts the others.
    Messages without a seq go to ``on_other(topic, payload, perf_counter_ns)``.
    """

    def __init__(
        self,
        port: int,
        topic: str,
        *,
        username: str | None = None,
        password: str | None = None,
        on_other: Callable[[str, bytes, int], None] | None = None,
    ) -> None:
        self.port = port
        self.topic = topic
        self.on_other = on_other
        self.arrivals: dict[int, int] = {}
        self.duplicates = 0
        self.other = 0  # messages without a seq (status, device state)
        self.first_ns: int | None = None
        self.last_ns: int | None = None
        self._waiting: dict[int, threading.Event] = {}
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"bench-sub-{os.getpid()}-{id(self):x}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = lambda c, *_: c.subscribe(self.topic, qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        now = time.perf_counter_ns()
        found = SEQ_RE.search(msg.payload)
        if found is None:
            self.other += 1
            if self.on_other is not None:
                self.on_other(msg.topic, bytes(msg.payload), now)
            return
        seq = int(found.group(1))
        with self._lock:
            if seq in self.arrivals:
                self.duplicates += 1
                return
            self.arrivals[seq] = now
            if self.first_ns is None:
                self.first_ns = now
            self.last_ns = now
            event = self._waiting.pop(seq, None)
        if event is not None:
            event.set()

    def expect(self, seq: int) -> threading.Event:
        event = threading.Event()
        with self._lock:
            if seq in self.arrivals:
                event.set()
            else:
                self._waiting[seq] = event
        return event

    @property
    def received(self) -> int:
        return len(self.arrivals)

    def __enter__(self) -> Subscriber:
        self.client.connect("127.0.0.1", self.port, keepalive=30)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError(f"subscriber: no SUBACK from the broker on port {self.port}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# ---------------------------------------------------------------------------------------
# Processes


@dataclass(frozen=True)
class Usage:
    rss_mb: float  # VmRSS at the end of the window
    hwm_mb: float  # VmHWM: the peak RSS since the process started
    cpu_percent: float  # of one core, over the window


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def _cpu_ticks(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14 and 15 of stat)


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def idle_usage(pids: list[int], seconds: float) -> tuple[list[Usage], float]:
    """CPU of each process over one common idle window of ``seconds``, and its RSS at the
    end; also how busy the whole machine was meanwhile (percent of all cores), which tells
    whether anything else was running during the benchmark."""
    ticks, machine_before, start = [_cpu_ticks(pid) for pid in pids], _machine_ticks(), time.monotonic()
    time.sleep(seconds)
    wall = time.monotonic() - start
    busy, total = (after - before for after, before in zip(_machine_ticks(), machine_before, strict=True))
    usage = [
        Usage(
            rss_mb=_status_kb(pid, "VmRSS") / 1024,
            hwm_mb=_status_kb(pid, "VmHWM") / 1024,
            cpu_percent=100.0 * (_cpu_ticks(pid) - before) / CLOCK_TICKS / wall,
        )
        for pid, before in zip(pids, ticks, strict=True)
    ]
    return usage, 100.0 * busy / max(total, 1)


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> int:
    """SIGTERM, then SIGKILL if it does not end in ``timeout`` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    return int(proc.returncode)


def wait_for(predicate: Callable[[], object], *, timeout: float, what: str, interval: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------------------------------
# Numbers and the machine


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, round(p / 100 * len(sorted_values) + 0.5 - 1e-9))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def median(values: list[float]) -> float:
    return percentile(sorted(values), 50)


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _ram_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return float("nan")


def _version(cmd: list[str]) -> str | None:
    if shutil.which(cmd[0]) is None and not Path(cmd[0]).exists():
        return None
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return None
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else None


def machine() -> str:
    """One line: cores, CPU model, RAM, kernel, Python, broker and Node versions."""
    nproc = len(os.sched_getaffinity(0))
    mosquitto = _version(["/usr/sbin/mosquitto", "-h"]) or "mosquitto ?"
    node = _version(["node", "--version"])
    parts = [
        f"nproc {nproc}",
        _cpu_model(),
        f"{_ram_gib():.1f} GiB RAM",
        f"Linux {platform.release()}",
        f"Python {platform.python_version()}",
        mosquitto.replace(" is an MQTT v5.0/v3.1.1/v3.1 broker.", ""),
    ]
    if node:
        parts.append(f"Node.js {node}")
    return ", ".join(parts)
