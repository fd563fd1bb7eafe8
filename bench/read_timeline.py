"""Where a read's time goes inside the running daemon: a timeline of one read, point by point.

    .venv/bin/python bench/read_timeline.py [--reads 1000] [--synchronous full]

Runs the real ``gatewayd run`` (one serial scanner on a pty, one local mosquitto, one paho
subscriber, as bench/run.py does) with probes around the functions of the read path, and
writes paced reads (one every 5 ms, never two in flight). Each probe appends
``time.perf_counter_ns()`` to a list in the daemon; the bench takes the same clock
(CLOCK_MONOTONIC, one per machine) when it writes a read to the pty master and when the
subscriber gets it. The report gives, for each point, the median and p90 time since the
write, and the median of each step: unlike bench/read_path.py (each step alone, in a hot
loop), this is the daemon as it runs, caches cold between reads and the event loop in
between. The probes themselves cost about a microsecond each.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

# (label, module, owner, attribute, where): the probes, in read-path order.
PROBES = [
    ("port readable: the transport reads it", "gatewayd_drivers.serial_scanner", "_Port", "read", "enter"),
    ("bytes handed to the framer", "gatewayd_drivers.framing", "FrameReceiver", "feed", "enter"),
    ("daemon has the read (handle_read)", "gatewayd.daemon", "Gateway", "handle_read", "enter"),
    ("decoded and tagged (scan_event)", "gatewayd.daemon", None, "scan_event", "exit"),
    ("payload built (JSON)", "gatewayd.daemon", None, "json_bytes", "exit"),
    ("recorded in seq.live", "gatewayd.delivery.outbox", "LiveRecord", "write", "exit"),
    ("PUBLISH written to the socket", "gatewayd.delivery.paho_adapter", "PahoClient", "_sock_send", "exit"),
    ("outbox file checked (Outbox.check)", "gatewayd.delivery.outbox", "Outbox", "check", "exit"),
    ("row committed (Outbox._insert)", "gatewayd.delivery.outbox", "Outbox", "_insert", "exit"),
    ("handle_read returns", "gatewayd.daemon", "Gateway", "handle_read", "exit"),
]
ARRIVED = "subscriber has it (step: from the PUBLISH)"
PUBLISHED = 6  # PROBES index of the PUBLISH


def _daemon(argv: list[str]) -> int:
    """The daemon with probes (run as a child): ``--daemon OUT gatewayd-args...``."""
    import atexit
    import functools
    import importlib

    out, args = argv[0], argv[1:]
    marks: list[tuple[int, int]] = []
    clock = time.perf_counter_ns

    def probe(index: int, fn: object, where: str) -> object:
        @functools.wraps(fn)
        def wrapper(*a: object, **k: object) -> object:
            if where == "enter":
                marks.append((index, clock()))
                return fn(*a, **k)
            try:
                return fn(*a, **k)
            finally:
                marks.append((index, clock()))

        return wrapper

    for index, (_, module, owner, attr, where) in enumerate(PROBES):
        target = importlib.import_module(module)
        holder = getattr(target, owner) if owner else target
        if attr == "_sock_send":  # only the PUBLISH of a read, not acks or pings
            original = holder._sock_send

            def send(self: object, buf: bytes, _i: int = index, _f: object = original) -> int:
                n = _f(self, buf)
                if len(buf) > 200:
                    marks.append((_i, clock()))
                return n

            holder._sock_send = send
            continue
        setattr(holder, attr, probe(index, getattr(holder, attr), where))

    atexit.register(lambda: Path(out).write_text(json.dumps(marks)))
    from gatewayd.cli.main import main

    return main(args)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reads", type=int, default=1000)
    parser.add_argument("--interval-ms", type=float, default=5.0)
    parser.add_argument("--synchronous", choices=["full", "normal"], default="full")
    parser.add_argument("--daemon", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.daemon:
        return _daemon(args.daemon)

    from harness import Pty, Subscriber, machine, median, percentile, scan, stop, wait_for
    from run import gatewayd_config

    from gatewayd.demo.local_broker import LocalBroker, free_port

    with tempfile.TemporaryDirectory(prefix="gatewayd-timeline-") as tmp:
        work = Path(tmp)
        with LocalBroker(port=free_port(), workdir=work / "broker") as broker:
            pty = Pty(work)
            cfg = gatewayd_config(
                work / "gatewayd.toml", state_dir=work / "state", broker_port=broker.port,
                serial_port=pty.path, synchronous=args.synchronous,
            )  # fmt: skip
            out = work / "marks.json"
            with (work / "gatewayd.log").open("wb") as log:
                proc = subprocess.Popen(
                    [sys.executable, __file__, "--daemon", str(out), "run", "--config", str(cfg)],
                    stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=ROOT,
                    env=dict(os.environ, PYTHONUNBUFFERED="1"),
                )  # fmt: skip
            try:
                with Subscriber(broker.port, "gatewayd/+/scans/#") as sub:
                    seq = 0

                    def delivered() -> bool:
                        nonlocal seq
                        if sub.received:
                            return True
                        seq += 1
                        pty.write(scan(seq))
                        return False

                    wait_for(delivered, timeout=30, what="a first read delivered", interval=0.05)
                    written: dict[int, int] = {}
                    for _ in range(200 + args.reads):  # 200 warm-up reads, not counted
                        seq += 1
                        arrived = sub.expect(seq)
                        time.sleep(args.interval_ms / 1000)
                        written[seq] = time.perf_counter_ns()
                        pty.write(scan(seq))
                        if not arrived.wait(2):
                            raise RuntimeError(f"read {seq} not delivered within 2 s")
                    arrivals = dict(sub.arrivals)
            finally:
                stop(proc)
                pty.close()
            marks = json.loads(out.read_text())

    marks.sort(key=lambda m: m[1])
    times = [t for _, t in marks]
    labels = [p[0] for p in PROBES] + [ARRIVED]
    since: list[list[float]] = [[] for _ in labels]
    steps: list[list[float]] = [[] for _ in labels]
    counted = sorted(written)[200:]
    for s in counted:
        start, end = written[s], arrivals[s]
        first: dict[int, int] = {}
        for index, t in marks[bisect.bisect_left(times, start) : bisect.bisect_right(times, end + 5_000_000)]:
            first.setdefault(index, t)
        first[len(PROBES)] = end
        previous = start
        for index in range(len(labels)):
            if index == len(PROBES):  # the broker and the subscriber: from the PUBLISH on
                previous = first.get(PUBLISHED, previous)
            if index in first:
                since[index].append((first[index] - start) / 1000)
                steps[index].append((first[index] - previous) / 1000)
                previous = first[index]
    print(f"# Read timeline: {len(counted):,} reads, synchronous = {args.synchronous!r}")
    print()
    print(f"{machine()}; one read every {args.interval_ms:g} ms")
    print()
    print("| point | since the write: median µs | p90 µs | step from the point before: median µs |")
    print("|---|--:|--:|--:|")
    print("| read written to the pty master | 0 | 0 | |")
    for label, xs, ds in zip(labels, since, steps, strict=True):
        if xs:
            print(f"| {label} | {median(xs):,.0f} | {percentile(sorted(xs), 90):,.0f} | {median(ds):,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
