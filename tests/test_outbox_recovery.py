"""A damaged, emptied or vanished outbox under the real daemon: it keeps capturing.

Real SQLite files damaged the ways a site damages them (truncated, zeroed, deleted while
running, a read-only state directory), the real ``gatewayd run`` process, a real broker.
The invariants: ``seq`` never goes back or repeats, and every captured read is either
delivered or inside a gap announced by a ``gatewayd.gap/1`` event.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gatewayd.config import OutboxSettings
from gatewayd.delivery.outbox import SEQ_BLOCK, Outbox
from gatewayd.demo.local_broker import LocalBroker
from tests.mqtt_tools import DaemonProcess, Subscriber, wait_until
from tests.pty_scanner import PtyScanner
from tests.test_delivery_e2e import P, config, start

STATION_TOPIC = f"{P}/scans/dock-03"


def seed(path: Path, count: int, delivered: int) -> None:
    """An outbox the way the daemon leaves it: ``count`` scans, the first ``delivered`` acked."""
    pad = "x" * 1500  # rows over many pages, so a truncation leaves readable ones

    def build(seq: int, eid: str) -> bytes:
        return json.dumps({"seq": seq, "event_id": eid, "raw": f"OLD-{seq}", "pad": pad}).encode()

    with Outbox.open(path, OutboxSettings()) as box:
        for _ in range(count):
            box.capture(topic=STATION_TOPIC, build=build)
        box.mark_delivered(range(1, delivered + 1))
        box.checkpoint()


def scans(sub: Subscriber) -> list[dict[str, Any]]:
    return [p for p in sub.payloads(f"{P}/scans/") if p.get("schema") != "gatewayd.gap/1"]


def gaps(sub: Subscriber) -> list[dict[str, Any]]:
    return sub.payloads(f"{P}/scans/_gaps")


def alarms(sub: Subscriber) -> dict[str, str]:
    statuses = sub.payloads(f"{P}/status")
    return {a["alarm"]: a["detail"] for a in statuses[-1].get("alarms", [])} if statuses else {}


def alarms_raised(sub: Subscriber) -> set[str]:
    """Every alarm any status so far carried."""
    return {a["alarm"] for p in sub.payloads(f"{P}/status") for a in p.get("alarms", [])}


@pytest.mark.parametrize("damage", ["truncate", "zero"])
def test_a_damaged_outbox_at_start_is_set_aside_and_capture_goes_on(
    broker: LocalBroker, tmp_path: Path, scanner: PtyScanner, daemons: list[DaemonProcess], damage: str
) -> None:
    state = tmp_path / "state"
    path = state / "outbox.sqlite3"
    seed(path, 300, delivered=100)
    if damage == "truncate":
        with open(path, "r+b") as f:
            f.truncate(path.stat().st_size // 2)
    else:
        path.write_bytes(b"")
    cfg = config(tmp_path, [broker.url], broker.protocol, scanner)
    with Subscriber(broker.port, [f"{P}/#"], protocol=broker.protocol) as sub:
        d = start(daemons, cfg, tmp_path, sub)  # formerly: a DatabaseError traceback, exit 1
        sub.wait_for(f"{P}/devices/dock-03-left/state", lambda p: p["state"] == "connected")
        scanner.write(b"NEW-1\r")
        new = sub.wait_for(f"{P}/scans/dock-03", lambda p: p["raw"] == "NEW-1")
        (gap,) = sub.wait_for(f"{P}/scans/_gaps") and gaps(sub)
        assert gap["gateway"] == "e2e-gw" and gap["to_seq"] == SEQ_BLOCK
        assert new["seq"] == SEQ_BLOCK + 2 and gap["seq"] == SEQ_BLOCK + 1  # never seq 1 again
        # Salvaged undelivered reads arrive with their original seq and payload, in order.
        old = [p for p in scans(sub) if p["raw"].startswith("OLD-")]
        assert [p["raw"] for p in old] == [f"OLD-{p['seq']}" for p in old]
        assert [p["seq"] for p in old] == list(range(101, gap["from_seq"]))
        if damage == "zero":
            assert (old, gap["from_seq"]) == ([], 1)
        else:
            assert gap["from_seq"] > 101  # the intact first half was salvaged
        assert "outbox_recovered" in alarms_raised(sub)
        # It clears once the WMS has everything the recovery salvaged and announced.
        wait_until(lambda: "outbox_recovered" not in alarms(sub), what="the alarm cleared")
        assert d.terminate() == 0
    kept = sorted(p.name for p in state.iterdir() if ".damaged-" in p.name)
    assert kept and kept[0].startswith("outbox.sqlite3.damaged-")
    log = d.log()
    assert "Traceback" not in log
    assert "ERROR gatewayd.outbox: outbox: " in log and "capturing into a fresh outbox" in log


def test_an_outbox_deleted_while_running_then_kill_9_never_repeats_a_seq(
    broker: LocalBroker, tmp_path: Path, scanner: PtyScanner, daemons: list[DaemonProcess]
) -> None:
    state = tmp_path / "state"
    cfg = config(tmp_path, [broker.url], broker.protocol, scanner)
    with Subscriber(broker.port, [f"{P}/#"], protocol=broker.protocol) as sub:
        d = start(daemons, cfg, tmp_path, sub)
        sub.wait_for(f"{P}/devices/dock-03-left/state", lambda p: p["state"] == "connected")
        sent = [f"R-{i:03d}" for i in range(60)]
        for raw in sent[:20]:
            scanner.write(raw.encode() + b"\r")
        wait_until(lambda: len(scans(sub)) >= 20, what="20 scans")
        for p in state.glob("outbox.sqlite3*"):
            p.unlink()
        for raw in sent[20:40]:
            scanner.write(raw.encode() + b"\r")
        wait_until(lambda: len(scans(sub)) >= 40, what="40 scans")
        wait_until(lambda: "outbox_recovered" in alarms_raised(sub), what="the outbox_recovered alarm")
        assert (state / "outbox.sqlite3").exists()
        d.kill9()
        scanner.unplug()
        scanner.plug()
        seen = len(sub.on(f"{P}/devices/dock-03-left/state"))
        start(daemons, cfg, tmp_path, sub)
        wait_until(
            lambda: any(m.json()["state"] == "connected" for m in sub.on(f"{P}/devices/dock-03-left/state")[seen:]),
            timeout=20,
            what="scanner reopened",
        )
        for raw in sent[40:]:
            scanner.write(raw.encode() + b"\r")
        wait_until(lambda: {p["raw"] for p in scans(sub)} >= set(sent), timeout=20, what="every read delivered")
    by_seq: dict[int, str] = {}
    for p in scans(sub):
        assert by_seq.setdefault(p["seq"], p["event_id"]) == p["event_id"], f"seq {p['seq']} reused"
    assert sorted(by_seq) == list(range(1, 61))  # every read kept, nothing lost: no gap needed
    assert gaps(sub) == []


def test_a_read_only_state_directory_is_one_clear_error_and_exit_2(
    tmp_path: Path, scanner: PtyScanner
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o555)
    immutable = os.geteuid() == 0  # root writes anywhere a mode forbids; not to an immutable dir
    if immutable and subprocess.run(["chattr", "+i", str(state)], check=False).returncode != 0:
        state.chmod(0o755)
        pytest.skip("running as root without CAP_LINUX_IMMUTABLE: cannot make a directory unwritable")
    cfg = config(tmp_path, ["mqtt://127.0.0.1:1"], 5, scanner)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "gatewayd", "run", "--config", str(cfg)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(state)], check=True)
        state.chmod(0o755)
    # Exit 2: systemd's RestartPreventExitStatus=2 leaves the unit failed, not looping.
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("gatewayd: error:")]
    assert f"cannot write the state directory {state}" in line and "chown -R" in line


def test_fault_campaign_seq_never_repeats_and_nothing_is_unaccounted(
    broker: LocalBroker, tmp_path: Path, scanner: PtyScanner, daemons: list[DaemonProcess]
) -> None:
    """Short and bounded: rounds of reads, each followed by a random damage to the outbox
    (truncated, zeroed, deleted, replaced by garbage, or none) with or without kill -9.
    Afterwards every seq the WMS saw is either a delivered event or inside an announced
    gap, a seq never names two events, and a read is never published under two seqs."""
    import random

    rng = random.Random(13)
    state = tmp_path / "state"
    path = state / "outbox.sqlite3"
    cfg = config(tmp_path, [broker.url], broker.protocol, scanner)
    sent: list[str] = []
    actions: list[str] = []

    def damage(kind: str) -> None:
        if kind == "truncate" and path.exists():
            with open(path, "r+b") as f:
                f.truncate(path.stat().st_size // 2)
        elif kind == "zero" and path.exists():
            with open(path, "r+b") as f:
                f.truncate(0)
        elif kind == "delete":
            for p in state.glob("outbox.sqlite3*"):
                p.unlink()
        elif kind == "replace":
            (state / "garbage").write_bytes(b"\0garbage" * 512)
            (state / "garbage").replace(path)

    def delivered(sub: Subscriber) -> set[str]:
        return {p["raw"] for p in scans(sub)}

    def scanner_open(sub: Subscriber, since: int) -> None:
        wait_until(
            lambda: any(m.json()["state"] == "connected" for m in sub.on(f"{P}/devices/dock-03-left/state")[since:]),
            timeout=20,
            what="scanner open",
        )

    with Subscriber(broker.port, [f"{P}/#"], protocol=broker.protocol) as sub:
        d = start(daemons, cfg, tmp_path, sub)
        since = 0
        for round_ in range(7):
            scanner_open(sub, since)
            batch = [f"C{round_}-{i:02d}" for i in range(rng.randint(3, 12))]
            for raw in batch:
                scanner.write(raw.encode() + b"\r")
            sent.extend(batch)
            expected = set(sent)
            wait_until(lambda e=expected: delivered(sub) >= e, timeout=20, what=f"round {round_} delivered")
            kind = rng.choice(["truncate", "zero", "delete", "replace", "none"])
            kill = rng.random() < 0.5
            actions.append(f"{kind}{' + kill -9' if kill else ''}")
            damage(kind)
            if kill:
                d.kill9()
                scanner.unplug()
                scanner.plug()
                since = len(sub.on(f"{P}/devices/dock-03-left/state"))
                d = start(daemons, cfg, tmp_path, sub)
        # A damage the running gateway has not met yet is found by these captures.
        scanner_open(sub, since)
        final = [f"END-{i}" for i in range(3)]
        for raw in final:
            scanner.write(raw.encode() + b"\r")
        sent.extend(final)
        wait_until(lambda: delivered(sub) >= set(sent), timeout=20, what="final reads delivered")
        assert d.alive(), d.log()
    events = scans(sub)
    announced = gaps(sub)
    by_seq: dict[int, str] = {}
    for p in [*events, *announced]:
        assert by_seq.setdefault(p["seq"], p["event_id"]) == p["event_id"], f"seq {p['seq']} reused ({actions})"
    seqs_of_raw: dict[str, set[int]] = {}
    for p in events:
        seqs_of_raw.setdefault(p["raw"], set()).add(p["seq"])
    assert all(len(s) == 1 for s in seqs_of_raw.values()), f"a read under two seqs ({actions})"
    assert set(seqs_of_raw) == set(sent)
    covered = set(by_seq)
    for g in announced:
        covered |= set(range(g["from_seq"], g["to_seq"] + 1))
    assert covered >= set(range(1, max(by_seq) + 1)), f"unaccounted seqs after {actions}"
    assert "Traceback" not in "".join(x.log() for x in daemons)
    assert len({a.split()[0] for a in actions}) >= 3, actions  # the seed exercises several kinds


def test_a_damaged_print_job_store_stops_printing_not_scanning(
    broker: LocalBroker, tmp_path: Path, scanner: PtyScanner, daemons: list[DaemonProcess]
) -> None:
    """Formerly a DatabaseError traceback and exit 1 at every start: nothing captured."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "print_jobs.sqlite3").write_bytes(b"\0not a database" * 300)
    cfg = config(tmp_path, [broker.url], broker.protocol, scanner)
    with open(cfg, "a") as f:
        f.write(f'\n[[printers]]\nid = "zebra"\ndriver = "zpl"\ntransport = "file://{tmp_path / "printer.out"}"\n')
    with Subscriber(broker.port, [f"{P}/#"], protocol=broker.protocol) as sub:
        d = start(daemons, cfg, tmp_path, sub)
        sub.wait_for(f"{P}/devices/dock-03-left/state", lambda p: p["state"] == "connected")
        scanner.write(b"STILL-SCANNING\r")
        sub.wait_for(f"{P}/scans/dock-03", lambda p: p["raw"] == "STILL-SCANNING")
        detail = alarms(sub)["printing_unavailable"]
        assert "cannot open the print-job store" in detail and "scanning goes on" in detail
        sub.publish(f"{P}/request/print", {"transaction": "t1", "job_id": "J-1", "printer": "zebra",
                                           "labels": [{"lot": "A-1"}]})  # fmt: skip
        answer = sub.wait_for(f"{P}/response/print", lambda p: p.get("transaction") == "t1")
        assert answer["status"] == "error" and "printing is unavailable" in answer["error"]
        assert d.terminate() == 0
    assert (state / "print_jobs.sqlite3").read_bytes().startswith(b"\0not a database")  # kept as it was
    assert "Traceback" not in d.log()
