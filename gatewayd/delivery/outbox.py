"""The outbox: every captured read, committed to SQLite.

README "Delivery and durability": a read is *captured* once its row is committed (WAL;
the commit survives ``kill -9``, and the fsync that runs beside the publish with
``synchronous = "full"`` makes it survive power loss). A live read is sent while its row is
written: :meth:`Outbox.capture` records the whole event in ``seq.live`` first
(:class:`LiveRecord`), then sends it, then commits it; a start after a crash between the
two writes the row from there. ``seq``
is per gateway, +1 per captured read, gap-free and never reused: the next value is one
more than the newest row, and before pruning deletes rows it is written to the ``meta``
table in the same transaction (``seq_floor``), so a failed insert leaves no hole and pruning
never lets a number come back.

Rows are marked delivered only when the broker acknowledged them (PUBACK). Delivered rows
stay for ``retention_hours`` so ``replay`` can re-publish them.

The outbox protects its history against what happens to files at a real site:

* **The seq high-water mark lives outside the database**, in ``seq.hwm`` beside it (a few
  bytes, replaced atomically and fsynced). ``capture`` reserves seqs in blocks of
  :data:`SEQ_BLOCK` there, so the fsync is paid once per block, not per read. Losing the
  database cannot take the mark with it: the next seq starts above the reserved block.
* **A damaged database is detected and set aside**: at open (the SQLite header, ``PRAGMA
  quick_check``, the expected tables, a file emptied to zero bytes, a file that vanished
  or fell behind the high-water mark) and while running (:meth:`Outbox.check`: the file
  at the path must still be the one open, same device and inode, with an intact header;
  a capture that finds the database corrupt triggers the same recovery). The damaged
  file is renamed ``outbox.sqlite3.damaged-<UTC time>`` (its ``-wal`` and ``-shm`` too)
  and kept for forensics; every row that can still be read is copied, with its original
  seq, event_id and payload, into a fresh outbox, where undelivered ones are delivered
  as usual, in seq order.
* **A gap is announced, never hidden**: seqs that may have been used but could not be
  salvaged are described by a ``gatewayd.gap/1`` event, captured like a read (its own
  seq, retained, replayable) on ``P/scans/_gaps``.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import logging
import mmap
import os
import sqlite3
import struct
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

from gatewayd.clock import uuid7
from gatewayd.config import OutboxSettings
from gatewayd.errors import OutboxDamaged, OutboxFull, StateUnavailable, StateUnwritable
from gatewayd.payloads import gap_payload, json_bytes

__all__ = [
    "SEQ_BLOCK",
    "CommitDeferred",
    "Event",
    "Gap",
    "LiveRecord",
    "LiveSender",
    "Outbox",
    "OutboxStats",
    "Recovery",
    "SeqMark",
    "current_boot_id",
]

log = logging.getLogger("gatewayd.outbox")

SCHEMA_VERSION = 1
SEQ_BLOCK = 1000  # seqs reserved per fsync of seq.hwm
HWM_NAME = "seq.hwm"
LIVE_NAME = "seq.live"
LIVE_SIZE = 65536  # a bigger event is committed before it is published
_SEQ = struct.Struct("<Q")
_LIVE_HEAD = struct.Struct("<QdHHII")
RUNNING_SUFFIX = ".running"  # outbox.running beside outbox.sqlite3, while it is open: holds the boot id
BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"
# Tests simulate a reboot by pointing this at a file of their own; nothing else should set it.
BOOT_ID_ENV = "GATEWAYD_BOOT_ID_FILE"
GAP_TOPIC = "_gaps"  # under P/scans/: a station id starts with a letter or digit, never "_"
_SQLITE_HEADER = b"SQLite format 3\x00"
_EXPECTED_TABLES = {"meta", "events"}
# SQLite result codes that mean the file itself is damaged (https://sqlite.org/rescode.html).
_DAMAGED_CODES = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB
# Bound the WAL: a checkpoint every 256 pages (1 MiB at 4 KiB pages) and the WAL file cut
# back to 4 MiB after one, so a backlog costs its rows and not a WAL grown without end
# (https://sqlite.org/pragma.html#pragma_journal_size_limit).
WAL_AUTOCHECKPOINT_PAGES = 256
QUICK_CHECK_MAX_BYTES = 256 * 1024 * 1024  # about 350,000 events
JOURNAL_SIZE_LIMIT = 4 * 1024 * 1024

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


@dataclass(frozen=True, slots=True)
class Gap:
    """Seqs ``from_seq..to_seq`` (inclusive) that may have been used but cannot be delivered."""

    from_seq: int
    to_seq: int
    reason: str


@dataclass(frozen=True, slots=True)
class Recovery:
    """What the outbox found and did when its database was damaged, emptied or lost."""

    problem: str  # what was found, in plain words
    kept_as: tuple[Path, ...]  # the damaged files, renamed for forensics
    salvaged: int  # rows copied into the fresh outbox
    undelivered: int  # of which not yet acknowledged: they are delivered as usual
    gaps: tuple[Gap, ...]  # announced to the WMS as gatewayd.gap/1 events
    through_seq: int = 0  # the last seq when it was done: its gap announcements included

    def describe(self) -> str:
        kept = ", ".join(p.name for p in self.kept_as) if self.kept_as else "nothing to keep"
        gaps = "; ".join(f"seq {g.from_seq}..{g.to_seq} announced as a gap" for g in self.gaps) or "no gap"
        return (
            f"{self.problem}; kept aside: {kept}; salvaged {self.salvaged} event(s) "
            f"({self.undelivered} undelivered, to be delivered); {gaps}; capturing into a fresh outbox"
        )


@dataclass(slots=True)
class _Salvage:
    rows: list[tuple[int, str, str, bytes, float, float | None]] = field(default_factory=list)  # as _Row
    meta: dict[str, str] = field(default_factory=dict)
    error: str | None = None  # where reading stopped, if it did


def _announced(rows: list[tuple[int, str, str, bytes, float, float | None]]) -> list[tuple[int, int]]:
    """The ranges the gap announcements among ``rows`` cover."""
    out = []
    for _seq, _event_id, topic, payload, _at, _delivered in rows:
        if topic == GAP_TOPIC or topic.endswith(f"/{GAP_TOPIC}"):
            body = json.loads(payload)
            if isinstance(body.get("from_seq"), int) and isinstance(body.get("to_seq"), int):
                out.append((body["from_seq"], body["to_seq"]))
    return out


def _uncovered(gaps: list[Gap], covered: list[tuple[int, int]]) -> list[Gap]:
    """``gaps`` minus the ``covered`` ranges (both inclusive), split where needed."""
    for lo, hi in covered:
        rest: list[Gap] = []
        for g in gaps:
            if g.to_seq < lo or g.from_seq > hi:
                rest.append(g)
                continue
            if g.from_seq < lo:
                rest.append(Gap(g.from_seq, lo - 1, g.reason))
            if g.to_seq > hi:
                rest.append(Gap(hi + 1, g.to_seq, g.reason))
        gaps = rest
    return gaps


def _now_tag() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


# SQLite syncs a WAL with fdatasync where there is one (https://sqlite.org/compile.html#have_fdatasync).
_fdatasync: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)


def _write_durably(path: Path, text: str) -> None:
    """Replace ``path`` atomically (temporary file, fsync, rename, fsync of the directory):
    after a crash it holds the old or the new text, never a torn one."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, text.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def current_boot_id() -> str | None:
    """The kernel's id of this boot (changes on every reboot), or ``None`` where there is none.

    A crash without a reboot keeps every write in the page cache; only a reboot (a power
    cut, a kernel panic) can lose writes that were not fsynced.
    """
    path = os.environ.get(BOOT_ID_ENV) or BOOT_ID_PATH
    try:
        return Path(path).read_text(encoding="ascii").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def _user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return str(os.geteuid())


# Permission problems a restart cannot fix, as errno values and SQLite result codes
# (https://sqlite.org/rescode.html: SQLITE_PERM, SQLITE_READONLY, SQLITE_CANTOPEN).
_PERMANENT_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS}
_PERMANENT_SQLITE = {3, 8, 14}


def unwritable(directory: Path, exc: OSError | sqlite3.Error) -> StateUnwritable | StateUnavailable:
    """The one message for a state directory gatewayd cannot use.

    Permissions and a read-only file system are :class:`StateUnwritable` (exit 2: systemd
    does not restart into it); a full disk or an I/O error may pass, and is
    :class:`StateUnavailable` (exit 1: systemd retries).
    """
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    permanent = (
        exc.errno in _PERMANENT_ERRNOS
        if isinstance(exc, OSError)
        else getattr(exc, "sqlite_errorcode", None) in _PERMANENT_SQLITE
    )
    if not permanent:
        return StateUnavailable(f"cannot write the state directory {directory} ({detail}); will retry")
    user = _user()
    return StateUnwritable(
        f"cannot write the state directory {directory} ({detail}): it must be writable by the user "
        f"gatewayd runs as ({user}) on a writable file system, e.g. 'chown -R {user}: {directory}', "
        "or set gateway.state_dir to a writable directory"
    )


class SeqMark:
    """The seq high-water mark: the highest seq reserved, in a file that survives the database.

    Written atomically (temporary file, fsync, rename, fsync of the directory), so after a
    crash the file holds the old or the new mark, never a torn one.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> int | None:
        try:
            text = self.path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            log.error("outbox: cannot read the seq high-water mark %s (%s); using the database alone", self.path, exc)
            return None
        if not text.isdigit():
            log.error("outbox: %s holds %r, not a number; using the database alone", self.path, text[:40])
            return None
        return int(text)

    def write(self, value: int) -> None:
        _write_durably(self.path, f"{value}\n")


class LiveRecord:
    """The last event :meth:`Outbox.capture` sent live before its commit,
    whole, in a shared memory map of ``seq.live`` (:data:`LIVE_SIZE` bytes).

    Writing it is a copy into memory, no system call. The pages belong to the kernel's page
    cache, so a ``kill -9`` or a crash keeps them as it keeps the outbox's own writes, and
    the next start writes the row the run could not (a power cut may lose them: then the
    reserved block in ``seq.hwm`` is skipped and announced, as for any row).

    Layout: seq (0 while being written), captured_at, the lengths of event_id, topic and
    payload, their CRC-32, then the bytes. The seq is stored last, so a record cut short by
    a kill reads as none; such an event was never sent.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size < LIVE_SIZE:
                os.ftruncate(fd, LIVE_SIZE)
            self._map = mmap.mmap(fd, LIVE_SIZE)
        finally:
            os.close(fd)

    @staticmethod
    def fits(event: Event) -> bool:
        """Whether ``event`` can be recorded (ids and topics are ASCII in practice; a bigger
        event is committed before it is sent)."""
        return (
            _LIVE_HEAD.size + 4 * (len(event.event_id) + len(event.topic)) + len(event.payload) <= LIVE_SIZE
            and 4 * max(len(event.event_id), len(event.topic)) <= 0xFFFF
        )

    def write(self, event: Event) -> None:
        """Record ``event`` (it :meth:`fits`)."""
        eid, topic = event.event_id.encode(), event.topic.encode()
        end = _LIVE_HEAD.size + len(eid) + len(topic) + len(event.payload)
        m = self._map
        _SEQ.pack_into(m, 0, 0)
        crc = zlib.crc32(event.payload, zlib.crc32(topic, zlib.crc32(eid)))
        _LIVE_HEAD.pack_into(m, 0, 0, event.captured_at, len(eid), len(topic), len(event.payload), crc)
        start = _LIVE_HEAD.size
        m[start : start + len(eid)] = eid
        start += len(eid)
        m[start : start + len(topic)] = topic
        start += len(topic)
        m[start:end] = event.payload
        _SEQ.pack_into(m, 0, event.seq)

    def read(self) -> tuple[int, Event | None]:
        """``(seq, event)``: the seq last recorded (0: none) and its event, ``None`` when the
        record does not hold together (the file was damaged)."""
        m = self._map
        seq, at, n_eid, n_topic, n_payload, crc = _LIVE_HEAD.unpack_from(m, 0)
        start = _LIVE_HEAD.size
        end = start + n_eid + n_topic + n_payload
        if seq == 0 or end > LIVE_SIZE:
            return seq, None
        eid, topic = m[start : start + n_eid], m[start + n_eid : start + n_eid + n_topic]
        payload = m[start + n_eid + n_topic : end]
        if zlib.crc32(payload, zlib.crc32(topic, zlib.crc32(eid))) != crc:
            return seq, None
        try:
            return seq, Event(seq, eid.decode(), topic.decode(), payload, at)
        except UnicodeDecodeError:
            return seq, None

    def flush(self) -> None:
        """Make the record durable (``msync``): for a stop that leaves it unwritten."""
        self._map.flush()

    def close(self) -> None:
        self._map.close()


class LiveSender(Protocol):
    """Who sends live reads (the publisher), as :meth:`Outbox.capture` asks it."""

    def ready(self, seq: int) -> bool:
        """Whether the event that takes ``seq`` goes out at once; ``True`` commits the
        caller to :meth:`send` it next."""
        ...

    def send(self, event: Event) -> None:
        """Hand the event to the link now."""
        ...


class CommitDeferred(Exception):
    """A read went to the broker before its commit, and the commit failed (a full disk):
    the event is kept in memory and in ``seq.live``, and written before anything else once
    the outbox takes writes again; until then captures fail."""

    def __init__(self, event: Event, cause: BaseException) -> None:
        super().__init__(f"seq {event.seq} was published live, but its row could not be written yet ({cause})")
        self.event = event
        self.cause = cause


GapEvent = Callable[[int, str, Gap, float], tuple[str, bytes]]


def _default_gap_event(seq: int, event_id: str, gap: Gap, at: float) -> tuple[str, bytes]:
    body = gap_payload(seq, event_id, from_seq=gap.from_seq, to_seq=gap.to_seq, reason=gap.reason, at=at)
    return GAP_TOPIC, json_bytes(body)


class Outbox:
    """SQLite-backed, append-only event log with delivery marks.

    Use from one thread (the event loop): ``with Outbox.open(path, settings) as box:``.
    ``on_recovery`` is told of every recovery (see the module docstring); ``gap_event``
    builds the topic and payload of a gap announcement. ``inspect=True`` (the CLI, while
    the daemon may run) only reads: a damaged database raises :class:`OutboxDamaged`.
    """

    def __init__(
        self,
        *,
        path: Path,
        settings: OutboxSettings,
        on_recovery: Callable[[Recovery], None] | None = None,
        gap_event: GapEvent | None = _default_gap_event,
        inspect: bool = False,
    ) -> None:
        self.path = path
        self.settings = settings
        self.on_recovery = on_recovery
        self.gap_event = gap_event
        self.inspect = inspect
        # One state directory holds two outboxes (scans, and EPCIS documents): each keeps
        # its own mark; the scan outbox's is seq.hwm.
        self.mark = SeqMark(path.with_name(HWM_NAME if path.name == "outbox.sqlite3" else f"{path.stem}.{HWM_NAME}"))
        self.live_path = path.with_name(LIVE_NAME if path.name == "outbox.sqlite3" else f"{path.stem}.{LIVE_NAME}")
        self._live: LiveRecord | None = None  # opened with the outbox (not to inspect it)
        self._unwritten: Event | None = None  # published live, its commit failed: written first
        self.running = path.with_suffix(RUNNING_SUFFIX)  # one per database: epcis.sqlite3 has its own
        # synchronous = "full": every commit is made durable by an fsync of the WAL that
        # runs beside the publish (:meth:`sync`), not inside the commit. See the README,
        # "Delivery and durability".
        self.deferred_sync = settings.synchronous == "full" and not inspect
        self.on_write: Callable[[], None] | None = None  # told of each commit to make durable
        self._durable = 0  # every seq up to this is on disk
        self._generation = 0  # +1 per connection: a sync of an older WAL proves nothing now
        self._running_written = False
        self.recoveries: list[Recovery] = []
        self._reserved = 0  # seqs up to this are reserved in seq.hwm
        self._ident: tuple[int, int] | None = None  # (st_dev, st_ino) of the open file
        self._fd = -1
        self._broken = False  # a recovery failed half way: check() starts it over
        self._db: sqlite3.Connection | None = None
        self._next_seq = 1
        self._depth = 0
        self._depth_bytes = 0
        self._retained = 0  # rows kept, delivered or not: counted once, then kept in memory
        self._refused = 0

    # -- lifecycle -------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path,
        settings: OutboxSettings,
        *,
        on_recovery: Callable[[Recovery], None] | None = None,
        gap_event: GapEvent | None = _default_gap_event,
        inspect: bool = False,
    ) -> Outbox:
        box = cls(path=path, settings=settings, on_recovery=on_recovery, gap_event=gap_event, inspect=inspect)
        try:
            box._open()
        except BaseException:
            box.close()
            raise
        return box

    def _open(self) -> None:
        directory = self.path.parent
        if self.inspect:
            # The daemon may be writing: a checkpoint writes page 1, with the new page
            # count, before the pages that extend the file, so the size check would lie.
            damage = _diagnose(self.path, size_check=False) if self.path.exists() else None
            if damage is not None:
                raise OutboxDamaged(f"{self.path}: {damage}")
            self._connect()
            self._load_counters()
            return
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise unwritable(directory, exc) from None
        reserved = self.mark.read()
        self._reserved = reserved or 0
        # Prove the directory is writable before anything else: one clear error, not a
        # traceback from deep inside SQLite (and no crash loop: the daemon exits 2).
        try:
            self.mark.write(reserved or 0)
            self._live = LiveRecord(self.live_path)
        except OSError as exc:
            raise unwritable(directory, exc) from None
        problem: str | None = None
        kept: tuple[Path, ...] = ()
        salvage = _Salvage()
        if self.path.exists():
            problem = _diagnose(self.path)
            if problem is not None:
                salvage = _salvage(self.path, upper=self._reserved)
                kept = self._set_aside("damaged")
        elif reserved:
            problem = f"the outbox {self.path} is missing, though seqs up to {reserved} were reserved"
        try:
            self._connect()
        except sqlite3.Error as exc:
            raise unwritable(directory, exc) from None
        self._restore(salvage)
        self._load_counters()
        last_known = self._next_seq - 1
        if problem is None and reserved and last_known < reserved - SEQ_BLOCK:
            # The database is older than the mark: restored from a backup, or replaced.
            problem = (
                f"the outbox {self.path} ends at seq {last_known}, behind the seq high-water "
                f"mark {reserved} (restored from a backup or replaced?)"
            )
        if problem is not None:
            self._recovered(problem, kept, salvage, known_next=max(reserved or 0, last_known) + 1)
        if self._next_seq > 1:
            self._reserve(self._next_seq - 1)  # a database from before seq.hwm existed
        self._after_unclean_stop()
        # What a previous run left in the page cache (a kill -9) is made durable before
        # anything is published from it.
        self.sync()
        self._durable = self.last_seq

    def _after_unclean_stop(self) -> None:
        """Skip the reserved seqs if the last run stopped uncleanly and the machine rebooted.

        Reads are published before their fsync completes, so a power cut can lose a row
        whose seq a subscriber already saw; starting at the last row left would hand that
        seq to another read. Every seq used was reserved in ``seq.hwm`` (fsynced before
        use), so after an unclean stop followed by a reboot the outbox starts above the
        reserved block and announces the skipped seqs as a gap (void: none of them will
        ever be delivered). A crash without a reboot loses nothing the kernel was given,
        so it skips nothing.
        """
        boot = current_boot_id()
        try:
            previous: str | None = self.running.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            previous = None  # the last run stopped cleanly, or this is the first
        except (OSError, UnicodeDecodeError):
            previous = ""  # unreadable: assume the worst
        last = self.last_seq
        if previous is not None and previous != boot and self._reserved > last:
            gap = Gap(
                last + 1,
                self._reserved,
                "seqs reserved before an unclean stop and a reboot (power loss?): any of them "
                "published before the loss is void, none will be delivered",
            )
            log.warning(
                "outbox: the last run stopped uncleanly and the machine rebooted since; seq %d..%d "
                "announced as a gap, capture goes on at seq %d",
                gap.from_seq,
                gap.to_seq,
                gap.to_seq + 2,
            )
            self._next_seq = self._reserved + 1
            if self.gap_event is not None:  # None: what it holds can be made again, no one to tell
                self._capture_gap(gap)
        elif self._live is not None:
            self._restore_live(last)
        try:
            _write_durably(self.running, f"{boot or 'unknown'}\n")
        except OSError as exc:
            raise unwritable(self.path.parent, exc) from None
        self._running_written = True

    def _restore_live(self, last: int) -> None:
        """The last run stopped between publishing a live read and writing its row (a
        ``kill -9``, a crash, a write that kept failing): write it now, from ``seq.live``, so
        it is delivered again like any row whose PUBACK did not arrive (same seq, same
        event_id, same payload)."""
        assert self._live is not None
        seq, event = self._live.read()
        if seq <= last:
            return  # written, as nearly always
        if event is not None and seq == last + 1:
            self._insert(event)
            log.warning(
                "outbox: seq %d was published live but not written when the last run stopped; "
                "written now from %s, it is delivered again",
                seq,
                self._live.path,
            )
            return
        # Unreadable, or not the next seq: never give its seq to another read.
        gap = Gap(last + 1, seq, f"{self._live.path} names seq {seq} but its record is unreadable")
        log.error("outbox: %s; seq %d..%d announced as a gap", gap.reason, gap.from_seq, gap.to_seq)
        self._next_seq = seq + 1
        if self.gap_event is not None:
            self._capture_gap(gap)

    def _connect(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA busy_timeout=5000")
            if not self.inspect:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
                db.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
            # Deferred: a commit goes to the WAL (and the page cache, which a kill -9 keeps)
            # without waiting; :meth:`sync` makes it durable. NORMAL still fsyncs around
            # every checkpoint, so the file stays consistent across a power cut
            # (https://sqlite.org/pragma.html#pragma_synchronous).
            sync = "NORMAL" if self.deferred_sync else self.settings.synchronous.upper()
            db.execute(f"PRAGMA synchronous={sync}")
            if not self.inspect:
                db.executescript(_SCHEMA)
        except BaseException:
            db.close()
            raise
        self._db = db
        self._generation += 1
        self._durable = 0  # a fresh file (a recovery) is durable once a sync covers it
        # Kept open for the header check: closing any descriptor of the database file
        # would drop this process's POSIX locks on it, SQLite's included
        # (https://sqlite.org/howtocorrupt.html#_posix_advisory_locks_canceled_by_a_separate_thread_doing_close_),
        # and another connection could then delete the WAL under us.
        self._fd = os.open(self.path, os.O_RDONLY)
        st = os.fstat(self._fd)
        self._ident = (st.st_dev, st.st_ino)
        if self.inspect:
            return
        with self._tx():
            version = self._meta("schema_version")
            if version is None:
                self._set_meta("schema_version", str(SCHEMA_VERSION))
            elif int(version) > SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.path}: outbox schema {version} is newer than this gatewayd "
                    f"understands ({SCHEMA_VERSION}); upgrade gatewayd"
                )

    def _load_counters(self) -> None:
        db = self.db
        top = db.execute("SELECT max(seq) FROM events").fetchone()[0] or 0
        floor = int(self._meta("seq_floor") or 1)
        self._next_seq = max(top + 1, floor, self._next_seq)
        self._depth, self._depth_bytes = db.execute(
            "SELECT count(*), coalesce(sum(length(payload)), 0) FROM events WHERE delivered_at IS NULL"
        ).fetchone()
        self._retained = db.execute("SELECT count(*) FROM events").fetchone()[0]

    def close(self) -> None:
        """Close for good: everything is synced, and ``outbox.running`` removed to say so.

        A live read whose row still cannot be written is made durable in ``seq.live``
        instead, and ``outbox.running`` stays: the next start writes the row from there,
        or, after a reboot that lost it all the same, skips its seq with the reserved block.
        """
        if self._unwritten is not None and self._db is not None:
            self.write_unwritten()
        if self._unwritten is not None and self._live is not None:
            with contextlib.suppress(OSError):
                self._live.flush()
        clean = self._db is not None and self._running_written and self._unwritten is None
        if clean:
            try:
                self.sync()
            except OSError as exc:
                clean = False
                log.error("outbox: cannot sync %s-wal at close (%s)", self.path, exc)
        self._disconnect()
        if self._live is not None:
            self._live.close()
            self._live = None
        if clean:
            self._running_written = False
            with contextlib.suppress(FileNotFoundError):
                self.running.unlink()
            with contextlib.suppress(OSError):
                _fsync_dir(self.path.parent)

    def _disconnect(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
        if self._fd >= 0:
            os.close(self._fd)  # after SQLite's own descriptors: see _connect
            self._fd = -1

    # -- protecting the history --------------------------------------------------------

    def _reserve(self, seq: int) -> None:
        """Make sure ``seq`` is below the high-water mark on disk before it is used."""
        if seq <= self._reserved:
            return
        top = seq + SEQ_BLOCK - 1
        self.mark.write(top)
        self._reserved = top

    def check(self) -> Recovery | None:
        """Cheap check that the file at ``path`` is still the intact database we write.

        A stat and a 16-byte read: run on every housekeeping tick and before each capture.
        Recovers (and returns what it did) when the file was deleted, replaced, emptied or
        overwritten under the running gateway.
        """
        if self.inspect:
            return None
        if self._db is None:
            return self._reopen() if self._broken else None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return self._recover_live(f"the outbox {self.path} was deleted while gatewayd was running")
        if self._ident != (st.st_dev, st.st_ino):
            return self._recover_live(f"the outbox {self.path} was replaced by another file while gatewayd was running")
        try:
            header = os.pread(self._fd, len(_SQLITE_HEADER), 0) if self._fd >= 0 else _SQLITE_HEADER
        except OSError:
            return None  # cannot tell; the next capture will
        if header != _SQLITE_HEADER:
            what = "emptied" if st.st_size == 0 else "overwritten"
            return self._recover_damaged(f"the outbox {self.path} was {what} while gatewayd was running")
        return None

    def _reopen(self) -> Recovery | None:
        """An earlier recovery failed half way (a full disk, a directory made read-only):
        start over as at start-up, from whatever the files now hold; seq stays above
        everything used in this process. Raises again while the cause lasts."""
        known_next = self._next_seq
        try:
            self._open()
        except (StateUnwritable, StateUnavailable) as exc:
            self._disconnect()  # still running: outbox.running stays
            # Like a full disk to the callers: the read is refused, marks wait.
            raise sqlite3.OperationalError(f"the outbox {self.path} is being recovered after a failure: {exc}") from exc
        self._broken = False
        self._next_seq = max(self._next_seq, known_next)
        log.warning("outbox: reopened %s after a failed recovery", self.path)
        return self.recoveries[-1] if self.recoveries else None

    def _recover_live(self, problem: str) -> Recovery:
        try:
            return self._recover_live_now(problem)
        except BaseException:
            self._give_up(problem)
            raise

    def _give_up(self, problem: str) -> None:
        # Whatever state the files are in, the next check (every capture) starts over.
        self._disconnect()  # not close(): the gateway runs on, outbox.running stays
        self._broken = True
        log.error("outbox: recovery failed (%s); every capture retries it", problem)

    def _recover_live_now(self, problem: str) -> Recovery:
        """The path no longer names our file, but our handle still reads it: copy it all."""
        self.path.parent.mkdir(parents=True, exist_ok=True)  # the whole directory may be gone
        tag = _now_tag()
        kept: list[Path] = []
        if self.path.exists():  # a foreign file took its place: keep it aside, untouched
            kept += self._set_aside("foreign", tag=tag)
        copy = self.path.with_name(f"{self.path.name}.vanished-{tag}")
        known_next = self._next_seq
        try:
            with contextlib.closing(sqlite3.connect(copy)) as target:
                self.db.backup(target)
                target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            kept.append(copy)
            salvage = _salvage(copy)
        except sqlite3.Error as exc:
            salvage = _salvage_connection(self.db, upper=known_next - 1)
            salvage.error = salvage.error or f"copy failed: {exc}"
        self._disconnect()
        # Our -wal and -shm may still be at the path (only the main file was deleted):
        # a fresh database must not pick up the old one's WAL.
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.replace(f"{self.path}{suffix}", f"{copy}{suffix}.stale")
        return self._restart(problem, tuple(kept), salvage, known_next)

    def _recover_damaged(self, problem: str) -> Recovery:
        """The file at our path is damaged: keep it aside, salvage what reads, start afresh."""
        try:
            return self._recover_damaged_now(problem)
        except BaseException:
            self._give_up(problem)
            raise

    def _recover_damaged_now(self, problem: str) -> Recovery:
        known_next = self._next_seq
        self._disconnect()
        salvage = _salvage(self.path, upper=max(self._reserved, known_next - 1))
        kept = self._set_aside("damaged")
        return self._restart(problem, kept, salvage, known_next)

    def _restart(self, problem: str, kept: tuple[Path, ...], salvage: _Salvage, known_next: int) -> Recovery:
        self.mark.write(max(self._reserved, known_next - 1))  # it may have gone with the directory
        if self._running_written and not self.running.exists():  # and outbox.running with it
            _write_durably(self.running, f"{current_boot_id() or 'unknown'}\n")
        self._connect()
        self._restore(salvage)
        self._next_seq = 1
        self._load_counters()
        return self._recovered(problem, kept, salvage, known_next=known_next)

    def _set_aside(self, what: str, *, tag: str | None = None) -> tuple[Path, ...]:
        """Rename the file at ``path`` (and its -wal, -shm) to ``<name>.<what>-<time>``."""
        tag = tag or _now_tag()
        kept = []
        for suffix in ("", "-wal", "-shm"):
            src = Path(f"{self.path}{suffix}")
            if src.exists():
                dst = self.path.with_name(f"{self.path.name}.{what}-{tag}{suffix}")
                os.replace(src, dst)
                kept.append(dst)
        with contextlib.suppress(OSError):
            _fsync_dir(self.path.parent)
        return tuple(kept)

    def _restore(self, salvage: _Salvage) -> None:
        if not salvage.rows and not salvage.meta:
            return
        with self._tx() as db:
            for key, value in salvage.meta.items():
                if key != "schema_version":
                    self._set_meta(key, value)
            db.executemany(
                "INSERT OR IGNORE INTO events (seq, event_id, topic, payload, captured_at, delivered_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                sorted(salvage.rows),
            )

    def _recovered(self, problem: str, kept: tuple[Path, ...], salvage: _Salvage, *, known_next: int) -> Recovery:
        """Seqs below ``known_next`` may have been used: announce those not salvaged."""
        live = self._unwritten  # sent live, never written: no loss, it goes into the fresh outbox
        seqs = sorted([r[0] for r in salvage.rows] + ([live.seq] if live is not None else []))
        gaps: list[Gap] = []
        reason = f"outbox lost or damaged ({problem})"
        for a, b in itertools.pairwise(seqs):
            if b > a + 1:
                gaps.append(Gap(a + 1, b - 1, reason))
        top = max(seqs[-1] if seqs else 0, self._next_seq - 1)
        if top < known_next - 1:
            gaps.append(Gap(top + 1, known_next - 1, reason))
        # A range an earlier announcement (salvaged with the rest) already covers is not
        # announced again at every later recovery.
        gaps = _uncovered(gaps, _announced(salvage.rows))
        self._next_seq = max(self._next_seq, known_next)
        if live is not None:
            with contextlib.suppress(sqlite3.Error, OSError):
                self._write_unwritten()
        if salvage.error:
            problem = f"{problem}; salvage stopped at: {salvage.error}"
        undelivered = sum(1 for r in salvage.rows if r[5] is None)
        log.error("outbox: %s", Recovery(problem, kept, len(salvage.rows), undelivered, tuple(gaps)).describe())
        if self.gap_event is not None:  # None: what it holds can be made again, no one to tell
            for gap in gaps:
                self._capture_gap(gap)
        recovery = Recovery(problem, kept, len(salvage.rows), undelivered, tuple(gaps), self._next_seq - 1)
        self.recoveries.append(recovery)
        if self.on_recovery is not None:
            self.on_recovery(recovery)
        return recovery

    def _capture_gap(self, gap: Gap) -> None:
        assert self.gap_event is not None
        now = time.time()
        seq = self._next_seq
        event_id = uuid7.text(now)
        topic, payload = self.gap_event(seq, event_id, gap, now)
        self._insert(Event(seq, event_id, topic, payload, now))

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
            if self._broken:
                # Callers treat it like a full disk: the read is refused loudly, the
                # delivery marks wait, and the next check() tries the recovery again.
                raise sqlite3.OperationalError(f"the outbox {self.path} is being recovered after a failure")
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
        if self.on_write is not None:
            self.on_write()

    # -- durability ------------------------------------------------------------------

    @property
    def durable_seq(self) -> int:
        """Every event up to this seq is on disk (fsynced): it survives a power cut."""
        return self._durable if self.deferred_sync else self.last_seq

    def sync_point(self) -> tuple[int, int]:
        """What a :meth:`sync` started now makes durable; give it back to :meth:`synced`."""
        return self.last_seq, self._generation

    def sync(self) -> None:
        """fsync the WAL: every commit made before the call is on disk when it returns.

        No SQLite call, so it may run in a worker thread while the loop commits more
        (Linux fsync covers the whole file, whatever descriptor it is called on). A
        checkpoint copies the WAL into the database file only after syncing it, and
        syncs the database file before the WAL is reused: committed rows are in one or
        the other, durably.
        """
        if not self.deferred_sync:
            return
        try:
            fd = os.open(f"{self.path}-wal", os.O_RDONLY)
        except FileNotFoundError:
            return  # no WAL: the last checkpoint put everything in the synced database file
        try:
            _fdatasync(fd)
        finally:
            os.close(fd)

    def synced(self, point: tuple[int, int]) -> None:
        """A :meth:`sync` started at ``point`` completed."""
        seq, generation = point
        if generation == self._generation and seq > self._durable:
            self._durable = seq


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

    def capture(
        self,
        *,
        topic: str,
        build: Callable[[int, str], bytes],
        at: float | None = None,
        live: LiveSender | None = None,
    ) -> Event:
        """Commit one event and return it; ``build(seq, event_id)`` makes the payload.

        ``live``, when given, is asked whether the event goes out at once (a live read: the
        link is up, nothing waits before it); if so, it is sent between building it and
        committing it, so the network round trip and the commit overlap instead of adding
        up. The event is recorded whole in ``seq.live`` first (:class:`LiveRecord`), so a
        restart after a crash between the two writes its row; if the commit fails, the
        event is kept and written before anything else once the outbox takes writes again,
        and :class:`CommitDeferred` is raised.

        Raises :class:`OutboxFull` (nothing written) when the undelivered backlog is at its
        limit: already captured events are never dropped to make room.
        """
        self._refuse_if_full()
        if self._db is None or self._unwritten is not None:
            self.check()  # a recovery that failed half way is tried again before anything goes out
            if self._unwritten is not None:
                self._write_late()  # before any read after it; raises while it cannot
        now = time.time() if at is None else at

        def make() -> Event:  # at the next seq: again after a recovery moved it
            seq = self._next_seq
            event_id = uuid7.text(now)
            return Event(seq, event_id, topic, build(seq, event_id), now)

        event = make()
        record = self._live
        if live is not None and record is not None and record.fits(event) and live.ready(event.seq):
            self._reserve(event.seq)  # on disk before the seq leaves the gateway
            record.write(event)
            self._send(live, event)
            # Sent: its seq is taken and its row owed. The file check runs now, off the
            # path: a recovery it makes writes the owed row into the fresh outbox.
            self._next_seq = event.seq + 1
            self._unwritten = event
            try:
                self.check()
                if self._unwritten is not None:
                    self._write_unwritten()
            except (sqlite3.Error, OSError) as exc:
                with contextlib.suppress(sqlite3.Error, OSError):
                    self._write_late(exc)  # a damaged file: into the fresh outbox at once
                if self._unwritten is not None:
                    raise CommitDeferred(event, exc) from exc
            return event
        if self.check() is not None:  # recovered: the seq may have moved
            event = make()
        try:
            self._insert(event)
        except sqlite3.DatabaseError as exc:
            if getattr(exc, "sqlite_errorcode", None) not in _DAMAGED_CODES:
                raise
            # The file went bad under us (truncated, overwritten): recover, then capture
            # this read into the fresh outbox, above any seq the damaged one may hold.
            self._recover_damaged(f"the outbox {self.path} is damaged ({exc})")
            event = make()
            self._insert(event)
        return event

    @staticmethod
    def _send(live: LiveSender, event: Event) -> None:
        try:
            live.send(event)
        except Exception:
            # Not at the cost of the read: it is committed all the same, and a link that
            # failed to take it sends it again from the outbox when it reconnects.
            log.exception("outbox: sending seq %d before its commit failed", event.seq)

    def _write_late(self, failed: BaseException | None = None) -> None:
        """Write the live read left unwritten; a damaged database (what failed, or what
        this write finds) is recovered first, and the recovery writes it into the fresh
        outbox. Raises while it cannot be written."""
        if failed is None:
            try:
                self._write_unwritten(late=True)
                return
            except sqlite3.DatabaseError as exc:
                failed = exc
        if getattr(failed, "sqlite_errorcode", None) not in _DAMAGED_CODES:
            raise failed
        self._recover_damaged(f"the outbox {self.path} is damaged ({failed})")
        if self._unwritten is not None:
            self._write_unwritten(late=True)

    def _write_unwritten(self, *, late: bool = False) -> None:
        event = self._unwritten
        assert event is not None
        self._insert(event)
        self._unwritten = None
        if late:
            log.warning("outbox: seq %d, published while the outbox could not be written, is written now", event.seq)

    def write_unwritten(self) -> bool:
        """Housekeeping: write the live read whose commit failed, if the outbox takes writes
        again; whether it wrote one now."""
        if self._unwritten is None:
            return False
        try:
            self._write_late()
        except (sqlite3.Error, OSError):
            return False
        return True

    def _insert(self, event: Event) -> None:
        self._reserve(event.seq)
        # One statement is its own transaction (the connection autocommits): the same
        # commit as BEGIN ... COMMIT, in one call into SQLite instead of three.
        self.db.execute(
            "INSERT INTO events (seq, event_id, topic, payload, captured_at) VALUES (?, ?, ?, ?, ?)",
            (event.seq, event.event_id, event.topic, event.payload, event.captured_at),
        )
        self._next_seq = max(self._next_seq, event.seq + 1)  # a row written late never lowers it
        self._retained += 1
        self._depth += 1
        self._depth_bytes += len(event.payload)
        if self.on_write is not None:
            self.on_write()

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
        self.check()
        now = time.time() if at is None else at
        seq = self._next_seq
        self._reserve(seq + len(items))  # seq.hwm covers every seq this may use
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
        self._retained += len(events)
        self._depth += len(events)
        self._depth_bytes += sum(len(e.payload) for e in events)
        if events and self.on_write is not None:
            self.on_write()
        return events

    # -- delivery --------------------------------------------------------------------

    def pending(self, *, after_seq: int, limit: int) -> list[Event]:
        """Undelivered events with ``seq > after_seq``, oldest first.

        A database found damaged here (truncated under the running gateway, header
        intact) is recovered like in :meth:`capture`, and the query runs on the fresh one.
        """
        if self._db is None and self._broken:
            try:
                self.check()  # try the failed recovery again
            except (OSError, sqlite3.Error):
                return []  # nothing can be sent until it succeeds
        try:
            return self._pending(after_seq, limit)
        except sqlite3.DatabaseError as exc:
            if getattr(exc, "sqlite_errorcode", None) not in _DAMAGED_CODES:
                raise
            self._recover_damaged(f"the outbox {self.path} is damaged ({exc})")
            return self._pending(after_seq, limit)

    def _pending(self, after_seq: int, limit: int) -> list[Event]:
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
        # A delivery mark lost with power only means a redelivery (same event_id and seq),
        # so marks wait for no fsync of their own; the next sync makes them durable too.
        changed, freed = self._mark(batch, now)
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

    def kept_aside(self) -> list[Path]:
        """The damaged, vanished and foreign outbox files kept for forensics, oldest first."""
        kinds = (".damaged-", ".vanished-", ".foreign-")
        prefix = self.path.name
        found = [
            p
            for p in self.path.parent.glob(f"{prefix}.*")
            if any(p.name.startswith(prefix + k) for k in kinds) and not p.name.endswith(("-wal", "-shm", ".stale"))
        ]
        return sorted(found, key=lambda p: p.name.rsplit("-", 1)[-1])

    def checkpoint(self) -> None:
        """A passive WAL checkpoint (housekeeping): it never waits for readers or writers."""
        self.db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def stats(self) -> OutboxStats:
        """Cheap at any size: two index look-ups, the rest is kept in memory (a count of a
        week of retained events takes a second on a Pi; the status is built every few)."""
        if self._db is None and self._broken:  # what memory knows, for the status line
            return OutboxStats(
                depth=self._depth,
                depth_bytes=self._depth_bytes,
                oldest_undelivered_seq=None,
                oldest_undelivered_at=None,
                last_seq=self.last_seq,
                retained=self._retained,
                first_retained_seq=None,
                full=self.full,
                refused=self._refused,
            )
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


# -- diagnosis and salvage (module level: they work on files, not on an open Outbox) ------


def _diagnose(path: Path, *, size_check: bool = True) -> str | None:
    """What is wrong with the database file at ``path``, or ``None`` if it looks sound.

    Cheap checks first (size, header, the page count the header records), then
    ``PRAGMA quick_check``, which reads every page: only up to :data:`QUICK_CHECK_MAX_BYTES`,
    so a large backlog does not hold up the start (systemd gives it 60 s).
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(100)
    except OSError as exc:
        return f"cannot read it ({exc.strerror})"
    if size == 0:
        return "the file is empty (0 bytes)"
    if head[: len(_SQLITE_HEADER)] != _SQLITE_HEADER or len(head) < 100:
        return "the file is not an SQLite database (bad header)"
    # https://sqlite.org/fileformat2.html#database_header: page size at offset 16 (1 means
    # 65536), the page count at 28, valid when the change counters at 24 and 92 agree.
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(head[28:32], "big")
    # With frames in the WAL (a kill -9, maybe mid-checkpoint) the file may lag its
    # header until SQLite replays the WAL; quick_check reads through the WAL instead.
    wal = Path(f"{path}-wal")
    wal_frames = wal.exists() and wal.stat().st_size > 32  # more than the WAL header
    if size_check and not wal_frames and head[24:28] == head[92:96] and size < pages * page_size:
        return f"the file is truncated ({size} bytes, its header says {pages * page_size})"
    try:
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
            db.execute("PRAGMA busy_timeout=5000")
            if size <= QUICK_CHECK_MAX_BYTES:
                result = [r[0] for r in db.execute("PRAGMA quick_check").fetchall()]
                if result != ["ok"]:
                    return f"PRAGMA quick_check: {'; '.join(str(r) for r in result[:3])}"
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorcode", None) in (5, 6):  # SQLITE_BUSY, SQLITE_LOCKED
            raise
        return f"damaged ({exc})"
    missing = _EXPECTED_TABLES - tables
    if missing:
        return f"the database lacks its table(s) {', '.join(sorted(missing))}"
    return None


def _salvage(path: Path, *, upper: int = 0) -> _Salvage:
    """Every row of ``events`` and ``meta`` that can still be read from the file at ``path``.

    ``upper`` is the highest seq that may exist (the high-water mark): past a damaged
    page, rows are looked up one by one up to it.
    """
    try:
        db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        # A truncated file is shorter than its header says; SQLite refuses to read it
        # unless the schema is "writable" (https://sqlite.org/pragma.html#pragma_writable_schema).
        # The connection is read-only, so nothing is written.
        db.execute("PRAGMA writable_schema=ON")
    except sqlite3.Error as exc:
        return _Salvage(error=str(exc))
    with contextlib.closing(db):
        return _salvage_connection(db, upper=upper)


_ROW_SQL = "SELECT seq, event_id, topic, payload, captured_at, delivered_at FROM events"
_Row = tuple[int, str, str, bytes, float, float | None]


def _row(r: tuple[object, ...]) -> _Row | None:
    """One salvaged row, or ``None`` unless it is whole: every column of its type, and a
    payload that is a JSON object (naming its own seq and event_id where it has them). Past a truncation SQLite can
    return a row whose columns run into missing pages; publishing that would put garbage
    under a real seq."""
    seq, event_id, topic, payload, captured_at, delivered_at = r
    if not (
        isinstance(seq, int)
        and isinstance(event_id, str)
        and isinstance(topic, str)
        and isinstance(payload, bytes)
        and isinstance(captured_at, float)
        and (delivered_at is None or isinstance(delivered_at, float))
    ):
        return None
    try:
        body = json.loads(payload)
    except ValueError:
        return None
    # A scan or gap payload names its own seq and event_id; documents made from others
    # (EPCIS) carry neither, and must at least be whole JSON.
    if not (isinstance(body, dict) and body.get("seq", seq) == seq and body.get("event_id", event_id) == event_id):
        return None
    return (seq, event_id, topic, payload, captured_at, delivered_at)


def _salvage_connection(db: sqlite3.Connection, *, upper: int = 0) -> _Salvage:
    out = _Salvage()
    rows = out.rows
    try:
        out.meta = {str(k): str(v) for k, v in db.execute("SELECT key, value FROM meta")}
    except sqlite3.Error as exc:
        out.error = f"meta: {exc}"
    after = 0
    try:
        for r in db.execute(f"{_ROW_SQL} ORDER BY seq"):
            if isinstance(r[0], int):
                after = r[0]
            if (row := _row(r)) is not None:
                rows.append(row)
        return out
    except sqlite3.Error as exc:
        out.error = f"events after seq {after}: {exc}"
    # A damaged page stopped the scan: look the rest up one by one, which reaches every
    # row whose own page is intact.
    with contextlib.suppress(sqlite3.Error):
        upper = max(upper, int(db.execute("SELECT max(seq) FROM events").fetchone()[0] or 0))
    for seq in range(after + 1, upper + 1):
        try:
            r = db.execute(f"{_ROW_SQL} WHERE seq = ?", (seq,)).fetchone()
        except sqlite3.Error:
            continue
        if r is not None and (row := _row(r)) is not None:
            rows.append(row)
    return out
