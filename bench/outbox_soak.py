"""Outbox soak: the real daemon under a steady stream of reads while its outbox is damaged.

    .venv/bin/python bench/outbox_soak.py [--minutes 3] [--rate 50] [--seed 13]

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
"""

from __future__ import annotations

import argparse
import json
import random
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


class Wms:
    """Records every scan and gap event, and the gateway's status."""

    def __init__(self, port: int) -> None:
        self.lock = threading.Lock()
        self.events: list[dict[str, Any]] = []
        self.online = 0
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id="soak-wms", protocol=MQTTProtocolVersion.MQTTv5
        )
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

    def raws(self) -> set[str]:
        with self.lock:
            return {e["raw"] for e in self.events if "raw" in e}

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=50.0, help="reads per second")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="gatewayd-soak-"))
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
            seen = wms.online
            proc = subprocess.Popen(
                [sys.executable, "-m", "gatewayd", "run", "--config", str(cfg)],
                stdout=log, stderr=log, cwd=ROOT, start_new_session=True,
            )  # fmt: skip
            wait_for(lambda: wms.online > seen, timeout=30, what="gateway online")
            time.sleep(0.5)  # the scanner port opens right after online; pyserial flushes its input on open
            return proc

        def writer() -> None:
            n = 0
            while not stop.is_set():
                if not up.wait(0.1):
                    continue
                data = scan(n)
                written.append(data.decode().rstrip("\r"))
                pty.write(data)
                n += 1
                time.sleep(1 / args.rate)

        proc = start()
        up.set()
        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        started = time.monotonic()
        while time.monotonic() - started < args.minutes * 60:
            time.sleep(rng.uniform(3, 10))
            kind = rng.choice(["truncate", "zero", "delete", "replace"])
            kill = rng.random() < 0.5
            key = f"{kind}{' + kill -9' if kill else ''}"
            actions[key] = actions.get(key, 0) + 1
            if kill:
                up.clear()
                time.sleep(0.2)  # let the last read written reach the gateway
                wait_for(lambda: wms.raws() >= set(written), timeout=60, what="reads delivered before the kill")
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
        try:
            wait_for(lambda: wms.raws() >= set(written), timeout=120, what="every read delivered")
        except AssertionError as exc:
            print(f"note: {exc}", file=sys.stderr)
        proc.terminate()
        proc.wait(timeout=30)
        wms.close()
        pty.close()
        log.close()

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
    missing = set(written) - set(seqs_of_raw)
    print(f"machine: {machine()}")
    print(f"{args.minutes:g} min at {args.rate:g} reads/s, seed {args.seed}; damages: "
          + ", ".join(f"{k} x{v}" for k, v in sorted(actions.items())) + f"; {restarts} restarts")
    print(f"reads written {len(written)}, delivered {len(seqs_of_raw)}, not delivered {len(missing)} "
          f"(each inside an announced gap unless reported below)")
    print(f"gap announcements {len(gaps)}: " + ", ".join(f"{g['from_seq']}..{g['to_seq']}" for g in gaps))
    print(f"highest seq {top}; seqs reused {reused}; reads under two seqs {two_seqs}; "
          f"unaccounted seqs {len(unaccounted)}")
    ok = reused == 0 and two_seqs == 0 and not unaccounted
    print("invariants hold" if ok else "INVARIANT BROKEN")
    if ok:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"kept {workdir} for inspection")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
