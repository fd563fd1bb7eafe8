"""Lot-number sequences per supplier and production date, persisted in SQLite.

A batch print request pre-generates lot ids by the configured convention
(``{supplier}-{date:%Y%m%d}-{seq:04d}``). The sequence numbers come from here: each
reservation is one ``BEGIN IMMEDIATE`` transaction committed with ``synchronous=FULL``
before the numbers are handed out, so a second batch for the same supplier and day never
repeats a lot id, across restarts, power loss and concurrent callers.
"""

from __future__ import annotations

import datetime
import sqlite3
from pathlib import Path
from types import TracebackType
from typing import Self

from gatewayd.errors import PayloadError

__all__ = ["LotSequence"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lot_sequence (
    supplier TEXT NOT NULL,
    day      TEXT NOT NULL,   -- ISO 8601 production date
    last     INTEGER NOT NULL,
    PRIMARY KEY (supplier, day)
) WITHOUT ROWID;
"""


class LotSequence:
    """``LotSequence(db_path).reserve("SUP1", date(2026, 11, 27), 500, max_seq=9999)``.

    Sequences start at 1. Safe to share one database file between processes.
    """

    def __init__(self, db_path: Path, *, busy_timeout_s: float = 10.0) -> None:
        self.db_path = Path(db_path)
        self._db = sqlite3.connect(
            self.db_path, isolation_level=None, timeout=busy_timeout_s, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def last(self, supplier: str, date: datetime.date) -> int:
        """The last number handed out for (supplier, date); 0 if none yet."""
        row = self._db.execute(
            "SELECT last FROM lot_sequence WHERE supplier = ? AND day = ?",
            (supplier, date.isoformat()),
        ).fetchone()
        return int(row[0]) if row else 0

    def reserve(self, supplier: str, date: datetime.date, count: int, *, max_seq: int) -> range:
        """Reserve the next ``count`` numbers for (supplier, date); they are never given again.

        Raises :class:`PayloadError` when ``count`` is not positive or the run would go
        past ``max_seq`` (9999 for ``{seq:04d}``); nothing is reserved then.
        """
        if not supplier:
            raise PayloadError("Cannot reserve lot numbers: supplier is empty")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise PayloadError(f"Cannot reserve {count!r} lot numbers: expected a count >= 1")
        if max_seq < 1:
            raise ValueError(f"max_seq must be >= 1, got {max_seq}")
        day = date.isoformat()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            row = self._db.execute(
                "SELECT last FROM lot_sequence WHERE supplier = ? AND day = ?", (supplier, day)
            ).fetchone()
            last = int(row[0]) if row else 0
            if last + count > max_seq:
                raise PayloadError(
                    f"Cannot reserve {count} lot numbers for supplier {supplier!r} on {day}: "
                    f"{last} of {max_seq} are used, {max_seq - last} left"
                )
            self._db.execute(
                "INSERT INTO lot_sequence (supplier, day, last) VALUES (?, ?, ?) "
                "ON CONFLICT (supplier, day) DO UPDATE SET last = excluded.last",
                (supplier, day, last + count),
            )
            self._db.execute("COMMIT")
        except BaseException:
            # SQLite may have rolled back already (a full disk does); see outbox._tx.
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        return range(last + 1, last + count + 1)
