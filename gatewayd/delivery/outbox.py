"""The outbox: every captured read, committed to SQLite before anything is published.

README "Delivery and durability": a read is *captured* once its row is committed
(WAL, ``synchronous=FULL`` by default, so it survives ``kill -9`` and power loss). ``seq``
is per gateway, +1 per captured read, gap-free and never reused: the next value is one
more than the newest row, and before pruning deletes rows it is written to the ``meta``
table in the same transaction (``seq_floor``), so a failed insert leaves no hole and pruning
never lets a number come back.

Rows are marked delivered only when the broker acknowledged them (PUBACK). Delivered rows
stay for ``retention_hours`` so ``replay`` can re-publish them.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from gatewayd.clock import uuid7
from gatewayd.config import OutboxSettings
from gatewayd.errors import OutboxFull

__all__ = ["Event", "Outbox", "OutboxStats"]

log = logging.getLogger("gatewayd.outbox")

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq          INTEGER PRIMARY KEY,
    event_id     TEXT    NOT NULL UNIQUE,
    topic        TEXT    NOT NULL,
    payload      BLOB    NOT NULL,
    captured_at  REAL    NOT NULL,
    delivered_at REAL
);
CREATE INDEX IF NOT EXISTS events_undelivered ON events (seq) WHERE delivered_at IS NULL;
CREATE INDEX IF NOT EXISTS events_delivered_at ON events (delivered_at) WHERE delivered_at IS NOT NULL;
"""


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    event_id: str
    topic: str
    payload: bytes
    captured_at: float
    delivered_at: float | None = None


@dataclass(frozen=True, slots=True)
class OutboxStats:
    depth: int  # captured, not yet acknowledged by the broker
    depth_bytes: int
    oldest_undelivered_seq: int | None
    oldest_undelivered_at: float | None
    last_seq: int
    retained: int  # rows kept, delivered or not
    first_retained_seq: int | None
    full: bool
    refused: int  # reads refused since start because the outbox was full


class Outbox:
    """SQLite-backed, append-only event log with delivery marks.

    Use from one thread (the event loop): ``with Outbox.open(path, settings) as box:``.
    """

    def __init__(self, *, path: Path, settings: OutboxSettings) -> None:
        self.path = path
        self.settings = settings
        self._db: sqlite3.Connection | None = None
        self._next_seq = 1
        self._depth = 0
        self._depth_bytes = 0
        self._retained = 0  # rows kept, delivered or not: counted once, then kept in memory
        self._refused = 0

    # -- lifecycle -------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, settings: OutboxSettings) -> Outbox:
        box = cls(path=path, settings=settings)
        box._open()
        return box

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self.settings.synchronous.upper()}")
        db.execute("PRAGMA busy_timeout=5000")
        db.executescript(_SCHEMA)
        self._db = db
        with self._tx():
            version = self._meta("schema_version")
            if version is None:
                self._set_meta("schema_version", str(SCHEMA_VERSION))
            elif int(version) > SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.path}: outbox schema {version} is newer than this gatewayd "
                    f"understands ({SCHEMA_VERSION}); upgrade gatewayd"
                )
            top = db.execute("SELECT max(seq) FROM events").fetchone()[0] or 0
            floor = int(self._meta("seq_floor") or 1)
            self._next_seq = max(top + 1, floor)
        self._depth, self._depth_bytes = db.execute(
            "SELECT count(*), coalesce(sum(length(payload)), 0) FROM events WHERE delivered_at IS NULL"
        ).fetchone()
        self._retained = db.execute("SELECT count(*) FROM events").fetchone()[0]

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("outbox is closed")
        return self._db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            # SQLite may have rolled back already (a full disk does); a failed COMMIT
            # leaves the transaction open. Either way none of it is kept.
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # -- small persistent settings (station steps) -----------------------------------

    def get_meta(self, key: str) -> str | None:
        return self._meta(key)

    def set_meta(self, key: str, value: str) -> None:
        with self._tx():
            self._set_meta(key, value)


    # -- capture ---------------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        return self._next_seq - 1

    @property
    def depth(self) -> int:
        """Captured events not yet acknowledged by the broker (kept in memory, no query)."""
        return self._depth

    @property
    def full(self) -> bool:
        return self._depth >= self.settings.max_events or self._depth_bytes >= self.settings.max_bytes

    def _refuse_if_full(self) -> None:
        if self.full:
            self._refused += 1
            raise OutboxFull(
                f"outbox full: {self._depth} undelivered events, {self._depth_bytes} bytes "
                f"(limits {self.settings.max_events} events, {self.settings.max_bytes} bytes)"
            )

    def capture(self, *, topic: str, build: Callable[[int, str], bytes], at: float | None = None) -> Event:
        """Commit one event and return it; ``build(seq, event_id)`` makes the payload.

        Raises :class:`OutboxFull` (nothing written) when the undelivered backlog is at its
        limit: already captured events are never dropped to make room.
        """
        self._refuse_if_full()
        now = time.time() if at is None else at
        seq = self._next_seq
        event_id = str(uuid7(now))
        payload = build(seq, event_id)
        with self._tx() as db:
            db.execute(
                "INSERT INTO events (seq, event_id, topic, payload, captured_at) VALUES (?, ?, ?, ?, ?)",
                (seq, event_id, topic, payload, now),
            )
        self._next_seq = seq + 1
        self._retained += 1
        self._depth += 1
        self._depth_bytes += len(payload)
        return Event(seq, event_id, topic, payload, now)

    def capture_many(
        self, items: Sequence[tuple[str, str, bytes]], *, meta: Mapping[str, str], at: float | None = None
    ) -> list[Event]:
        """Commit events made from others, given as ``(topic, event_id, payload)``, and the
        ``meta`` keys that say how far the source was read, in one transaction: the cursor
        is never ahead of or behind the events. An event whose ``event_id`` is stored
        already is left out (it was committed before a crash lost what followed).

        Raises :class:`OutboxFull` (nothing written) when there are events and the backlog
        is at its limit.
        """
        if items:
            self._refuse_if_full()
        now = time.time() if at is None else at
        seq = self._next_seq
        events: list[Event] = []
        with self._tx() as db:
            ids = [event_id for _, event_id, _ in items]
            stored = {
                row[0]
                for start in range(0, len(ids), 500)
                for row in db.execute(
                    "SELECT event_id FROM events WHERE event_id IN "  # noqa: S608
                    f"({','.join('?' * len(ids[start : start + 500]))})",
                    ids[start : start + 500],
                )
            }
            for topic, event_id, payload in items:
                if event_id in stored:
                    continue
                stored.add(event_id)
                db.execute(
                    "INSERT INTO events (seq, event_id, topic, payload, captured_at) VALUES (?, ?, ?, ?, ?)",
                    (seq, event_id, topic, payload, now),
                )
                events.append(Event(seq, event_id, topic, payload, now))
                seq += 1
            for key, value in meta.items():
                self._set_meta(key, value)
        self._next_seq = seq
        self._depth += len(events)
        self._depth_bytes += sum(len(e.payload) for e in events)
        return events

    # -- delivery --------------------------------------------------------------------

    def pending(self, *, after_seq: int, limit: int) -> list[Event]:
        """Undelivered events with ``seq > after_seq``, oldest first."""
        rows = self.db.execute(
            "SELECT seq, event_id, topic, payload, captured_at FROM events "
            "WHERE delivered_at IS NULL AND seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ).fetchall()
        return [Event(r[0], r[1], r[2], bytes(r[3]), r[4]) for r in rows]

    def first_undelivered_seq(self) -> int | None:
        row = self.db.execute("SELECT min(seq) FROM events WHERE delivered_at IS NULL").fetchone()
        return None if row[0] is None else int(row[0])

    def mark_delivered(self, seqs: Iterable[int], *, at: float | None = None) -> int:
        """Mark events acknowledged by the broker; returns how many changed state."""
        batch = sorted(set(seqs))
        if not batch:
            return 0
        now = time.time() if at is None else at
        changed = 0
        freed = 0
        # A delivery mark lost with power only means a redelivery (same event_id and seq),
        # so marks skip the fsync; the next capture's FULL commit makes them durable too.
        relaxed = self.settings.synchronous == "full"
        if relaxed:
            self.db.execute("PRAGMA synchronous=NORMAL")
        try:
            changed, freed = self._mark(batch, now)
        finally:
            if relaxed:
                self.db.execute("PRAGMA synchronous=FULL")
        self._depth -= changed
        self._depth_bytes -= freed
        return changed

    def _mark(self, batch: list[int], now: float) -> tuple[int, int]:
        changed = 0
        freed = 0
        with self._tx() as db:
            for start in range(0, len(batch), 500):
                chunk = batch[start : start + 500]
                marks = ",".join("?" * len(chunk))
                row = db.execute(
                    f"SELECT count(*), coalesce(sum(length(payload)), 0) FROM events "  # noqa: S608
                    f"WHERE delivered_at IS NULL AND seq IN ({marks})",
                    chunk,
                ).fetchone()
                db.execute(
                    f"UPDATE events SET delivered_at = ? WHERE delivered_at IS NULL AND seq IN ({marks})",  # noqa: S608
                    [now, *chunk],
                )
                changed += row[0]
                freed += row[1]
        return changed, freed

    def history(self, *, from_seq: int, to_seq: int, limit: int) -> list[Event]:
        """Retained events in ``[from_seq, to_seq]``, delivered or not, oldest first."""
        rows = self.db.execute(
            "SELECT seq, event_id, topic, payload, captured_at, delivered_at FROM events "
            "WHERE seq BETWEEN ? AND ? ORDER BY seq LIMIT ?",
            (from_seq, to_seq, limit),
        ).fetchall()
        return [Event(r[0], r[1], r[2], bytes(r[3]), r[4], r[5]) for r in rows]

    def by_event_ids(self, event_ids: Iterable[str]) -> list[Event]:
        """Retained events with these ids, in ``seq`` order."""
        ids = list(event_ids)
        found: list[Event] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self.db.execute(
                "SELECT seq, event_id, topic, payload, captured_at, delivered_at FROM events "  # noqa: S608
                f"WHERE event_id IN ({','.join('?' * len(chunk))})",
                chunk,
            ).fetchall()
            found += [Event(r[0], r[1], r[2], bytes(r[3]), r[4], r[5]) for r in rows]
        return sorted(found, key=lambda e: e.seq)

    # -- housekeeping ----------------------------------------------------------------

    def prune(self, *, now: float | None = None, keep_from_seq: int | None = None) -> int:
        """Drop delivered events older than the retention period; never undelivered ones,
        nor any from ``keep_from_seq`` on (events another consumer has not taken yet)."""
        now = time.time() if now is None else now
        cutoff = now - self.settings.retention_hours * 3600
        keep = self._next_seq if keep_from_seq is None else keep_from_seq
        with self._tx() as db:
            # Remember where seq stands before rows go, in case the newest ones go too.
            self._set_meta("seq_floor", str(self._next_seq))
            cur = db.execute(
                "DELETE FROM events WHERE delivered_at IS NOT NULL AND delivered_at < ? AND seq < ?",
                (cutoff, keep),
            )
        removed = cur.rowcount
        self._retained -= removed
        if removed:
            log.info("outbox: pruned %d delivered events older than %g h", removed, self.settings.retention_hours)
        return removed

    def stats(self) -> OutboxStats:
        """Cheap at any size: two index look-ups, the rest is kept in memory (a count of a
        week of retained events takes a second on a Pi; the status is built every few)."""
        db = self.db
        oldest = db.execute(
            "SELECT seq, captured_at FROM events WHERE delivered_at IS NULL ORDER BY seq LIMIT 1"
        ).fetchone()
        first = db.execute("SELECT min(seq) FROM events").fetchone()[0]
        return OutboxStats(
            depth=self._depth,
            depth_bytes=self._depth_bytes,
            oldest_undelivered_seq=None if oldest is None else int(oldest[0]),
            oldest_undelivered_at=None if oldest is None else float(oldest[1]),
            last_seq=self.last_seq,
            retained=self._retained,
            first_retained_seq=None if first is None else int(first),
            full=self.full,
            refused=self._refused,
        )
