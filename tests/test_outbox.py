"""The outbox on real SQLite files: seq is gap-free and never reused, limits hold."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gatewayd.config import OutboxSettings
from gatewayd.delivery.outbox import Outbox
from gatewayd.errors import OutboxFull


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
