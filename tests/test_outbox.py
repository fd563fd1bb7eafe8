"""The outbox on real SQLite files: seq is gap-free and never reused, limits hold."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gatewayd.config import OutboxSettings
from gatewayd.delivery.outbox import (
    JOURNAL_SIZE_LIMIT,
    SEQ_BLOCK,
    WAL_AUTOCHECKPOINT_PAGES,
    Event,
    Outbox,
    Recovery,
)
from gatewayd.errors import OutboxDamaged, OutboxFull, StateUnavailable, StateUnwritable


def payload(seq: int, event_id: str) -> bytes:
    return f'{{"seq": {seq}, "event_id": "{event_id}"}}'.encode()


def test_seq_survives_reopen_and_pruning_of_every_row(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    with Outbox.open(path, OutboxSettings(retention_hours=0)) as box:
        events = [box.capture(topic="t", build=payload) for _ in range(5)]
        assert [e.seq for e in events] == [1, 2, 3, 4, 5]
        assert box.mark_delivered([1, 2, 3, 4, 5]) == 5
        assert box.prune(now=time.time() + 1) == 5
        assert box.stats().retained == 0
    with Outbox.open(path, OutboxSettings()) as box:
        assert box.last_seq == 5
        assert box.capture(topic="t", build=payload).seq == 6


def test_retained_is_kept_in_memory_and_matches_the_table(tmp_path: Path) -> None:
    # stats() no longer counts the table; what it keeps must agree with a count.
    path = tmp_path / "outbox.sqlite3"

    def counted(box: Outbox) -> int:
        return int(box.db.execute("SELECT count(*) FROM events").fetchone()[0])

    with Outbox.open(path, OutboxSettings(retention_hours=1)) as box:
        for _ in range(6):
            box.capture(topic="t", build=payload)
        box.mark_delivered([1, 2, 3, 4])
        assert box.stats().retained == counted(box) == 6
        assert box.prune(now=time.time() + 3601) == 4
        st = box.stats()
        assert (st.retained, st.first_retained_seq) == (counted(box), 5) == (2, 5)
    with Outbox.open(path, OutboxSettings()) as box:
        assert box.stats().retained == 2
        box.capture(topic="t", build=payload)
        assert box.stats().retained == counted(box) == 3


def test_a_failed_capture_leaves_no_gap(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "o.sqlite3", OutboxSettings()) as box:
        box.capture(topic="t", build=payload)

        def broken(seq: int, event_id: str) -> bytes:
            raise ValueError("cannot build")

        with pytest.raises(ValueError, match="cannot build"):
            box.capture(topic="t", build=broken)
        assert box.capture(topic="t", build=payload).seq == 2


def test_limits_refuse_new_reads_and_keep_captured_ones(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "o.sqlite3", OutboxSettings(max_events=3)) as box:
        for _ in range(3):
            box.capture(topic="t", build=payload)
        with pytest.raises(OutboxFull, match="3 undelivered events"):
            box.capture(topic="t", build=payload)
        st = box.stats()
        assert (st.depth, st.full, st.refused, st.last_seq) == (3, True, 1, 3)
        box.mark_delivered([1])
        assert not box.full
        assert box.capture(topic="t", build=payload).seq == 4
        assert [e.seq for e in box.pending(after_seq=0, limit=10)] == [2, 3, 4]


def test_byte_limit(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "o.sqlite3", OutboxSettings(max_bytes=4096)) as box:
        big = b"x" * 3000
        box.capture(topic="t", build=lambda s, e: big)
        box.capture(topic="t", build=lambda s, e: big)
        with pytest.raises(OutboxFull, match="bytes"):
            box.capture(topic="t", build=lambda s, e: big)


def test_history_keeps_delivered_events_for_replay(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "o.sqlite3", OutboxSettings()) as box:
        for _ in range(4):
            box.capture(topic="t", build=payload)
        box.mark_delivered([1, 2])
        history = box.history(from_seq=1, to_seq=4, limit=10)
        assert [(e.seq, e.delivered_at is not None) for e in history] == [(1, True), (2, True), (3, False), (4, False)]
        assert box.stats().oldest_undelivered_seq == 3
        # Delivery marks are idempotent (a redelivered PUBACK changes nothing).
        assert box.mark_delivered([1, 2]) == 0
        assert box.stats().depth == 2


def test_capture_many_commits_events_and_cursor_together_once_per_event_id(tmp_path: Path) -> None:
    path = tmp_path / "derived.sqlite3"
    with Outbox.open(path, OutboxSettings(max_events=3)) as box:
        first = box.capture_many([("t/a", "id-1", b"1"), ("t/a", "id-2", b"2")], meta={"cursor": "7"})
        assert [(e.seq, e.event_id) for e in first] == [(1, "id-1"), (2, "id-2")]
        # Derived again after a crash lost the cursor: the stored one is left out, seq stays gap-free.
        again = box.capture_many([("t/a", "id-2", b"2"), ("t/b", "id-3", b"3")], meta={"cursor": "8"})
        assert [(e.seq, e.event_id) for e in again] == [(3, "id-3")]
        assert box.get_meta("cursor") == "8"
        assert box.capture_many([], meta={"cursor": "9"}) == []  # a cursor alone, even when full
        assert box.get_meta("cursor") == "9"
        with pytest.raises(OutboxFull):
            box.capture_many([("t/a", "id-4", b"4")], meta={"cursor": "10"})
        assert box.get_meta("cursor") == "9"  # nothing written
        assert box.depth == 3 and box.last_seq == 3
    with Outbox.open(path, OutboxSettings()) as box:
        assert [e.event_id for e in box.by_event_ids(["id-3", "id-1", "nope"])] == ["id-1", "id-3"]


def test_prune_keeps_what_another_consumer_has_not_taken(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "o.sqlite3", OutboxSettings(retention_hours=0)) as box:
        for _ in range(4):
            box.capture(topic="t", build=payload)
        box.mark_delivered([1, 2, 3, 4])
        assert box.prune(now=time.time() + 1, keep_from_seq=3) == 2
        assert [e.seq for e in box.history(from_seq=1, to_seq=4, limit=10)] == [3, 4]


# -- protecting the history: damaged, emptied, vanished databases; seq.hwm --------------


def fill(box: Outbox, n: int) -> list[int]:
    return [box.capture(topic="t", build=payload).seq for _ in range(n)]


def gap_events(box: Outbox) -> list[dict[str, object]]:
    return [json.loads(e.payload) for e in box.history(from_seq=1, to_seq=10**9, limit=10**6) if e.topic == "_gaps"]


def kept_files(directory: Path, what: str) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if f".{what}-" in p.name)


def test_seq_high_water_mark_is_reserved_in_blocks(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "outbox.sqlite3", OutboxSettings()) as box:
        fill(box, 3)
        assert (tmp_path / "seq.hwm").read_text() == f"{SEQ_BLOCK}\n"
        fill(box, SEQ_BLOCK - 3)
        assert (tmp_path / "seq.hwm").read_text() == f"{SEQ_BLOCK}\n"  # one fsync per block
        fill(box, 1)
        assert (tmp_path / "seq.hwm").read_text() == f"{2 * SEQ_BLOCK}\n"
    assert not (tmp_path / "seq.hwm.tmp").exists()


def test_a_truncated_outbox_at_start_is_kept_aside_salvaged_and_seq_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    big = b"x" * 2000  # enough rows for many pages, so a truncation leaves readable ones
    with Outbox.open(path, OutboxSettings()) as box:
        for _ in range(300):
            box.capture(topic="t", build=lambda s, e: payload(s, e)[:-1] + b', "pad": "%s"}' % big)
        box.mark_delivered(range(1, 101))
        box.checkpoint()
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    recoveries: list[Recovery] = []
    with Outbox.open(path, OutboxSettings(), on_recovery=recoveries.append) as box:
        (rec,) = recoveries
        assert rec.problem.startswith("the file is truncated ("), rec.problem
        assert kept_files(tmp_path, "damaged") == sorted(f.name for f in rec.kept_as)
        assert 0 < rec.salvaged < 300
        salvaged = box.history(from_seq=1, to_seq=300, limit=1000)
        # Rows are kept only whole: one whose payload ran into the lost half is not.
        assert [e.seq for e in salvaged] == list(range(1, rec.salvaged + 1))
        assert all(json.loads(e.payload)["seq"] == e.seq for e in salvaged)
        assert [e.delivered_at is not None for e in salvaged] == [e.seq <= 100 for e in salvaged]
        # Everything that may have been used but was not salvaged is announced, once.
        (gap,) = gap_events(box)
        assert (gap["from_seq"], gap["to_seq"]) == (rec.salvaged + 1, SEQ_BLOCK)
        assert gap["schema"] == "gatewayd.gap/1" and gap["seq"] == SEQ_BLOCK + 1
        assert box.capture(topic="t", build=payload).seq == SEQ_BLOCK + 2
        # Undelivered salvaged rows and the gap event wait for delivery, in seq order.
        pending = [e.seq for e in box.pending(after_seq=0, limit=1000)]
        assert pending == [*range(101, rec.salvaged + 1), SEQ_BLOCK + 1, SEQ_BLOCK + 2]


def test_a_zero_byte_outbox_never_restarts_seq(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    with Outbox.open(path, OutboxSettings()) as box:
        fill(box, 300)
    path.write_bytes(b"")
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    recoveries: list[Recovery] = []
    with Outbox.open(path, OutboxSettings(), on_recovery=recoveries.append) as box:
        assert "empty (0 bytes)" in recoveries[0].problem
        (gap,) = gap_events(box)
        assert (gap["from_seq"], gap["to_seq"]) == (1, SEQ_BLOCK)
        assert box.capture(topic="t", build=payload).seq > 300


def test_a_missing_outbox_with_a_high_water_mark_is_announced(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    with Outbox.open(path, OutboxSettings()) as box:
        fill(box, 5)
    for p in tmp_path.glob("outbox.sqlite3*"):
        p.unlink()
    with Outbox.open(path, OutboxSettings()) as box:
        assert "missing" in box.recoveries[0].problem
        assert [(g["from_seq"], g["to_seq"]) for g in gap_events(box)] == [(1, SEQ_BLOCK)]
        assert box.capture(topic="t", build=payload).seq == SEQ_BLOCK + 2


def test_an_outbox_behind_its_high_water_mark_is_announced(tmp_path: Path) -> None:
    """A database restored from an old backup must not hand out seqs again."""
    import shutil

    path = tmp_path / "outbox.sqlite3"
    with Outbox.open(path, OutboxSettings()) as box:
        fill(box, 10)
    shutil.copy(path, tmp_path / "backup")
    with Outbox.open(path, OutboxSettings()) as box:
        fill(box, SEQ_BLOCK + 10)
    for p in tmp_path.glob("outbox.sqlite3*"):
        p.unlink()
    shutil.copy(tmp_path / "backup", path)
    with Outbox.open(path, OutboxSettings()) as box:
        assert "behind the seq high-water mark" in box.recoveries[0].problem
        assert [(g["from_seq"], g["to_seq"]) for g in gap_events(box)] == [(11, 2 * SEQ_BLOCK)]
        assert box.capture(topic="t", build=payload).seq == 2 * SEQ_BLOCK + 2


def test_an_outbox_deleted_while_running_is_copied_back_whole(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    with Outbox.open(path, OutboxSettings()) as box:
        fill(box, 50)
        box.mark_delivered(range(1, 21))
        for p in tmp_path.glob("outbox.sqlite3*"):
            p.unlink()
        # The next capture notices before writing into the unlinked file.
        assert box.capture(topic="t", build=payload).seq == 51
        (rec,) = box.recoveries
        assert "was deleted" in rec.problem
        assert (rec.salvaged, rec.undelivered, rec.gaps) == (50, 30, ())
        assert kept_files(tmp_path, "vanished") == [rec.kept_as[0].name]
    with Outbox.open(path, OutboxSettings()) as box:
        assert box.recoveries == []
        assert [e.seq for e in box.pending(after_seq=0, limit=100)] == list(range(21, 52))
        assert box.capture(topic="t", build=payload).seq == 52


def test_an_outbox_replaced_while_running_keeps_both_files(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    with Outbox.open(path, OutboxSettings()) as box:
        fill(box, 7)
        (tmp_path / "other").write_bytes(b"not a database at all")
        (tmp_path / "other").replace(path)
        rec = box.check()
        assert rec is not None and "replaced by another file" in rec.problem
        assert kept_files(tmp_path, "foreign") and kept_files(tmp_path, "vanished")
        assert (rec.salvaged, rec.gaps) == (7, ())
        assert box.capture(topic="t", build=payload).seq == 8
        assert box.check() is None


def test_an_outbox_truncated_while_running_is_recovered_by_the_next_capture(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    with Outbox.open(path, OutboxSettings()) as box:
        fill(box, 20)
        box.checkpoint()
        with open(path, "r+b") as f:
            f.truncate(0)
        event = box.capture(topic="t", build=payload)
        (rec,) = box.recoveries
        assert "emptied" in rec.problem
        # Nothing could be salvaged from the emptied file: everything reserved is a gap.
        assert [(g.from_seq, g.to_seq) for g in rec.gaps] == [(1, 20)]
        assert event.seq == 22  # 21 is the gap announcement
        assert [e.seq for e in box.pending(after_seq=0, limit=10)] == [21, 22]


def test_an_unwritable_state_directory_is_one_clear_error(tmp_path: Path) -> None:
    import os
    import subprocess

    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o555)
    immutable = os.geteuid() == 0  # root writes anywhere a mode forbids; not to an immutable dir
    if immutable and subprocess.run(["chattr", "+i", str(state)], check=False).returncode != 0:
        pytest.skip("running as root without CAP_LINUX_IMMUTABLE: cannot make a directory unwritable")
    try:
        with pytest.raises(StateUnwritable) as info:
            Outbox.open(state / "outbox.sqlite3", OutboxSettings())
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(state)], check=True)
        state.chmod(0o755)
    message = str(info.value)
    assert message.startswith(f"cannot write the state directory {state} (")
    assert "chown -R" in message and "gateway.state_dir" in message


def test_inspect_reports_a_damaged_outbox_and_touches_nothing(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    path.write_bytes(b"garbage" * 100)
    with pytest.raises(OutboxDamaged, match="not an SQLite database"):
        Outbox.open(path, OutboxSettings(), inspect=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outbox.sqlite3"]


def test_the_wal_stays_bounded(tmp_path: Path) -> None:
    """Each capture appends a few pages (~15 KB) to the WAL; with SQLite's defaults it grew
    to 4 MB before a checkpoint, and stayed that size. Now a checkpoint runs every 1 MiB."""
    path = tmp_path / "outbox.sqlite3"
    wal = Path(f"{path}-wal")
    largest = 0
    with Outbox.open(path, OutboxSettings(synchronous="off")) as box:  # the WAL is the same, faster
        for _ in range(1500):
            box.capture(topic="t", build=payload)
            largest = max(largest, wal.stat().st_size)
        box.checkpoint()
    assert largest <= 1024 * 1024 + 16 * 4096, largest  # README "Delivery and durability"
    assert WAL_AUTOCHECKPOINT_PAGES * 4096 <= JOURNAL_SIZE_LIMIT  # the limit never cuts a live WAL


def test_an_outbox_truncated_under_a_drain_is_recovered_there(tmp_path: Path) -> None:
    """The header survives a truncation to half: the drain's query finds the damage."""
    path = tmp_path / "outbox.sqlite3"
    big = b"x" * 2000
    with Outbox.open(path, OutboxSettings()) as box:
        for _ in range(300):
            box.capture(topic="t", build=lambda s, e: payload(s, e)[:-1] + b', "pad": "%s"}' % big)
        box.checkpoint()
        with open(path, "r+b") as f:
            f.truncate(path.stat().st_size // 2)
        assert box.check() is None  # same file, intact header: the stat cannot tell
        box.db.execute("PRAGMA shrink_memory")  # what the connection cached must be read again
        events = box.pending(after_seq=0, limit=1000)
        (rec,) = box.recoveries
        assert 0 < rec.salvaged < 300
        assert [e.seq for e in events] == [*range(1, rec.salvaged + 1), 301]  # 301: the gap announcement
        assert [(g.from_seq, g.to_seq) for g in rec.gaps] == [(rec.salvaged + 1, 300)]


def test_a_full_disk_at_start_is_retried_not_a_permanent_error(tmp_path: Path) -> None:
    """ENOSPC may pass (a log rotated, a backlog drained): exit 1 so systemd restarts,
    unlike a permission problem (exit 2). /dev/full fails every write with ENOSPC."""
    (tmp_path / "seq.hwm.tmp").symlink_to("/dev/full")
    with pytest.raises(StateUnavailable, match=r"\(No space left on device\); will retry"):
        Outbox.open(tmp_path / "outbox.sqlite3", OutboxSettings())


def test_a_state_directory_deleted_while_running_is_rebuilt(tmp_path: Path) -> None:
    import shutil

    state = tmp_path / "state"
    with Outbox.open(state / "outbox.sqlite3", OutboxSettings()) as box:
        fill(box, 5)
        shutil.rmtree(state)
        assert box.capture(topic="t", build=payload).seq == 6
        assert [e.seq for e in box.pending(after_seq=0, limit=10)] == [1, 2, 3, 4, 5, 6]
        assert (state / "seq.hwm").read_text() == f"{SEQ_BLOCK}\n"


def test_a_recovery_that_fails_is_tried_again_by_the_next_capture(tmp_path: Path) -> None:
    """A recovery stopped half way (here the directory cannot be written) leaves no closed
    outbox behind: reads are refused like on a full disk until a capture recovers."""
    import os
    import subprocess

    state = tmp_path / "state"
    with Outbox.open(state / "outbox.sqlite3", OutboxSettings()) as box:
        fill(box, 5)
        (state / "outbox.sqlite3").write_bytes(b"")
        state.chmod(0o555)
        immutable = os.geteuid() == 0  # root writes anywhere a mode forbids; not to an immutable dir
        if immutable and subprocess.run(["chattr", "+i", str(state)], check=False).returncode != 0:
            state.chmod(0o755)
            pytest.skip("running as root without CAP_LINUX_IMMUTABLE: cannot make a directory unwritable")
        try:
            with pytest.raises(PermissionError):
                box.capture(topic="t", build=payload)
            with pytest.raises(sqlite3.OperationalError, match="being recovered"):
                box.capture(topic="t", build=payload)
            assert box.pending(after_seq=0, limit=10) == []
            assert box.stats().last_seq == 5
        finally:
            if immutable:
                subprocess.run(["chattr", "-i", str(state)], check=True)
            state.chmod(0o755)
        # Closing the connection in the failed attempt checkpointed the WAL, which held
        # every page of this small outbox, back into the emptied file: nothing was lost.
        event = box.capture(topic="t", build=payload)
        assert event.seq == 6
        assert [e.seq for e in box.pending(after_seq=0, limit=10)] == [1, 2, 3, 4, 5, 6]
        assert box.stats().last_seq == 6


def test_a_gap_is_announced_once_across_recoveries(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    with Outbox.open(path, OutboxSettings()) as box:
        fill(box, 10)
        box.db.execute("DELETE FROM events WHERE seq BETWEEN 4 AND 6")  # rows a damaged page took
        for _ in range(2):  # deleted twice under the running gateway: two recoveries
            path.unlink()
            fill(box, 1)
        ranges = [(g["from_seq"], g["to_seq"]) for g in gap_events(box)]
        assert ranges == [(4, 6)]  # announced by the first recovery only


def test_two_outboxes_in_one_state_directory_keep_their_own_marks(tmp_path: Path) -> None:
    """The scan outbox and the EPCIS one share state_dir: one's seqs must not make the
    other look behind its mark (a false recovery, and gaps announced for nothing)."""
    with Outbox.open(tmp_path / "outbox.sqlite3", OutboxSettings()) as scans:
        fill(scans, 3)
    with Outbox.open(tmp_path / "epcis.sqlite3", OutboxSettings(), gap_event=None) as docs:
        fill(docs, 2 * SEQ_BLOCK + 5)
    with (
        Outbox.open(tmp_path / "outbox.sqlite3", OutboxSettings()) as scans,
        Outbox.open(tmp_path / "epcis.sqlite3", OutboxSettings(), gap_event=None) as docs,
    ):
        assert (scans.recoveries, docs.recoveries) == ([], [])
        assert (scans.last_seq, docs.last_seq) == (3, 2 * SEQ_BLOCK + 5)
    assert (tmp_path / "seq.hwm").read_text() == f"{SEQ_BLOCK}\n"
    assert (tmp_path / "epcis.seq.hwm").read_text() == f"{3 * SEQ_BLOCK}\n"


def test_a_capture_is_durable_only_once_a_sync_covers_it(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "o.sqlite3", OutboxSettings()) as box:
        assert box.deferred_sync
        writes: list[int] = []
        box.on_write = lambda: writes.append(box.last_seq)
        box.capture(topic="t", build=payload)
        point = box.sync_point()
        box.capture(topic="t", build=payload)
        assert (box.durable_seq, writes) == (0, [1, 2])
        box.sync()
        box.synced(point)
        assert box.durable_seq == 1  # the second capture came after the sync started
        box.synced(box.sync_point())
        assert box.durable_seq == 2
        assert box.db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL: no fsync per commit
    with Outbox.open(tmp_path / "normal" / "o.sqlite3", OutboxSettings(synchronous="normal")) as box:
        box.capture(topic="t", build=payload)
        assert (box.deferred_sync, box.durable_seq) == (False, 1)


def boot_id(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str) -> None:
    path = tmp_path / "boot_id"
    path.write_text(f"{value}\n")
    monkeypatch.setenv("GATEWAYD_BOOT_ID_FILE", str(path))


def crash(box: Outbox) -> None:
    """Stop like kill -9: no sync, no clean close, outbox.running left behind."""
    box._running_written = False
    box.close()


@pytest.mark.parametrize(
    ("stop", "reboot", "gap"),
    [
        ("crash", True, (4, SEQ_BLOCK)),  # a power cut may have lost seqs a WMS saw
        ("crash", False, None),  # kill -9: the page cache kept every write
        ("clean", True, None),  # everything was synced at close
    ],
)
def test_after_an_unclean_stop_and_a_reboot_the_reserved_block_is_skipped_and_announced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop: str, reboot: bool, gap: tuple[int, int] | None
) -> None:
    path = tmp_path / "outbox.sqlite3"
    boot_id(monkeypatch, tmp_path, "boot-1")
    box = Outbox.open(path, OutboxSettings())
    assert (tmp_path / "outbox.running").read_text() == "boot-1\n"
    for _ in range(3):
        box.capture(topic="t", build=payload)
    if stop == "crash":
        crash(box)
        assert (tmp_path / "outbox.running").exists()
    else:
        box.close()
        assert not (tmp_path / "outbox.running").exists()
    if reboot:
        boot_id(monkeypatch, tmp_path, "boot-2")
    with Outbox.open(path, OutboxSettings()) as box:
        assert box.durable_seq == box.last_seq  # synced at open, gap announcement included
        nxt = box.capture(topic="t", build=payload).seq
        announced = box.history(from_seq=4, to_seq=SEQ_BLOCK + 1, limit=10)
        if gap is None:
            assert (nxt, announced[0].topic) == (4, "t")
        else:
            assert nxt == SEQ_BLOCK + 2
            (event,) = [e for e in announced if e.topic == "_gaps"]
            body = json.loads(event.payload)
            assert (event.seq, body["from_seq"], body["to_seq"]) == (SEQ_BLOCK + 1, *gap)
            assert "reboot" in body["reason"]


def test_outbox_running_is_rebuilt_with_a_deleted_state_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without it, a power cut after the rebuild would look like a clean stop."""
    import shutil

    boot_id(monkeypatch, tmp_path, "boot-1")
    state = tmp_path / "state"
    with Outbox.open(state / "outbox.sqlite3", OutboxSettings()) as box:
        box.capture(topic="t", build=payload)
        shutil.rmtree(state)
        box.capture(topic="t", build=payload)
        assert (state / "outbox.running").read_text() == "boot-1\n"
    assert not (state / "outbox.running").exists()


class Live:
    """A publisher as Outbox.capture(live=) sees it: ``ready`` says yes or no, ``send`` calls ``on_send``."""

    def __init__(self, on_send: Callable[[Event], None] = lambda event: None, *, ready: bool = True) -> None:
        self.on_send = on_send
        self.is_ready = ready
        self.asked: list[int] = []

    def ready(self, seq: int) -> bool:
        self.asked.append(seq)
        return self.is_ready

    def send(self, event: Event) -> None:
        self.on_send(event)


def test_a_live_read_is_recorded_whole_then_sent_then_committed(tmp_path: Path) -> None:
    from gatewayd.delivery.outbox import LiveRecord

    path = tmp_path / "outbox.sqlite3"
    with Outbox.open(path, OutboxSettings()) as box:
        box.capture(topic="t", build=payload)
        sent: list[tuple[int, int, Event | None]] = []

        def on_send(event: Event) -> None:
            rows = box.db.execute("SELECT count(*) FROM events WHERE seq = ?", (event.seq,)).fetchone()[0]
            seq, recorded = LiveRecord(tmp_path / "seq.live").read()  # another map of the file
            assert seq == event.seq
            sent.append((event.seq, rows, recorded))

        live = box.capture(topic="scans/dock-03", build=payload, live=Live(on_send))
        assert sent == [(2, 0, live)]  # in seq.live, not yet in the outbox, when it goes out
        not_now = Live(on_send, ready=False)
        waiting = box.capture(topic="t", build=payload, live=not_now)
        assert (not_now.asked, len(sent)) == ([3], 1)  # asked, not sent: committed, for the drain

        def broken(event: Event) -> None:
            raise RuntimeError("link bug")

        failed = box.capture(topic="t", build=payload, live=Live(broken))  # committed all the same
        rows = box.history(from_seq=1, to_seq=10, limit=10)
        assert [(e.seq, e.event_id, e.payload) for e in rows[1:]] == [
            (e.seq, e.event_id, e.payload) for e in (live, waiting, failed)
        ]
        assert box.depth == 4
        # Too big to record: committed first, and the sender is not even asked.
        big = Live(on_send)
        box.capture(topic="t", build=lambda seq, eid: b"x" * 70_000, live=big)
        assert (big.asked, len(sent)) == ([], 1)


_KILLED_IN_THE_WINDOW = """
import os, signal, sys
from pathlib import Path
from gatewayd.config import OutboxSettings
from gatewayd.delivery.outbox import Outbox

def build(seq, event_id):
    return b'{"seq": %d}' % seq

box = Outbox.open(Path(sys.argv[1]), OutboxSettings())
for _ in range(3):
    box.capture(topic="t", build=build)

class Live:
    def ready(self, seq):
        return True

    def send(self, event):
        print(event.seq, event.event_id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # sent, and killed before the commit

box.capture(topic="scans/dock-03", build=build, live=Live())
"""


@pytest.mark.parametrize("record", ["intact", "damaged"])
def test_a_kill_between_publish_and_commit_loses_nothing_and_reuses_no_seq(tmp_path: Path, record: str) -> None:
    import subprocess
    import sys

    path = tmp_path / "outbox.sqlite3"
    command = [sys.executable, "-c", _KILLED_IN_THE_WINDOW, str(path)]
    run = subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)
    assert run.returncode == -9, run.stderr
    seq, event_id = run.stdout.split()
    assert seq == "4"
    if record == "damaged":
        live = tmp_path / "seq.live"
        data = bytearray(live.read_bytes())
        data[40] ^= 0xFF  # inside the recorded bytes: the CRC no longer matches
        live.write_bytes(bytes(data))
    with Outbox.open(path, OutboxSettings()) as box:
        rows = box.history(from_seq=1, to_seq=10, limit=10)
        nxt = box.capture(topic="t", build=payload)
        if record == "intact":
            # Written from seq.live: delivered again, the same event the broker may have.
            assert [(e.seq, e.topic) for e in rows] == [(1, "t"), (2, "t"), (3, "t"), (4, "scans/dock-03")]
            assert (rows[3].event_id, rows[3].payload, box.first_undelivered_seq()) == (event_id, b'{"seq": 4}', 1)
            assert nxt.seq == 5
        else:
            # Its content is lost, but its seq is never given to another read: announced.
            assert [g["from_seq"] for g in gap_events(box)] == [4]
            assert (gap_events(box)[0]["to_seq"], nxt.seq) == (4, 6)


REFUSE_INSERTS = (
    "CREATE TEMP TRIGGER refuse BEFORE INSERT ON main.events "
    "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
)


def test_a_failed_commit_after_publish_keeps_the_read_and_writes_it_first(tmp_path: Path) -> None:
    from gatewayd.delivery.outbox import CommitDeferred

    path = tmp_path / "outbox.sqlite3"
    box = Outbox.open(path, OutboxSettings())
    box.capture(topic="t", build=payload)
    # SQLite's own refusal, as from a full disk, for every insert until it is dropped.
    box.db.execute(REFUSE_INSERTS)
    with pytest.raises(CommitDeferred, match="seq 2 was published live") as deferred:
        box.capture(topic="scans/dock-03", build=payload, live=Live())
    kept = deferred.value.event
    with pytest.raises(sqlite3.Error, match="disk is full"):
        box.capture(topic="t", build=payload)  # no read after it until it is written
    assert box.write_unwritten() is False
    box.db.execute("DROP TRIGGER refuse")
    assert box.write_unwritten() is True  # housekeeping writes it
    after = box.capture(topic="t", build=payload)
    assert [(e.seq, e.event_id, e.payload) for e in box.history(from_seq=2, to_seq=9, limit=9)] == [
        (2, kept.event_id, kept.payload),
        (3, after.event_id, after.payload),
    ]
    # Still unwritten when the gateway stops: seq.live is synced and the stop is not
    # called clean (outbox.running stays), so even a reboot cannot hand its seq out again;
    # the next start writes it from seq.live.
    box.db.execute(REFUSE_INSERTS)
    with pytest.raises(CommitDeferred):
        box.capture(topic="scans/dock-03", build=payload, live=Live())
    box.close()
    assert (tmp_path / "outbox.running").exists()
    with Outbox.open(path, OutboxSettings()) as box:
        (row,) = box.history(from_seq=4, to_seq=4, limit=1)
        assert (row.topic, box.capture(topic="t", build=payload).seq) == ("scans/dock-03", 5)


def test_a_read_left_unwritten_goes_into_the_outbox_a_recovery_makes(tmp_path: Path) -> None:
    from gatewayd.delivery.outbox import CommitDeferred

    path = tmp_path / "outbox.sqlite3"
    with Outbox.open(path, OutboxSettings()) as box:
        fill(box, 3)
        box.db.execute(REFUSE_INSERTS)  # on this connection only: a recovery opens a fresh one
        with pytest.raises(CommitDeferred) as deferred:
            box.capture(topic="scans/dock-03", build=payload, live=Live())
        path.unlink()  # the outbox deleted under the running gateway
        after = box.capture(topic="t", build=payload)
        assert box.recoveries and gap_events(box) == []  # seq 4 went out, and it is kept: no gap
        rows = box.history(from_seq=1, to_seq=10, limit=10)
        assert [(e.seq, e.event_id) for e in rows] == [
            *[(e.seq, e.event_id) for e in rows[:3]],
            (4, deferred.value.event.event_id),
            (5, after.event_id),
        ]


def test_a_live_read_whose_commit_finds_the_outbox_damaged_goes_into_the_recovered_one(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    with Outbox.open(path, OutboxSettings()) as box:
        fill(box, 300)
        with contextlib.closing(sqlite3.connect(path)) as other:  # so the gateway's page cache is stale
            other.execute("INSERT INTO meta (key, value) VALUES ('touched', '1')")
            other.commit()
            other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        with open(path, "r+b") as f:
            f.truncate(8192)  # the header intact: only the write finds the damage
        sent: list[Event] = []
        event = box.capture(topic="scans/dock-03", build=payload, live=Live(sent.append))
        assert sent == [event] and box.recoveries  # sent first, then the commit found the damage
        (row,) = box.history(from_seq=event.seq, to_seq=event.seq, limit=1)
        assert (row.event_id, row.payload) == (event.event_id, event.payload)
        assert all(not g["from_seq"] <= event.seq <= g["to_seq"] for g in gap_events(box))
        assert box.capture(topic="t", build=payload).seq > event.seq


@pytest.mark.parametrize("damage", ["delete", "empty", "replace"])
def test_a_live_read_sent_over_an_outbox_lost_under_it_goes_into_the_recovered_one(
    tmp_path: Path, damage: str
) -> None:
    path = tmp_path / "outbox.sqlite3"
    with Outbox.open(path, OutboxSettings()) as box:
        fill(box, 5)
        if damage == "delete":
            path.unlink()
        elif damage == "empty":
            path.write_bytes(b"")
        else:
            (tmp_path / "other").write_bytes(b"not a database at all")
            (tmp_path / "other").replace(path)
        sent: list[Event] = []
        event = box.capture(topic="scans/dock-03", build=payload, live=Live(sent.append))
        # Sent first; the file check that follows the send finds the loss, and the recovery
        # writes the read it owes into the fresh outbox: no gap for it, no seq given twice.
        assert sent == [event] and len(box.recoveries) == 1
        (row,) = box.history(from_seq=event.seq, to_seq=event.seq, limit=1)
        assert (row.event_id, row.payload) == (event.event_id, event.payload)
        assert all(not g["from_seq"] <= event.seq <= g["to_seq"] for g in gap_events(box))
        after = box.capture(topic="t", build=payload, live=Live(sent.append))
        seqs = [e.seq for e in box.history(from_seq=1, to_seq=100, limit=100)]
        assert after.seq > event.seq and len(seqs) == len(set(seqs))
