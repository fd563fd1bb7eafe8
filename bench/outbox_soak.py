"""Outbox soak: the real daemon under a steady stream of reads while its outbox is damaged.

    .venv/bin/python bench/outbox_soak.py [--minutes 3] [--rate 50] [--seed 13]
        [--faults outbox,gateway,broker,disk,garbage]

One pty scanner writes ``--rate`` reads per second to ``gatewayd run`` (a local broker,
one subscriber). Every few seconds the outbox is damaged at random: truncated to half,
emptied, deleted with its WAL, or replaced by garbage, half of the time followed by
``kill -9`` and a restart (the writer pauses while the gateway is down, so every read
written reaches a running gateway). At the end it reports reads written and delivered,
the gaps announced (``gatewayd.gap/1``), and checks the invariants a WMS relies on:

* a seq never names two events (``seq`` never reused);
* a read is never published under two seqs;
* every seq up to the highest seen is a delivered event or inside an announced gap
  (nothing unaccounted), so every read written and not delivered is announced.

``--faults`` picks the fault kinds (default all): ``outbox`` (the damages above),
``gateway`` (``kill -9`` and restart, with or without a damage), ``broker`` (``kill -9``
the broker and restart it on the same port; it keeps no store, so what it acknowledged
and lost is refilled at the end with ``request/replay``, as a WMS does), ``disk`` (the
state directory is a small tmpfs in a private mount namespace; a ballast file fills it
for a few seconds: reads then are refused with a ``REFUSED read`` log line) and
``garbage`` (random bytes, control characters, invalid UTF-8 and overlong lines between
good reads, each published as kind ``unknown``). Every read carries its own number (a
good read in AI 21, a garbage read as a ``G`` prefix), so the soak accounts for each:
written == delivered + refused + lost inside announced gaps.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from harness import Pty, machine, scan, wait_for
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from gatewayd.demo.local_broker import LocalBroker

ROOT = Path(__file__).resolve().parent.parent
P = "gatewayd/soak-gw"
FAULTS = ("outbox", "gateway", "broker", "disk", "garbage")
READ_ID = re.compile(r"21B(\d{9})|^G(\d{9})")
REFUSED_ID = re.compile(r"REFUSED read .*?raw=.*?(?:21B(\d{9})|['\"]G(\d{9}))")
DISK_MB = 64


def read_id(match: re.Match[str] | None) -> str | None:
    if match is None:
        return None
    return f"B{match.group(1)}" if match.group(1) else f"G{match.group(2)}"


def garbage(n: int, rng: random.Random) -> bytes:
    """A read no scanner should send: random bytes (control characters, invalid UTF-8),
    now and then longer than the framer's 4096 bytes; never CR or LF inside."""
    length = rng.choice([rng.randint(0, 40), rng.randint(40, 400), rng.randint(4100, 6000)])
    body = bytes(b for b in rng.randbytes(length) if b not in (0x0D, 0x0A))
    return b"G%09d" % n + body + b"\r"


class Wms:
    """Records every scan and gap event, and the gateway's status."""

    def __init__(self, port: int) -> None:
        self.lock = threading.Lock()
        self.events: list[dict[str, Any]] = []
        self.online = 0
        self.connected = 0  # times the scanner reported "connected"
        self.last_seq = 0  # from the gateway's status
        self.replies = 0
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id="soak-wms", protocol=MQTTProtocolVersion.MQTTv5
        )
        self.client.reconnect_delay_set(0.05, 0.5)  # type: ignore[arg-type]  # paho takes seconds as floats
        self.client.on_connect = lambda c, *_: c.subscribe(f"{P}/#", qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        body = json.loads(msg.payload)
        with self.lock:
            if msg.topic.startswith(f"{P}/scans/"):
                self.events.append(body)
            elif msg.topic == f"{P}/status" and body.get("state") == "online":
                self.online += 1
                self.last_seq = max(self.last_seq, int((body.get("outbox") or {}).get("last_seq") or 0))
            elif msg.topic.startswith(f"{P}/devices/") and body.get("state") == "connected":
                self.connected += 1
            elif msg.topic == f"{P}/response/replay":
                self.replies += 1

    def ids(self) -> set[str]:
        """The reads delivered, by the number each carries."""
        with self.lock:
            raws = [e["raw"] for e in self.events if "raw" in e]
        return {i for i in (read_id(READ_ID.search(r)) for r in raws) if i is not None}

    def missing(self) -> list[tuple[int, int]]:
        """Seq ranges up to the last seq known that are neither delivered nor announced."""
        with self.lock:
            seen = {e["seq"] for e in self.events}
            for e in self.events:
                if e.get("schema") == "gatewayd.gap/1":
                    seen |= set(range(e["from_seq"], e["to_seq"] + 1))
            top = max([self.last_seq, *seen], default=0)
        ranges: list[tuple[int, int]] = []
        for s in sorted(set(range(1, top + 1)) - seen):
            if ranges and ranges[-1][1] == s - 1:
                ranges[-1] = (ranges[-1][0], s)
            else:
                ranges.append((s, s))
        return ranges

    def replay(self) -> int:
        """Ask the gateway to publish the missing seqs again (the README's "Consuming
        events"); returns how many seqs were asked for."""
        ranges = self.missing()
        for i, (a, b) in enumerate(ranges):
            body = {"transaction": f"soak-{time.monotonic_ns()}-{i}", "from_seq": a, "to_seq": b}
            self.client.publish(f"{P}/request/replay", json.dumps(body), qos=1)
        return sum(b - a + 1 for a, b in ranges)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def config(workdir: Path, port: int, tty: Path) -> Path:
    path = workdir / "gatewayd.toml"
    path.write_text(
        f"""
[gateway]
id = "soak-gw"
state_dir = "{workdir / "state"}"

[mqtt]
brokers = ["mqtt://127.0.0.1:{port}"]
reconnect_min_s = 0.1
reconnect_max_s = 0.5

[outbox]
drain_rate = 0

[[stations]]
id = "dock-03"
step = "receiving"
dedupe_ms = 0

[[scanners]]
id = "dock-03-left"
station = "dock-03"
driver = "serial"
port = "{tty}"
char_timeout_ms = 0
"""
    )
    return path


def damage(kind: str, state: Path) -> None:
    path = state / "outbox.sqlite3"
    if kind == "truncate" and path.exists():
        with open(path, "r+b") as f:
            f.truncate(path.stat().st_size // 2)
    elif kind == "zero" and path.exists():
        with open(path, "r+b") as f:
            f.truncate(0)
    elif kind == "delete":
        for p in state.glob("outbox.sqlite3*"):
            if ".damaged-" not in p.name and ".vanished-" not in p.name and ".foreign-" not in p.name:
                p.unlink()
    elif kind == "replace":
        (state / "garbage").write_bytes(b"\0garbage" * 512)
        (state / "garbage").replace(path)


def fill_disk(state: Path) -> Path:
    """Fill the state directory's file system with a ballast file, to the last block."""
    ballast = state / "ballast"
    with open(ballast, "wb", buffering=0) as f:
        for chunk in (1 << 20, 4096, 512):
            with contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * chunk)
    return ballast


def private_tmpfs(path: Path) -> str | None:
    """Mount a small tmpfs on ``path``; the soak runs in its own mount namespace (see
    main), so nothing outside sees it. Returns why not, or None."""
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "soak-state", str(path)],
                         check=False, capture_output=True, text=True)  # fmt: skip
    return None if res.returncode == 0 else (res.stderr.strip() or f"mount exited {res.returncode}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=50.0, help="reads per second")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--faults", default=",".join(FAULTS), help="comma-separated: " + ",".join(FAULTS))
    args = parser.parse_args()
    faults = {f.strip() for f in args.faults.split(",") if f.strip()}
    if faults - set(FAULTS):
        parser.error(f"unknown faults {sorted(faults - set(FAULTS))}; expected some of {','.join(FAULTS)}")
    if "disk" in faults and os.environ.get("GATEWAYD_SOAK_NS") != "1" and shutil.which("unshare"):
        # A private mount namespace, so the small tmpfs for the state directory is ours alone.
        env = dict(os.environ, GATEWAYD_SOAK_NS="1")
        probe = ["unshare", "-m", "--propagation", "private", "true"]
        if subprocess.run(probe, check=False, capture_output=True).returncode == 0:
            argv = ["unshare", "-m", "--propagation", "private", sys.executable, *sys.argv]
            os.execvpe("unshare", argv, env)  # noqa: S606
    rng = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="gatewayd-soak-"))
    notes: list[str] = []
    if "disk" in faults:
        why = private_tmpfs(workdir / "state") if os.environ.get("GATEWAYD_SOAK_NS") == "1" else "no mount namespace"
        if why is not None:
            notes.append(f"disk fault impossible here ({why}): skipped")
            faults.discard("disk")
    written: list[str] = []
    up = threading.Event()
    stop = threading.Event()
    actions: dict[str, int] = {}
    restarts = 0
    with LocalBroker(workdir=workdir / "broker") as broker:
        pty = Pty(workdir)
        cfg = config(workdir, broker.port, pty.path)
        wms = Wms(broker.port)
        log = (workdir / "gatewayd.log").open("ab")

        def start() -> subprocess.Popen[bytes]:
            seen, connected = wms.online, wms.connected
            proc = subprocess.Popen(
                [sys.executable, "-m", "gatewayd", "run", "--config", str(cfg)],
                stdout=log, stderr=log, cwd=ROOT, start_new_session=True,
            )  # fmt: skip
            wait_for(lambda: wms.online > seen, timeout=30, what="gateway online")
            wait_for(lambda: wms.connected > connected, timeout=30, what="scanner port open")
            time.sleep(0.5)  # the scanner port opens right after online; pyserial flushes its input on open
            return proc

        def writer() -> None:
            n = g = 0
            wrng = random.Random(args.seed + 1)
            while not stop.is_set():
                if not up.wait(0.1):
                    continue
                if "garbage" in faults and wrng.random() < 0.1:
                    data = garbage(g, wrng)
                    written.append(f"G{g:09d}")
                    g += 1
                else:
                    data = scan(n)
                    written.append(f"B{n:09d}")
                    n += 1
                pty.write(data)
                time.sleep(1 / args.rate)

        def refused() -> set[str]:
            text = (workdir / "gatewayd.log").read_text(errors="replace")
            return {i for i in (read_id(REFUSED_ID.search(line)) for line in text.splitlines()) if i is not None}

        def settle(timeout: float) -> bool:
            """Wait until every read written is delivered or refused, asking for a replay
            of what a broker restart lost."""
            deadline = time.monotonic() + timeout
            asked = 0.0
            while time.monotonic() < deadline:
                if set(written) <= wms.ids() | refused():
                    return True
                if time.monotonic() - asked > 3 and wms.client.is_connected():
                    wms.replay()
                    asked = time.monotonic()
                time.sleep(0.2)
            return False

        proc = start()
        up.set()
        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        started = time.monotonic()
        kinds = [f for f in ("outbox", "gateway", "broker", "disk") if f in faults]
        while time.monotonic() - started < args.minutes * 60:
            time.sleep(rng.uniform(3, 10))
            if not kinds:
                continue
            fault = rng.choice(kinds)
            if fault == "broker":
                actions["broker kill -9"] = actions.get("broker kill -9", 0) + 1
                broker.kill()
                time.sleep(rng.uniform(0.2, 3))
                broker.start()
                continue
            if fault == "disk":
                actions["disk full"] = actions.get("disk full", 0) + 1
                ballast = fill_disk(workdir / "state")
                time.sleep(rng.uniform(2, 5))
                ballast.unlink()
                continue
            kind = rng.choice(["truncate", "zero", "delete", "replace"]) if fault == "outbox" else ""
            kill = fault == "gateway" or ("gateway" in faults and rng.random() < 0.5)
            key = " + ".join(k for k in (kind, "kill -9" if kill else "") if k)
            actions[key] = actions.get(key, 0) + 1
            if kill:
                up.clear()
                time.sleep(0.2)  # let the last read written reach the gateway
                if not settle(60):
                    notes.append(f"reads not yet delivered before kill #{restarts + 1}")
            if kind:
                damage(kind, workdir / "state")
            if kill:
                proc.kill()
                proc.wait()
                restarts += 1
                proc = start()
                up.set()
        up.clear()
        stop.set()
        thread.join()
        if not settle(120):
            notes.append("not every read delivered or refused after 120 s")
        time.sleep(2)
        wms.replay()  # the tail: seqs after the last one seen that the status names
        time.sleep(3)
        proc.terminate()
        proc.wait(timeout=30)
        wms.close()
        pty.close()
        log.close()
        log_text = (workdir / "gatewayd.log").read_text(errors="replace")
        refused_lines = log_text.count("REFUSED read")
        reasons: dict[str, int] = {}
        for m in re.finditer(
            r"REFUSED read from \S+(?: at \S+)? \((outbox write failed|outbox full|internal error)", log_text
        ):
            reasons[m.group(1)] = reasons.get(m.group(1), 0) + 1
        refused_final = refused()

    events = [e for e in wms.events if e.get("schema") == "gatewayd.scan/1"]
    gaps = [e for e in wms.events if e.get("schema") == "gatewayd.gap/1"]
    by_seq: dict[int, str] = {}
    reused = 0
    for e in events + gaps:
        if by_seq.setdefault(e["seq"], e["event_id"]) != e["event_id"]:
            reused += 1
    seqs_of_raw: dict[str, set[int]] = {}
    for e in events:
        seqs_of_raw.setdefault(e["raw"], set()).add(e["seq"])
    two_seqs = sum(1 for s in seqs_of_raw.values() if len(s) > 1)
    covered = set(by_seq)
    for g in gaps:
        covered |= set(range(g["from_seq"], g["to_seq"] + 1))
    top = max(by_seq, default=0)
    unaccounted = sorted(set(range(1, top + 1)) - covered)
    delivered = {i for i in (read_id(READ_ID.search(r)) for r in seqs_of_raw) if i is not None}
    refused_ids = set(refused_final)
    written_ids = set(written)
    good = sum(1 for w in written if w[0] == "B")
    junk = [e for e in events if e["raw"].startswith("G")]
    not_unknown = sum(1 for e in junk if e.get("kind") != "unknown")
    gap_seqs = set().union(*(range(g["from_seq"], g["to_seq"] + 1) for g in gaps)) - {e["seq"] for e in events}
    lost = written_ids - delivered - refused_ids
    both = delivered & refused_ids
    stray = delivered - written_ids
    print(f"machine: {machine()}")
    print(
        f"{args.minutes:g} min at {args.rate:g} reads/s, seed {args.seed}, faults {','.join(sorted(faults))}; "
        + ", ".join(f"{k} x{v}" for k, v in sorted(actions.items()))
        + f"; {restarts} gateway restarts"
    )
    print(
        f"reads written {len(written)} ({good} good + {len(written) - good} garbage); "
        f"captured {len(seqs_of_raw)} (garbage {len(junk)}, {not_unknown} not kind unknown); "
        f"refused with a log line {refused_lines} ({len(refused_ids)} reads; "
        + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items()))
        + "); "
        f"delivered {len(delivered)}; replayed on request {wms.replies} times"
    )
    print(
        f"gap announcements {len(gaps)} ({len(gap_seqs)} seqs): "
        + ", ".join(f"{g['from_seq']}..{g['to_seq']}" for g in gaps)
    )
    print(
        f"written {len(written_ids)} = delivered {len(delivered)} + refused {len(refused_ids - delivered)} "
        f"+ lost inside announced gaps {len(lost)} (at most {len(gap_seqs)}); "
        f"delivered and refused {len(both)}; delivered never written {len(stray)}"
    )
    print(
        f"highest seq {top}; seqs reused {reused}; reads under two seqs {two_seqs}; unaccounted seqs {len(unaccounted)}"
    )
    for note in notes:
        print(f"note: {note}")
    ok = (reused == 0 and two_seqs == 0 and not unaccounted and len(lost) <= len(gap_seqs)
          and not both and not stray and not_unknown == 0)  # fmt: skip
    print("invariants hold" if ok else "INVARIANT BROKEN")
    if ok:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"kept {workdir} for inspection")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
