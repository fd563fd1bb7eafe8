"""Disk a backlog needs: bytes per captured read in the outbox database and its WAL.

    .venv/bin/python bench/outbox_disk.py [--reads 20000] [--wal-default]

Captures ``--reads`` scan events of a realistic size (a GS1 read, ~620 bytes of JSON)
into a fresh outbox in a temporary directory, nothing delivered (a broker outage), and
reports the database size, the largest WAL seen, and bytes per read. ``--wal-default``
runs with SQLite's default WAL settings instead of the outbox's, for comparison.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import tempfile
import time
from pathlib import Path

from gatewayd.config import OutboxSettings
from gatewayd.delivery import outbox as outbox_module
from gatewayd.delivery.outbox import Outbox
from gatewayd.payloads import json_bytes

SCAN = {
    "schema": "gatewayd.scan/1", "gateway": "dock-pi-03", "station": "dock-03", "step": "receiving",
    "biz_step": "urn:epcglobal:cbv:bizstep:receiving", "read_point": "urn:epc:id:sgln:9506000134352.0.3",
    "scanner": "dock-03-left", "scanned_at": "2026-11-27T10:15:02.123Z", "clock_synced": True, "symbology": "]C1",
    "raw": "]C1010950600013435210ABC123\u001d17271231", "kind": "gs1", "gtin": "09506000134352", "lot": "ABC123",
    "expiry": "2027-12-31", "serial": None, "sscc": None, "count": None,
    "ai": {"01": "09506000134352", "10": "ABC123", "17": "271231"}, "errors": [],
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reads", type=int, default=20_000)
    parser.add_argument("--wal-default", action="store_true", help="SQLite's default WAL settings")
    args = parser.parse_args()
    if args.wal_default:
        outbox_module.WAL_AUTOCHECKPOINT_PAGES = 1000  # SQLite's default
        outbox_module.JOURNAL_SIZE_LIMIT = -1  # no limit: SQLite's default
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "outbox.sqlite3"
        wal = Path(f"{path}-wal")
        payload_sizes = 0
        wal_max = 0
        started = time.perf_counter()
        with Outbox.open(path, OutboxSettings()) as box:
            for _ in range(args.reads):
                event = box.capture(
                    topic="gatewayd/dock-pi-03/scans/dock-03",
                    build=lambda seq, eid: json_bytes({**SCAN, "seq": seq, "event_id": eid}),
                )
                payload_sizes += len(event.payload)
                wal_max = max(wal_max, wal.stat().st_size if wal.exists() else 0)
            elapsed = time.perf_counter() - started
            wal_open = wal.stat().st_size if wal.exists() else 0
            db_size = path.stat().st_size
            (pages,) = box.db.execute("PRAGMA page_count").fetchone()
        with sqlite3.connect(path) as db:
            (version,) = db.execute("SELECT sqlite_version()").fetchone()
    n = args.reads
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}, "
          f"Python {platform.python_version()}, SQLite {version}")
    print(f"settings: {'SQLite defaults' if args.wal_default else 'gatewayd outbox'} "
          f"(wal_autocheckpoint={outbox_module.WAL_AUTOCHECKPOINT_PAGES}, "
          f"journal_size_limit={outbox_module.JOURNAL_SIZE_LIMIT})")
    print(f"{n} reads captured in {elapsed:.1f} s, payload {payload_sizes / n:.0f} bytes/read")
    print(f"database: {db_size} bytes ({pages} pages), {db_size / n:.0f} bytes/read")
    print(f"WAL: largest {wal_max} bytes, {wal_open} bytes at the end")
    print(f"disk for a backlog of N reads: about {db_size / n:.0f} x N + {wal_max} bytes")


if __name__ == "__main__":
    main()
