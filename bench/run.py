"""gatewayd against its peers, on one machine, with one pty scanner and one local mosquitto.

    .venv/bin/python bench/run.py [--reads 2000] [--drain-events 100000] [--no-node-red] [--fsync-delay-ms 5]

Measures, and prints as markdown (also written to bench/results.md):

* scan → subscriber latency (p50/p90/p99/max) of gatewayd (synchronous=full and normal,
  and full on a slow disk: every fsync 5 ms longer, as on an SD card, through the
  LD_PRELOAD shim bench/slow_fsync.c compiled with the system's cc), the naive
  pyserial + paho bridge (bench/naive_bridge.py) and Node-RED 4
  (bench/node-red/flow.json);
* idle RSS and CPU of each, and the time from process start to the first read delivered;
* gatewayd's time from process start to its retained ``online`` status;
* gatewayd's capture throughput with the broker down, and the drain rate of the resulting
  backlog once the broker takes the gateway, with ``drain_rate = 0`` and the default.

See bench/README.md for the method.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import itertools
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness import (
    Pty,
    Subscriber,
    Usage,
    idle_usage,
    machine,
    median,
    percentile,
    scan,
    stop,
    wait_for,
)

from gatewayd.config import OutboxSettings
from gatewayd.demo.local_broker import LocalBroker, free_port

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
NODE_RED_DIR = BENCH / ".node-red"
NODE_RED_JS = NODE_RED_DIR / "node_modules" / "node-red" / "red.js"
GATEWAY_ID = "bench-gw"  # each gatewayd peer gets its own id (and so MQTT client id and topics)
DEFAULT_DRAIN_RATE = OutboxSettings().drain_rate

# Targets from the benchmark issue.
GIVE_UP_AFTER = 5  # a peer that loses this many reads in a row is dropped from the run
ROUND_WARMUP = 5  # reads before each round of a peer, not counted: the others ran meanwhile

BUSY_PERCENT = 5.0  # flagged in the report: the machine busier than this (% of all cores) while the peers idle

TARGET_P50_FACTOR = 1.5  # gatewayd p50 at most this many times the naive bridge's
TARGET_P99_MS = 3.0
TARGET_SLOW_DISK_EXTRA_MS = 1.0  # with a slow fsync, gatewayd p50 at most naive p50 + this
TARGET_DRAIN_PER_S = 5000.0
TARGET_CAPTURE_PER_S = 3350.0  # with the broker down, as measured before the fsync left the path
TARGET_IDLE_RSS_MB = 50.0


# ---------------------------------------------------------------------------------------
# Peers


@dataclass(frozen=True)
class Peer:
    key: str
    label: str
    topic: str  # subscription filter for its scan messages
    start: Callable[[Path, int, Path], subprocess.Popen[bytes]]  # (serial port, broker port, workdir)


def _spawn(
    cmd: list[str], workdir: Path, *, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.Popen[bytes]:
    workdir.mkdir(parents=True, exist_ok=True)
    with (workdir / "peer.log").open("ab") as log:
        return subprocess.Popen(
            cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=cwd,
            env=dict(os.environ, PYTHONUNBUFFERED="1", **(env or {})), start_new_session=True,
        )


def gatewayd_config(
    path: Path, *, state_dir: Path, broker_port: int, serial_port: Path,
    synchronous: str = "full", drain_rate: int | None = None, gateway_id: str = GATEWAY_ID,
) -> Path:
    """The bench gateway: one station, one serial scanner on the pty, dedupe off."""
    outbox = f'synchronous = "{synchronous}"\n'
    if drain_rate is not None:
        outbox += f"drain_rate = {drain_rate}\n"
    path.write_text(
        f"""
[gateway]
id = "{gateway_id}"
state_dir = "{state_dir}"

[mqtt]
brokers = ["mqtt://127.0.0.1:{broker_port}"]
reconnect_min_s = 0.1
reconnect_max_s = 0.5

[outbox]
{outbox}
[[stations]]
id = "dock-03"
step = "receiving"
dedupe_ms = 0

[[scanners]]
id = "dock-03-left"
station = "dock-03"
driver = "serial"
port = "{serial_port}"
char_timeout_ms = 0
"""
    )
    return path


def start_gatewayd(
    config: Path, workdir: Path, *, env: dict[str, str] | None = None, tree: Path = ROOT
) -> subprocess.Popen[bytes]:
    return _spawn([sys.executable, "-m", "gatewayd", "run", "--config", str(config)], workdir, env=env, cwd=tree)


def build_slow_fsync(work: Path) -> Path:
    """Compile bench/slow_fsync.c with the system's cc into ``work``."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise RuntimeError("no C compiler (cc) for the slow-disk shim: sudo apt-get install gcc, or --fsync-delay-ms 0")
    out = work / "slow_fsync.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(out), str(BENCH / "slow_fsync.c"), "-ldl"], check=True)
    return out


def gatewayd_peer(
    synchronous: str, *, slow_fsync: Path | None = None, fsync_delay_ms: float = 0.0, tree: Path | None = None
) -> Peer:
    """``tree``: run the gatewayd of another source tree (e.g. ``git archive`` of an older
    commit, with ``gatewayd_drivers`` linked to its ``drivers``), to compare within one run."""
    env: dict[str, str] = {}
    if slow_fsync is not None:
        env |= {"LD_PRELOAD": str(slow_fsync), "GATEWAYD_BENCH_FSYNC_DELAY_US": str(round(fsync_delay_ms * 1000))}
    if tree is not None:
        env["PYTHONPATH"] = str(tree)

    def start(serial_port: Path, broker_port: int, workdir: Path) -> subprocess.Popen[bytes]:
        workdir.mkdir(parents=True, exist_ok=True)
        cfg = gatewayd_config(
            workdir / "gatewayd.toml", state_dir=workdir / "state", broker_port=broker_port,
            serial_port=serial_port, synchronous=synchronous, gateway_id=gateway_id,
        )
        return start_gatewayd(cfg, workdir, env=env, tree=tree or ROOT)

    suffix = f"-slowdisk{fsync_delay_ms:g}" if slow_fsync else ""
    suffix += f"-{tree.name}" if tree else ""
    gateway_id = f"{GATEWAY_ID}-{synchronous}{suffix}"
    label = f"gatewayd {tree.name} " if tree else "gatewayd "
    label += f"(synchronous={synchronous}"
    label += f", every fsync +{fsync_delay_ms:g} ms)" if slow_fsync else ")"
    return Peer(f"gatewayd-{synchronous}{suffix}", label, f"gatewayd/{gateway_id}/scans/#", start)


def naive_peer() -> Peer:
    topic = "bench/naive/scans"

    def start(serial_port: Path, broker_port: int, workdir: Path) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, str(BENCH / "naive_bridge.py"), str(serial_port), str(broker_port), topic]
        return _spawn(cmd, workdir)

    return Peer("naive", "naive pyserial + paho (no durability)", topic, start)


def node_red_peer() -> Peer:
    topic = "bench/node-red/scans"

    def start(serial_port: Path, broker_port: int, workdir: Path) -> subprocess.Popen[bytes]:
        cmd = [
            "node", str(NODE_RED_JS), "--userDir", str(NODE_RED_DIR),
            "--settings", str(BENCH / "node-red" / "settings.js"), str(BENCH / "node-red" / "flow.json"),
        ]
        env = {"BENCH_SERIAL_PORT": str(serial_port), "BENCH_MQTT_PORT": str(broker_port), "BENCH_TOPIC": topic}
        return _spawn(cmd, workdir, env=env)

    return Peer("node-red", f"Node-RED {node_red_version()} (serial in → mqtt out, QoS 1)", topic, start)


def node_red_version() -> str:
    try:
        return str(json.loads((NODE_RED_JS.parent / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return "4"


def ensure_node_red(install: bool) -> str | None:
    """None when Node-RED can run here, else why not (in plain words)."""
    if shutil.which("node") is None:
        return "no `node` on PATH (Node-RED needs Node.js 18 or newer)"
    if not NODE_RED_JS.exists():
        if not install:
            return f"not installed: run `npm install --prefix {NODE_RED_DIR.relative_to(ROOT)}`"
        if shutil.which("npm") is None:
            return "not installed, and no `npm` on PATH to install it"
        print("installing Node-RED: npm install --prefix bench/.node-red ...", file=sys.stderr, flush=True)
        out = subprocess.run(
            ["npm", "install", "--prefix", str(NODE_RED_DIR), "--no-audit", "--no-fund"],
            capture_output=True, text=True, check=False, timeout=600,
        )
        if out.returncode != 0 or not NODE_RED_JS.exists():
            tail = (out.stderr or out.stdout).strip().splitlines()[-3:]
            return "`npm install --prefix bench/.node-red` failed: " + " / ".join(tail)
    check = subprocess.run(
        ["node", "-e", "require('@serialport/bindings-cpp')"],
        cwd=NODE_RED_DIR, capture_output=True, text=True, check=False, timeout=60,
    )
    if check.returncode != 0:
        lines = check.stderr.strip().splitlines()
        return "the serialport native binding does not load: " + (lines[0] if lines else "unknown error")
    return None


# ---------------------------------------------------------------------------------------
# Latency


@dataclass
class LatencyRow:
    label: str
    reads: int = 0
    lost: int = 0
    duplicates: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    first_read_s: float | None = None
    usage: Usage | None = None
    error: str | None = None

    def p(self, q: float) -> float:
        return percentile(sorted(self.latencies_ms), q)


@dataclass
class Results:
    started: dt.datetime
    node_red_problem: str | None = None
    rows: list[LatencyRow] = field(default_factory=list)
    startup: list[float] = field(default_factory=list)
    fill: FillResult | None = None
    compare_fills: list[tuple[str, FillResult]] = field(default_factory=list)  # (tree name, fill) of --compare-with
    drains: list[DrainRow] = field(default_factory=list)
    elapsed_s: float = 0.0
    load_before: float = 0.0
    machine_busy_percent: float | None = None  # all cores, during the idle window

    @property
    def failed(self) -> bool:
        return any(r.error for r in self.rows) or any(d.error for d in self.drains)


def wait_ready(pty: Pty, sub: Subscriber, seqs: Iterator[int], proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Write a probe read every 20 ms until one of them reaches the subscriber."""
    deadline = time.monotonic() + timeout
    while sub.received == 0:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with code {proc.returncode} before delivering a read")
        if time.monotonic() > deadline:
            raise RuntimeError(f"no read delivered within {timeout:g} s of start")
        pty.write(scan(next(seqs)))
        time.sleep(0.02)


def paced_reads(pty: Pty, sub: Subscriber, seqs: Iterator[int], row: LatencyRow | None, *,
                reads: int, interval_s: float, timeout_s: float) -> None:
    """One read every ``interval_s``, never two in flight: the next read is written
    ``interval_s`` after the previous one, or as soon as the previous one arrived if that
    took longer. Reads not delivered within ``timeout_s`` count as lost. ``row`` None:
    warm-up, nothing recorded."""
    next_at = time.perf_counter()
    missed = 0
    for _ in range(reads):
        seq = next(seqs)
        arrived = sub.expect(seq)
        data = scan(seq)
        delay = next_at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        written = time.perf_counter_ns()
        pty.write(data)
        next_at = written / 1e9 + interval_s
        ok = arrived.wait(timeout_s)
        missed = 0 if ok else missed + 1
        if missed >= GIVE_UP_AFTER:
            raise RuntimeError(f"{missed} reads in a row not delivered within {timeout_s:g} s")
        if row is None:
            continue
        row.reads += 1
        if ok:
            row.latencies_ms.append((sub.arrivals[seq] - written) / 1e6)
        else:
            row.lost += 1


@dataclass
class Running:
    peer: Peer
    row: LatencyRow
    pty: Pty
    sub: Subscriber
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None

    def fail(self, exc: BaseException) -> None:
        log_tail = _tail(self.workdir / "peer.log")
        self.row.error = f"{exc}" + (f" (log: {log_tail})" if log_tail else "")
        print(f"  {self.peer.label}: {self.row.error}", file=sys.stderr, flush=True)


def run_latency(
    peers: list[Peer], broker: LocalBroker, work: Path, seqs: Iterator[int], *, args: argparse.Namespace, res: Results
) -> None:
    """Start every peer side by side (each with its own pty and subscriber), then measure
    them in interleaved rounds, so load from anything else on the machine falls on all of
    them alike; finally their idle RSS and CPU over one common window."""
    runs: list[Running] = []
    with contextlib.ExitStack() as stack:
        for peer in peers:
            workdir = work / peer.key
            workdir.mkdir(parents=True, exist_ok=True)
            pty = Pty(workdir)
            stack.callback(pty.close)
            sub = stack.enter_context(Subscriber(broker.port, peer.topic))
            runs.append(Running(peer, LatencyRow(peer.label), pty, sub, workdir))
        for r in runs:
            print(f"start: {r.peer.label} ...", file=sys.stderr, flush=True)
            started = time.perf_counter_ns()
            r.proc = r.peer.start(r.pty.path, broker.port, r.workdir)
            stack.callback(stop, r.proc)
            try:
                wait_ready(r.pty, r.sub, seqs, r.proc, timeout=60.0)
            except RuntimeError as exc:
                r.fail(exc)
                continue
            assert r.sub.first_ns is not None
            r.row.first_read_s = (r.sub.first_ns - started) / 1e9
        live = [r for r in runs if r.row.error is None]
        time.sleep(0.5)  # let probes written before a port was opened drain
        interval, timeout = args.interval_ms / 1000, 2.0

        def measure(r: Running, warmup: int, reads: int) -> None:
            assert r.proc is not None
            try:
                paced_reads(r.pty, r.sub, seqs, None, reads=warmup, interval_s=interval, timeout_s=timeout)
                paced_reads(r.pty, r.sub, seqs, r.row, reads=reads, interval_s=interval, timeout_s=timeout)
                if r.proc.poll() is not None:
                    raise RuntimeError(f"exited with code {r.proc.returncode} during the run")
            except RuntimeError as exc:
                r.fail(exc)

        for r in live:
            measure(r, args.warmup, 0)
        per_round = -(-args.reads // args.rounds)
        print(f"latency: {args.rounds} rounds of {per_round} reads per peer ...", file=sys.stderr, flush=True)
        for round_ in range(args.rounds):
            turn = round_ % max(len(live), 1)
            for r in live[turn:] + live[:turn]:
                if r.row.error is None:
                    measure(r, ROUND_WARMUP, min(per_round, args.reads - r.row.reads))
        live = [r for r in live if r.row.error is None]
        print(f"idle: {args.idle_s:g} s ...", file=sys.stderr, flush=True)
        usage, res.machine_busy_percent = idle_usage([r.proc.pid for r in live if r.proc is not None], args.idle_s)
        for r, u in zip(live, usage, strict=True):
            r.row.usage = u
            r.row.duplicates = r.sub.duplicates
    res.rows = [r.row for r in runs]


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " / ".join(text[-lines:])


# ---------------------------------------------------------------------------------------
# gatewayd start → online


def run_startup(broker: LocalBroker, work: Path, runs: int) -> list[float]:
    """Seconds from spawning ``gatewayd run`` to its retained ``online`` status arriving."""
    print(f"startup: gatewayd start → online, {runs} runs ...", file=sys.stderr, flush=True)
    workdir = work / "startup"
    workdir.mkdir(parents=True, exist_ok=True)
    pty = Pty(workdir)
    cfg = gatewayd_config(workdir / "gatewayd.toml", state_dir=workdir / "state",
                          broker_port=broker.port, serial_port=pty.path)
    online: list[int] = []

    def on_status(topic: str, payload: bytes, now: int) -> None:
        if topic == f"gatewayd/{GATEWAY_ID}/status" and json.loads(payload).get("state") == "online":
            online.append(now)

    times: list[float] = []
    try:
        with Subscriber(broker.port, f"gatewayd/{GATEWAY_ID}/status", on_other=on_status):
            for _ in range(runs):
                online.clear()
                started = time.perf_counter_ns()
                proc = start_gatewayd(cfg, workdir)
                try:
                    wait_for(lambda p=proc: online or p.poll() is not None, timeout=30, what="gatewayd online")
                    if not online:
                        raise RuntimeError(f"gatewayd exited: {_tail(workdir / 'peer.log')}")
                    times.append((online[0] - started) / 1e9)
                finally:
                    stop(proc)
    finally:
        pty.close()
    return times


# ---------------------------------------------------------------------------------------
# Capture and drain


@dataclass
class FillResult:
    events: int
    bulk_reads: int
    seconds: float

    @property
    def per_s(self) -> float:
        return self.bulk_reads / self.seconds


@dataclass
class DrainRow:
    drain_rate: int
    events: int
    received: int = 0
    duplicates: int = 0
    first_s: float = float("nan")  # broker takes the gateway → first event at the subscriber
    last_s: float = float("nan")  # ... → last event
    error: str | None = None

    @property
    def per_s(self) -> float:
        return self.received / self.last_s

    @property
    def steady_per_s(self) -> float:
        return (self.received - 1) / (self.last_s - self.first_s)


def outbox_counts(state_dir: Path) -> tuple[int, int]:
    """(last seq, undelivered) read straight from the outbox file."""
    with sqlite3.connect(f"file:{state_dir / 'outbox.sqlite3'}?mode=ro", uri=True, timeout=5) as db:
        last = db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
        undelivered = db.execute("SELECT count(*) FROM events WHERE delivered_at IS NULL").fetchone()[0]
    return int(last), int(undelivered)


def fill_outbox(work: Path, seqs: Iterator[int], events: int, *, tree: Path = ROOT) -> tuple[Path, FillResult]:
    """gatewayd (of source ``tree``) with no broker at all; reads pushed through the pty as
    fast as it takes them."""
    print(f"fill: {events:,} reads through the pty, broker down ...", file=sys.stderr, flush=True)
    workdir = work / ("fill" if tree == ROOT else f"fill-{tree.name}")
    workdir.mkdir(parents=True, exist_ok=True)
    state = workdir / "state"
    pty = Pty(workdir)
    cfg = gatewayd_config(workdir / "gatewayd.toml", state_dir=state, broker_port=free_port(), serial_port=pty.path)
    proc = start_gatewayd(cfg, workdir, tree=tree)
    try:
        # Probe until the port is open and a read is captured, then stream the rest.
        def captured() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"gatewayd exited: {_tail(workdir / 'peer.log')}")
            pty.write(scan(next(seqs)))
            try:
                return outbox_counts(state)[0] > 0
            except sqlite3.OperationalError:  # not created yet
                return False

        wait_for(captured, timeout=30, what="the first captured read", interval=0.05)
        time.sleep(0.5)
        bulk = events - outbox_counts(state)[0]
        chunk = 50  # reads per write(): the pty takes ~4 KiB at a time anyway
        started = time.perf_counter()
        for start in range(0, bulk, chunk):
            pty.write(b"".join(scan(next(seqs)) for _ in range(min(chunk, bulk - start))))
        wait_for(lambda: outbox_counts(state)[0] >= events, timeout=600, what=f"{events} captured", interval=0.02)
        seconds = time.perf_counter() - started
    finally:
        code = stop(proc, timeout=30)
        pty.close()
    if code != 0:
        raise RuntimeError(f"gatewayd exited with {code} after the fill: {_tail(workdir / 'peer.log')}")
    _, undelivered = outbox_counts(state)
    return state, FillResult(events=undelivered, bulk_reads=bulk, seconds=seconds)


def run_drain(work: Path, filled: Path, drain_rate: int, events: int, password_file: Path) -> DrainRow:
    """Start gatewayd on a copy of the filled outbox against a broker that refuses it; once
    the subscriber is in, let the gateway in too (SIGHUP with anonymous access allowed) and
    time until the subscriber has every event."""
    label = "unlimited" if drain_rate == 0 else f"{drain_rate}/s"
    print(f"drain: {events:,} events, drain_rate {label} ...", file=sys.stderr, flush=True)
    row = DrainRow(drain_rate, events)
    workdir = work / f"drain-{drain_rate}"
    state = workdir / "state"
    shutil.copytree(filled, state)
    pty = Pty(workdir)
    broker = LocalBroker(workdir=workdir / "broker", allow_anonymous=False,
                         extra_conf=f"password_file {password_file}")
    broker.start()
    proc = None
    try:
        cfg = gatewayd_config(workdir / "gatewayd.toml", state_dir=state, broker_port=broker.port,
                              serial_port=pty.path, drain_rate=drain_rate)
        proc = start_gatewayd(cfg, workdir)
        log = workdir / "peer.log"
        wait_for(lambda: "broker refused the connection" in log.read_text(errors="replace") or proc.poll() is not None,
                 timeout=60, what="gatewayd trying the broker", interval=0.05)
        if proc.poll() is not None:
            raise RuntimeError(f"gatewayd exited: {_tail(log)}")
        with Subscriber(broker.port, f"gatewayd/{GATEWAY_ID}/scans/#", username="bench", password="bench") as sub:  # noqa: S106
            conf = broker.workdir / f"mosquitto-{broker.port}.conf"
            conf.write_text(conf.read_text().replace("allow_anonymous false", "allow_anonymous true"))
            assert broker.proc is not None
            opened = time.perf_counter_ns()
            broker.proc.send_signal(signal.SIGHUP)
            timeout = 60 + 3 * events / (drain_rate or TARGET_DRAIN_PER_S)
            try:
                wait_for(lambda: sub.received >= events, timeout=timeout, what=f"{events} events", interval=0.01)
            except TimeoutError as exc:
                row.error = str(exc)
            row.received, row.duplicates = sub.received, sub.duplicates
            if sub.first_ns is not None and sub.last_ns is not None:
                row.first_s = (sub.first_ns - opened) / 1e9
                row.last_s = (sub.last_ns - opened) / 1e9
    except (RuntimeError, OSError, TimeoutError) as exc:
        row.error = str(exc)
    finally:
        if proc is not None:
            stop(proc, timeout=30)
        broker.stop()
        pty.close()
    if row.error:
        print(f"  drain {label}: {row.error}", file=sys.stderr, flush=True)
    return row


def make_password_file(work: Path) -> Path:
    path = work / "mosquitto.passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(path), "bench", "bench"], check=True, capture_output=True)
    path.chmod(0o644)  # mosquitto reads it after dropping root
    return path


# ---------------------------------------------------------------------------------------
# Report


def _ms(value: float) -> str:
    return f"{value:.2f}"


def _opt(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def report(args: argparse.Namespace, res: Results) -> str:
    rows, startup, fill, drains = res.rows, res.startup, res.fill, res.drains
    out: list[str] = []
    add = out.append
    add("# gatewayd benchmarks")
    add("")
    add("Reproduce from the repository root: `.venv/bin/python bench/run.py`"
        + (f" (this run: `{' '.join(sys.argv[1:])}`)" if sys.argv[1:] else ""))
    add("")
    add(f"- date: {res.started:%Y-%m-%d %H:%M} UTC, total {res.elapsed_s:.0f} s")
    add(f"- machine: {machine()}")
    busy = res.machine_busy_percent
    add(f"- other load: 1-minute load average {res.load_before:.2f} at start (includes any earlier run); whole machine "
        f"{_opt(busy, '.0f')} % busy during the idle window (the peers themselves use ~1 %)"
        + (" — **something else was running: expect noisier numbers**"
           if (busy or 0) > BUSY_PERCENT else ""))
    add("- everything on this one machine: one pty pair as the serial scanner, one local mosquitto, "
        "one paho subscriber (MQTT 5, QoS 1) in the bench process for every peer")
    add("")
    add("## Scan → subscriber latency")
    add("")
    add(f"All peers run side by side, each on its own pty. {args.reads:,} reads per peer, measured in "
        f"{args.rounds} interleaved rounds (peer order rotated each round) after {args.warmup} warm-up reads, "
        f"plus {ROUND_WARMUP} uncounted reads at the start of each round; one read every {args.interval_ms:g} ms, "
        "never two in flight. Latency = the subscriber's arrival time − the time the read was written to the pty "
        f"master. Idle = one common {args.idle_s:g} s window after the last round, no reads. "
        "Peak RSS is VmHWM since start.")
    add("")
    add("| peer | reads | lost | p50 ms | p90 ms | p99 ms | max ms | start → first read s "
        "| idle RSS MB | peak RSS MB | idle CPU % |")
    add("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for r in rows:
        if r.error:
            add(f"| {r.label} | – | – | – | – | – | – | – | – | – | – |")
            continue
        u = r.usage
        add(f"| {r.label} | {r.reads:,} | {r.lost} | {_ms(r.p(50))} | {_ms(r.p(90))} | {_ms(r.p(99))} "
            f"| {_ms(r.p(100))} | {_opt(r.first_read_s, '.2f')} | {_opt(u and u.rss_mb, '.1f')} "
            f"| {_opt(u and u.hwm_mb, '.1f')} | {_opt(u and u.cpu_percent, '.2f')} |")
    for r in rows:
        if r.error:
            add("")
            add(f"**{r.label} not measured:** {r.error}")
    if res.node_red_problem:
        add("")
        add(f"**Node-RED not measured:** {res.node_red_problem}")
    add("")
    add("## gatewayd: start → online")
    add("")
    if startup:
        add(f"From spawning `gatewayd run` to its retained `online` status at the subscriber, {len(startup)} runs: "
            f"median **{median(startup):.2f} s** (min {min(startup):.2f}, max {max(startup):.2f}).")
    else:
        add("Not measured.")
    add("")
    add("## gatewayd: capture with the broker down, then backlog drain")
    add("")
    if fill is not None:
        add(f"Fill: gatewayd (synchronous=full, no broker reachable) took {fill.bulk_reads:,} reads pushed through the "
            f"pty as fast as it would read them in {fill.seconds:.1f} s: **capture {fill.per_s:,.0f} reads/s**; "
            f"{fill.events:,} events undelivered in the outbox."
            + "".join(f" gatewayd {name}, the same way: {other.per_s:,.0f} reads/s."
                      for name, other in res.compare_fills))
        add("")
        add("Drain: a fresh gatewayd on a copy of that outbox, its broker refusing it (auth) until the subscriber "
            "is subscribed; then the broker lets it in (SIGHUP) and the clock starts. The first event waits for "
            "gatewayd's next reconnect attempt (reconnect_max_s = 0.5 here); \"steady\" leaves that wait out.")
        add("")
        add("| drain_rate | events | received | dup | broker in → first event s | broker in → last event s "
            "| events/s | steady events/s |")
        add("|---|--:|--:|--:|--:|--:|--:|--:|")
        for d in drains:
            label = "0 (unlimited)" if d.drain_rate == 0 else f"{d.drain_rate} (default)" \
                if d.drain_rate == DEFAULT_DRAIN_RATE else str(d.drain_rate)
            if d.received and d.last_s == d.last_s:
                add(f"| {label} | {d.events:,} | {d.received:,} | {d.duplicates} | {d.first_s:.2f} | {d.last_s:.2f} "
                    f"| {d.per_s:,.0f} | {d.steady_per_s:,.0f} |")
            else:
                add(f"| {label} | {d.events:,} | {d.received:,} | – | – | – | – | – |")
        for d in drains:
            if d.error:
                add("")
                add(f"**drain_rate {d.drain_rate}:** {d.error}")
    else:
        add("Not measured.")
    add("")
    add("## Targets")
    add("")
    add("| target | measured | met |")
    add("|---|---|---|")
    by_key = {r.label: r for r in rows if not r.error}
    naive = next((r for k, r in by_key.items() if k.startswith("naive")), None)
    gw = next((r for k, r in by_key.items() if k == "gatewayd (synchronous=full)"), None)
    gw_slow = next((r for k, r in by_key.items() if "synchronous=full, every fsync" in k), None)
    node_red = next((r for k, r in by_key.items() if k.startswith("Node-RED")), None)

    def verdict(ok: bool) -> str:
        return "yes" if ok else "**no**"

    gw_normal = next((r for k, r in by_key.items() if "synchronous=normal" in k), None)
    if gw and naive:
        ratio = gw.p(50) / naive.p(50)
        extra = f"; synchronous=normal {gw_normal.p(50) / naive.p(50):.2f}×" if gw_normal else ""
        add(f"| latency p50 ≤ {TARGET_P50_FACTOR}× naive | {_ms(gw.p(50))} ms = {ratio:.2f}× naive "
            f"({_ms(naive.p(50))} ms){extra} | {verdict(ratio <= TARGET_P50_FACTOR)} |")
    if gw and node_red:
        add(f"| latency p50 ≤ Node-RED's | {_ms(gw.p(50))} ms (Node-RED {_ms(node_red.p(50))} ms) "
            f"| {verdict(gw.p(50) <= node_red.p(50))} |")
    if gw_slow and naive:
        extra_ms = gw_slow.p(50) - naive.p(50)
        met = verdict(extra_ms <= TARGET_SLOW_DISK_EXTRA_MS)
        add(f"| slow disk ({gw_slow.label.split(', ')[1].rstrip(')')}): p50 ≤ naive + {TARGET_SLOW_DISK_EXTRA_MS:g} ms "
            f"| {_ms(gw_slow.p(50))} ms = naive + {_ms(extra_ms)} ms | {met} |")
    if gw:
        extra = f" (Node-RED {_ms(node_red.p(99))} ms)" if node_red else ""
        met = verdict(gw.p(99) <= TARGET_P99_MS)
        add(f"| latency p99 ≤ {TARGET_P99_MS:g} ms | {_ms(gw.p(99))} ms{extra} | {met} |")
    if fill is not None:
        others = "".join(f"; {name} {other.per_s:,.0f} reads/s" for name, other in res.compare_fills)
        add(f"| capture, broker down ≥ {TARGET_CAPTURE_PER_S:,.0f} reads/s | {fill.per_s:,.0f} reads/s{others} "
            f"| {verdict(fill.per_s >= TARGET_CAPTURE_PER_S)} |")
    unlimited = next((d for d in drains if d.drain_rate == 0 and d.received), None)
    if unlimited:
        add(f"| drain ≥ {TARGET_DRAIN_PER_S:,.0f} events/s (drain_rate 0) | {unlimited.per_s:,.0f} events/s "
            f"(steady {unlimited.steady_per_s:,.0f}) | {verdict(unlimited.per_s >= TARGET_DRAIN_PER_S)} |")
    if gw and gw.usage:
        others = ", ".join(f"{r.label.split(' ')[0]} {r.usage.rss_mb:.1f} MB" for r in rows
                           if r.usage and not r.error and not r.label.startswith("gatewayd"))
        add(f"| idle RSS ≤ {TARGET_IDLE_RSS_MB:g} MB | {gw.usage.rss_mb:.1f} MB ({others}) "
            f"| {verdict(gw.usage.rss_mb <= TARGET_IDLE_RSS_MB)} |")
    add("")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reads", type=int, default=2000, help="measured reads per peer (default 2000)")
    parser.add_argument("--warmup", type=int, default=200, help="warm-up reads per peer, not counted (default 200)")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds the reads are split in (default 10)")
    parser.add_argument("--interval-ms", type=float, default=5.0, help="gap between reads (default 5 ms)")
    parser.add_argument("--idle-s", type=float, default=10.0, help="idle window for RSS/CPU (default 10 s)")
    parser.add_argument("--startup-runs", type=int, default=5, help="gatewayd start → online runs (default 5)")
    parser.add_argument("--drain-events", type=int, default=100_000, help="backlog size (default 100000)")
    parser.add_argument("--no-node-red", action="store_true", help="leave Node-RED out")
    parser.add_argument("--no-install", action="store_true", help="do not `npm install` Node-RED when it is missing")
    parser.add_argument("--no-drain", action="store_true", help="skip the capture and drain runs")
    parser.add_argument("--fsync-delay-ms", type=float, default=5.0,
                        help="extra time per fsync of the slow-disk peer (default 5 ms, like an SD card); 0: none")
    parser.add_argument("--compare-with", type=Path, action="append", default=[], metavar="TREE",
                        help="also run the gatewayd of this source tree (its name labels it), e.g. an older commit")
    parser.add_argument("--out", type=Path, default=BENCH / "results.md", help="markdown file to write")
    args = parser.parse_args()

    res = Results(started=dt.datetime.now(dt.UTC), load_before=os.getloadavg()[0])
    t0 = time.monotonic()
    seqs = itertools.count(1)
    work = Path(tempfile.mkdtemp(prefix="gatewayd-bench-"))

    res.node_red_problem = "left out (--no-node-red)" if args.no_node_red else ensure_node_red(not args.no_install)
    peers = [naive_peer(), gatewayd_peer("full"), gatewayd_peer("normal")]
    shim = build_slow_fsync(work) if args.fsync_delay_ms > 0 else None
    if shim is not None:
        peers.append(gatewayd_peer("full", slow_fsync=shim, fsync_delay_ms=args.fsync_delay_ms))
    for tree in (t.resolve() for t in args.compare_with):
        peers.append(gatewayd_peer("full", tree=tree))
        if shim is not None:
            peers.append(gatewayd_peer("full", tree=tree, slow_fsync=shim, fsync_delay_ms=args.fsync_delay_ms))
    if res.node_red_problem is None:
        peers.append(node_red_peer())
    else:
        print(f"Node-RED: {res.node_red_problem}", file=sys.stderr)

    with LocalBroker(workdir=work / "broker") as broker:
        if broker.kind != "mosquitto":
            print("mosquitto not found: the numbers below are against amqtt", file=sys.stderr)
        run_latency(peers, broker, work, seqs, args=args, res=res)
        res.startup = run_startup(broker, work, args.startup_runs)

    if not args.no_drain:
        filled, res.fill = fill_outbox(work, seqs, args.drain_events)
        for tree in (t.resolve() for t in args.compare_with):
            res.compare_fills.append((tree.name, fill_outbox(work, seqs, args.drain_events, tree=tree)[1]))
        password_file = make_password_file(work)
        res.drains = [run_drain(work, filled, rate, res.fill.events, password_file) for rate in (0, DEFAULT_DRAIN_RATE)]

    res.elapsed_s = time.monotonic() - t0
    text = report(args, res)
    print(text)
    args.out.write_text(text)
    if res.failed:
        print(f"written to {args.out}; logs kept in {work}", file=sys.stderr)
    else:
        print(f"written to {args.out}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)
    return 1 if res.failed else 0


if __name__ == "__main__":
    sys.exit(main())
