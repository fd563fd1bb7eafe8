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
