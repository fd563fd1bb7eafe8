"""A power cut under the real daemon: reads reach the WMS before their fsync completes.

The daemon runs with two test seams: ``GATEWAYD_TEST_SNAPSHOT_DIR`` copies the outbox
files at every completed sync (the disk a power cut at that moment leaves), and
``GATEWAYD_BOOT_ID_FILE`` stands for the kernel's boot id, so a restart can look like a
reboot. The rules (README "Delivery and durability"): a seq a subscriber has seen is
never given to other content, the seqs that may have been lost are announced as void,
and no read whose sync had completed is lost.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from gatewayd.delivery.outbox import SEQ_BLOCK
from gatewayd.demo.local_broker import LocalBroker
from tests.mqtt_tools import DaemonProcess, Subscriber, wait_online, wait_until
from tests.pty_scanner import PtyScanner
from tests.test_delivery_e2e import P, config, stream

GAP_SCHEMA = "gatewayd.gap/1"


def scans(sub: Subscriber) -> list[dict[str, Any]]:
    return [p for p in sub.payloads(f"{P}/scans/") if p.get("schema") != GAP_SCHEMA]


def gaps(sub: Subscriber) -> list[dict[str, Any]]:
    return sub.payloads(f"{P}/scans/_gaps")


def last_seq(db_dir: Path) -> int:
    # closing(): a sqlite3 connection's own "with" does not close it, and one left to the
    # garbage collector deletes its -wal and -shm at an unknown moment.
    with contextlib.closing(sqlite3.connect(db_dir / "outbox.sqlite3")) as db:
        return int(db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])


def synced_past(snapshots: Path, seq: int) -> Path | None:
    """The latest copy the sync seam took, once one holds ``seq`` durably."""
    if not snapshots.exists():
        return None
    taken = sorted((p for p in snapshots.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    if taken and int((taken[-1] / "durable_seq").read_text()) >= seq:
        return taken[-1]
    return None


def start(
    daemons: list[DaemonProcess], cfg: Path, tmp_path: Path, sub: Subscriber, env: dict[str, str]
) -> DaemonProcess:
    since = len(sub.on(f"{P}/status"))
    d = DaemonProcess(cfg, tmp_path, env=env).start()
    daemons.append(d)
    wait_online(sub, d, root=P, since=since)
    return d


def test_a_power_cut_never_gives_a_seen_seq_to_another_read(
    broker: LocalBroker, tmp_path: Path, scanner: PtyScanner, daemons: list[DaemonProcess]
) -> None:
    state = tmp_path / "state"
    snapshots = tmp_path / "snapshots"
    boot = tmp_path / "boot_id"
    boot.write_text("boot-before-the-cut\n")
    env = {"GATEWAYD_BOOT_ID_FILE": str(boot), "GATEWAYD_TEST_SNAPSHOT_DIR": str(snapshots)}
    cfg = config(tmp_path, [broker.url], broker.protocol, scanner)
    total = 150
    with Subscriber(broker.port, [f"{P}/#"], protocol=broker.protocol) as sub:
        d = start(daemons, cfg, tmp_path, sub, env)
        sub.wait_for(f"{P}/devices/dock-03-left/state", lambda p: p["state"] == "connected")
        sent: set[str] = set()
        stream(scanner, 0, 30, sent).join(30)
        # The power cut comes right after the sync that made the first 30 reads durable:
        # the disk keeps what it wrote, nothing after it, and the WMS sees 120 reads more.
        cut = wait_until(lambda: synced_past(snapshots, 30), timeout=30, what="the first 30 reads synced")
        stream(scanner, 30, total - 30, sent).join(30)
        wait_until(lambda: len(scans(sub)) >= total, timeout=30, what="every read at the WMS")
        d.kill9()
        seen_before = {p["seq"]: p for p in scans(sub)}
        assert sorted(seen_before) == list(range(1, total + 1))
        durable = int((cut / "durable_seq").read_text())
        on_disk = last_seq(cut)
        assert durable <= on_disk < total
        for suffix in ("", "-wal", "-shm"):
            (state / f"outbox.sqlite3{suffix}").unlink(missing_ok=True)
        for name in ("outbox.sqlite3", "outbox.sqlite3-wal"):  # what the seam copied
            if (cut / name).exists():
                shutil.copyfile(cut / name, state / name)
        # seq.hwm stays: each of its writes is fsynced before a seq above it is used.
        boot.write_text("boot-after-the-cut\n")
        scanner.unplug()
        scanner.plug()
        seen = len(sub.on(f"{P}/devices/dock-03-left/state"))
        d2 = start(daemons, cfg, tmp_path, sub, env)
        wait_until(
            lambda: any(m.json()["state"] == "connected" for m in sub.on(f"{P}/devices/dock-03-left/state")[seen:]),
            timeout=20,
            what="scanner reopened",
        )
        (gap,) = sub.wait_for(f"{P}/scans/_gaps") and gaps(sub)
        assert (gap["from_seq"], gap["to_seq"], gap["seq"]) == (on_disk + 1, SEQ_BLOCK, SEQ_BLOCK + 1)
        assert "reboot" in gap["reason"]
        after = [f"AFTER-{i}" for i in range(5)]
        for raw in after:
            scanner.write(raw.encode() + b"\r")
        wait_until(lambda: {p["raw"] for p in scans(sub)} >= set(after), timeout=20, what="new reads delivered")
        assert d2.terminate() == 0
    new = [p for p in scans(sub) if p["raw"].startswith("AFTER-")]
    assert [p["seq"] for p in new] == list(range(SEQ_BLOCK + 2, SEQ_BLOCK + 7))
    # Every seq the WMS ever saw names one read only; the durable ones all survived.
    by_seq: dict[int, dict[str, Any]] = {}
    for p in scans(sub):
        assert by_seq.setdefault(p["seq"], p) == p, f"seq {p['seq']} given to another read"
    assert all(seen_before[s] == by_seq[s] for s in range(1, on_disk + 1))
    assert set(range(1, durable + 1)) <= set(by_seq)
    assert "Traceback" not in d2.log()
