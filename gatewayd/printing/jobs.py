"""The durable print-job queue: SQLite in ``state_dir``, one worker per printer.

README "Delivery and durability": accepted jobs survive restarts; a job held by a
paper-out or head-open printer resumes by itself when the printer is ready, and never
prints twice. How this module keeps that promise:

* **Idempotent on job_id, forever.** A job row is never deleted (its label bytes are, once
  it is finished), so a job id seen before, in any state, is answered "duplicate" and
  never printed again.
* **Stored before accepted.** ``submit`` commits the job and one row per label
  (``synchronous=FULL``) before it returns; nothing is printed from memory alone.
* **At most once per label.** Labels go to the printer one at a time. Before a label is
  handed to the transport its index is recorded as *in flight*; once the transport took
  every byte, ``printed`` moves past it in the same commit that clears the mark. After a
  crash, an in-flight label is counted as printed and listed as *unconfirmed* (it may or
  may not have reached the printer): resending it could print a lot twice, which is worse
  than asking an operator to check one label. A send that *fails* leaves the label
  unprinted, and it is sent again once the printer is back.
* **Confirmed by the printer.** Where the transport reads back (``~HS`` for ZPL,
  ``DLE EOT`` for ESC/POS), the status query before each label also confirms the
  previous one reached the printer; if the connection died in between, that label is
  listed as unconfirmed too.
* **Hold, don't fail.** Paper out, head open, ribbon out, paused, an unanswered status
  query or an unreachable printer hold the job (state ``held`` with the reason); the
  worker keeps polling every ``status_interval`` and resumes by itself. A job fails only
  for a permanent reason (its printer is no longer configured).

ZPL's ``^JZ`` (reprint after error) defaults to Y: after paper out or head open the printer
reprints the label it was printing, which would duplicate a lot label. Every label format
handed to this queue should therefore carry ``^JZN`` (the renderer, gatewayd/zpl.py, is the
place to emit it); the queue does not rewrite label bytes.

* **Job events are durable.** Every state change, and progress every ``progress_every``
  labels, is written to the ``job_events`` table in the same transaction as the change,
  with its own sequence (``event_seq``). ``on_job_event`` only says a new event is there;
  the daemon publishes :meth:`PrintJobs.pending_events` in order and marks each one with
  :meth:`PrintJobs.events_delivered` when the broker acknowledged it, so an outcome
  reached during a broker outage is delivered after it, like a scan.

The queue knows nothing of MQTT: the daemon passes ``on_job_event`` and
``on_printer_state`` callbacks, which get the payloads of ``P/printers/{printer}/jobs``
and ``P/printers/{printer}/state``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, ParamSpec, Self, TypeVar

from gatewayd.clock import rfc3339
from gatewayd.errors import PayloadError
from gatewayd_drivers import escpos_status
from gatewayd_drivers.backoff import Backoff
from gatewayd_drivers.base import DeviceUnavailable, PrinterTransport
from gatewayd_drivers.zebra_status import HS_REQUEST, StatusParseError, answer_state

__all__ = [
    "JOB_STATES",
    "JobEvent",
    "JobSpec",
    "PrintJobs",
    "PrinterBinding",
    "SubmitResult",
]

log = logging.getLogger(__name__)

JobState = Literal["queued", "printing", "held", "done", "failed"]
JOB_STATES: tuple[JobState, ...] = ("queued", "printing", "held", "done", "failed")
UNFINISHED = ("queued", "printing", "held")
ESCPOS_STATUS_REQUEST = b"".join(escpos_status.request(n) for n in escpos_status.STATUS_REQUESTS)

JobEventHandler = Callable[[str, dict[str, Any]], None]
PrinterStateEvent = Callable[[str, dict[str, Any]], None]

_P = ParamSpec("_P")
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class PrinterBinding:
    """One configured printer as the queue sees it.

    ``transport`` is entered once by the printer's worker and must reconnect by itself
    after a failure (every transport in ``drivers`` does). ``status_interval`` is how often
    a held or idle printer is polled; ``query_timeout`` bounds each status answer;
    ``retry_max`` caps the backoff while the printer cannot be reached.
    """

    id: str
    transport: PrinterTransport
    kind: Literal["zpl", "escpos"]
    status_interval: float = 5.0
    query_timeout: float = 3.0
    retry_max: float = 30.0

    def __post_init__(self) -> None:
        if self.kind not in ("zpl", "escpos"):
            raise ValueError(f"printer {self.id!r}: kind must be 'zpl' or 'escpos', got {self.kind!r}")
        if self.status_interval <= 0 or self.query_timeout <= 0:
            raise ValueError(
                f"printer {self.id!r}: status_interval and query_timeout must be > 0 s, "
                f"got {self.status_interval} and {self.query_timeout}"
            )


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A print job, its labels already rendered (copies included: one entry per label)."""

    job_id: str
    printer: str
    labels: tuple[bytes, ...]
    total: int
    lot_ids: tuple[str, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One recorded job event: ``seq`` orders them; ``payload`` carries ``event_seq`` too."""

    seq: int
    printer: str
    payload: dict[str, Any]


# Delivered job events are kept this long (a WMS asking "what happened to job X" uses
# print/status, which reads the job itself).
EVENT_RETENTION_S = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """What ``submit`` did: ``accepted`` (new, stored) or ``duplicate`` (seen before)."""

    accepted: bool
    duplicate: bool
    state: str
    job_id: str
    printed: int
    total: int
    lot_ids: tuple[str, ...]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id      TEXT NOT NULL UNIQUE,
    printer     TEXT NOT NULL,
    state       TEXT NOT NULL,
    printed     INTEGER NOT NULL DEFAULT 0,
    total       INTEGER NOT NULL,
    inflight    INTEGER,                      -- label being handed to the transport
    reason      TEXT,
    lot_ids     TEXT NOT NULL DEFAULT '[]',   -- JSON array
    meta        TEXT NOT NULL DEFAULT '{}',   -- JSON object
    unconfirmed TEXT NOT NULL DEFAULT '[]',   -- JSON array of label indexes
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_printer ON jobs (printer, state, seq);
CREATE TABLE IF NOT EXISTS labels (
    job_seq INTEGER NOT NULL,
    idx     INTEGER NOT NULL,
    data    BLOB NOT NULL,
    PRIMARY KEY (job_seq, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS job_events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, even after pruning
    printer      TEXT NOT NULL,
    payload      TEXT NOT NULL,                      -- JSON, without event_seq
    created_at   REAL NOT NULL,
    delivered_at REAL
);
CREATE INDEX IF NOT EXISTS job_events_undelivered ON job_events (seq) WHERE delivered_at IS NULL;
"""


class _Store:
    """The SQLite side. Every method runs on the queue's single database thread."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def _tx(self) -> Any:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.db.execute("COMMIT")
        except BaseException:
            # SQLite may have rolled back already (a full disk does); see outbox._tx.
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise

    def get(self, job_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return dict(row) if row else None

    def by_seq(self, seq: int) -> dict[str, Any]:
        return dict(self.db.execute("SELECT * FROM jobs WHERE seq = ?", (seq,)).fetchone())

    def _record(self, seq: int) -> JobEvent:
        """Record the job's current state as an event; call inside the change's transaction."""
        row = self.by_seq(seq)
        payload = _job_payload(row)
        cur = self.db.execute(
            "INSERT INTO job_events (printer, payload, created_at) VALUES (?, ?, ?)",
            (row["printer"], json.dumps(payload), time.time()),
        )
        event_seq = int(cur.lastrowid or 0)
        return JobEvent(event_seq, row["printer"], {**payload, "event_seq": event_seq})

    def pending_events(self, after_seq: int, limit: int) -> list[JobEvent]:
        rows = self.db.execute(
            "SELECT seq, printer, payload FROM job_events WHERE delivered_at IS NULL AND seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ).fetchall()
        return [JobEvent(r[0], r[1], {**json.loads(r[2]), "event_seq": r[0]}) for r in rows]

    def events_delivered(self, seqs: list[int]) -> None:
        now = time.time()
        with self._tx():
            self.db.executemany(
                "UPDATE job_events SET delivered_at = ? WHERE seq = ? AND delivered_at IS NULL",
                [(now, seq) for seq in seqs],
            )

    def prune_events(self, before: float) -> None:
        self.db.execute("DELETE FROM job_events WHERE delivered_at IS NOT NULL AND delivered_at < ?", (before,))

    def submit(self, spec: JobSpec) -> tuple[dict[str, Any], bool, JobEvent | None]:
        now = time.time()
        with self._tx():
            existing = self.get(spec.job_id)
            if existing is not None:
                return existing, True, None
            cur = self.db.execute(
                "INSERT INTO jobs (job_id, printer, state, total, lot_ids, meta, created_at,"
                " updated_at) VALUES (?, ?, 'queued', ?, ?, ?, ?, ?)",
                (
                    spec.job_id, spec.printer, spec.total, json.dumps(list(spec.lot_ids)),
                    json.dumps(dict(spec.meta), default=str), now, now,
                ),
            )
            seq = cur.lastrowid
            self.db.executemany(
                "INSERT INTO labels (job_seq, idx, data) VALUES (?, ?, ?)",
                ((seq, i, data) for i, data in enumerate(spec.labels)),
            )
            event = self._record(int(seq or 0))
        return self.by_seq(int(seq or 0)), False, event

    def next_job(self, printer: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT * FROM jobs WHERE printer = ? AND state IN ('queued', 'printing', 'held')"
            " ORDER BY seq LIMIT 1",
            (printer,),
        ).fetchone()
        return dict(row) if row else None

    def label(self, seq: int, idx: int) -> bytes | None:
        row = self.db.execute(
            "SELECT data FROM labels WHERE job_seq = ? AND idx = ?", (seq, idx)
        ).fetchone()
        return bytes(row[0]) if row else None

    def set_state(self, seq: int, state: str, reason: str | None) -> None:
        self.db.execute(
            "UPDATE jobs SET state = ?, reason = ?, updated_at = ? WHERE seq = ?",
            (state, reason, time.time(), seq),
        )

    def transition(self, seq: int, state: str, reason: str | None) -> JobEvent:
        with self._tx():
            self.set_state(seq, state, reason)
            return self._record(seq)

    def begin_send(self, seq: int, idx: int) -> None:
        self.db.execute("UPDATE jobs SET inflight = ? WHERE seq = ?", (idx, seq))

    def sent(self, seq: int, printed: int, *, progress: bool = False) -> JobEvent | None:
        with self._tx():
            self.db.execute(
                "UPDATE jobs SET printed = ?, inflight = NULL, updated_at = ? WHERE seq = ?",
                (printed, time.time(), seq),
            )
            return self._record(seq) if progress else None

    def send_failed(self, seq: int) -> None:
        self.db.execute("UPDATE jobs SET inflight = NULL WHERE seq = ?", (seq,))

    def add_unconfirmed(self, seq: int, idx: int) -> list[int]:
        with self._tx():
            row = self.db.execute("SELECT unconfirmed FROM jobs WHERE seq = ?", (seq,)).fetchone()
            items: list[int] = json.loads(row[0])
            if idx not in items:
                items.append(idx)
                self.db.execute(
                    "UPDATE jobs SET unconfirmed = ? WHERE seq = ?", (json.dumps(items), seq)
                )
        return items

    def finish(self, seq: int, state: str, reason: str | None) -> JobEvent:
        with self._tx():
            self.set_state(seq, state, reason)
            self.db.execute("DELETE FROM labels WHERE job_seq = ?", (seq,))
            return self._record(seq)

    def recover(self, printers: set[str]) -> list[JobEvent]:
        """After a start: settle in-flight labels, fail jobs of printers no longer configured."""
        self.prune_events(time.time() - EVENT_RETENTION_S)
        changed: list[JobEvent] = []
        rows = self.db.execute(
            "SELECT seq, printer, inflight FROM jobs"
            " WHERE state IN ('queued', 'printing', 'held')"
        ).fetchall()
        for row in rows:
            seq, printer, inflight = row["seq"], row["printer"], row["inflight"]
            if inflight is not None:
                # The label may or may not have reached the printer: never resend it.
                with self._tx():
                    self.db.execute(
                        "UPDATE jobs SET printed = MAX(printed, ?), inflight = NULL WHERE seq = ?",
                        (inflight + 1, seq),
                    )
                self.add_unconfirmed(seq, inflight)
            if printer not in printers:
                changed.append(self.finish(seq, "failed", f"printer {printer!r} is no longer configured"))
        return changed


def _job_payload(job: Mapping[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "job_id": job["job_id"],
        "state": job["state"],
        "printed": job["printed"],
        "total": job["total"],
        "reason": job["reason"],
    }
    if job["state"] == "done":
        payload["lots"] = json.loads(job["lot_ids"])
    unconfirmed = json.loads(job["unconfirmed"])
    if unconfirmed:
        payload["unconfirmed"] = unconfirmed
    return payload


class PrintJobs:
    """``async with PrintJobs(db_path=..., printers=..., ...) as jobs: await jobs.submit(spec)``.

    Runs one worker task per printer, named ``gatewayd[printer {id}].worker``. Leaving the
    context lets each worker finish the label it is sending (never cancelling a send half
    way) and closes the transports.
    """

    def __init__(
        self,
        *,
        db_path: Path,
        printers: Mapping[str, PrinterBinding],
        on_job_event: JobEventHandler,
        on_printer_state: PrinterStateEvent,
        progress_every: int = 50,
    ) -> None:
        for key, binding in printers.items():
            if key != binding.id:
                raise ValueError(f"printers[{key!r}] is bound to printer id {binding.id!r}")
        self.db_path = Path(db_path)
        self.printers = dict(printers)
        self.on_job_event = on_job_event
        self.on_printer_state = on_printer_state
        self.progress_every = progress_every
        self._executor: ThreadPoolExecutor | None = None
        self._store: _Store | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wake: dict[str, asyncio.Event] = {p: asyncio.Event() for p in self.printers}
        self._stop = asyncio.Event()
        self._states: dict[str, dict[str, Any]] = {}

    # lifecycle

    async def __aenter__(self) -> Self:
        self._stop.clear()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gatewayd-jobs-db")
        self._store = await self._db(_Store, self.db_path)
        failed = await self._db(self._store.recover, set(self.printers))
        for event in failed:
            self._emit_job(event)
        for pid, binding in self.printers.items():
            self._tasks[pid] = asyncio.create_task(
                self._worker(binding), name=f"gatewayd[printer {pid}].worker"
            )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        self._stop.set()
        tasks = list(self._tasks.values())
        self._tasks.clear()
        if tasks:
            # A worker stops between labels; give a send in progress its own timeout.
            grace = max(b.query_timeout for b in self.printers.values()) + 30.0
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._store is not None:
            await self._db(self._store.close)
            self._store = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def _db(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        if self._executor is None:
            raise RuntimeError("PrintJobs is not open: use 'async with PrintJobs(...)'")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    @property
    def _db_store(self) -> _Store:
        if self._store is None:
            raise RuntimeError("PrintJobs is not open: use 'async with PrintJobs(...)'")
        return self._store

    # public API

    async def submit(self, job: JobSpec) -> SubmitResult:
        """Store ``job`` durably and queue it, or report the earlier job with the same id.

        A job id seen before (in any state, ever) is never printed again. Raises
        :class:`PayloadError` for an unknown printer or inconsistent counts; the job id is
        then not recorded, so a corrected request can use it.
        """
        store = self._db_store
        existing = await self._db(store.get, job.job_id)
        if existing is None:
            self._validate(job)
        row, duplicate, event = await self._db(store.submit, job)
        result = SubmitResult(
            accepted=not duplicate,
            duplicate=duplicate,
            state=row["state"],
            job_id=row["job_id"],
            printed=row["printed"],
            total=row["total"],
            lot_ids=tuple(json.loads(row["lot_ids"])),
        )
        if event is not None:
            self._emit_job(event)
        if not duplicate:
            self._wake[job.printer].set()
        return result

    def _validate(self, job: JobSpec) -> None:
        if not job.job_id:
            raise PayloadError("job_id is empty: expected a unique, non-empty string")
        if job.printer not in self.printers:
            known = ", ".join(sorted(self.printers)) or "none configured"
            raise PayloadError(f"Unknown printer {job.printer!r}: expected one of {known}")
        if not job.labels:
            raise PayloadError(f"Job {job.job_id!r} has no labels: expected at least one")
        if job.total != len(job.labels):
            raise PayloadError(
                f"Job {job.job_id!r} says total={job.total} but carries {len(job.labels)} labels"
            )

    async def status(self, job_id: str) -> dict[str, Any] | None:
        """The job's current record, or ``None`` if this job id was never submitted."""
        row = await self._db(self._db_store.get, job_id)
        if row is None:
            return None
        return {
            "job_id": row["job_id"],
            "printer": row["printer"],
            "state": row["state"],
            "printed": row["printed"],
            "total": row["total"],
            "reason": row["reason"],
            "lot_ids": json.loads(row["lot_ids"]),
            "unconfirmed": json.loads(row["unconfirmed"]),
            "meta": json.loads(row["meta"]),
            "created_at": rfc3339(row["created_at"]),
            "updated_at": rfc3339(row["updated_at"]),
        }

    def printer_state(self, printer_id: str) -> dict[str, Any] | None:
        """The last published ``{"state", "detail", "since"}``; ``None`` before the first check."""
        state = self._states.get(printer_id)
        return dict(state) if state else None

    # events

    async def pending_events(self, *, after_seq: int, limit: int) -> list[JobEvent]:
        """Recorded job events not yet delivered, with ``seq > after_seq``, oldest first."""
        if self._store is None:
            return []
        return await self._db(self._store.pending_events, after_seq, limit)

    async def events_delivered(self, seqs: list[int]) -> None:
        """The broker acknowledged these events: they are not sent again."""
        if self._store is not None and seqs:
            await self._db(self._store.events_delivered, seqs)

    def _emit_job(self, event: JobEvent) -> None:
        try:
            self.on_job_event(event.printer, dict(event.payload))
        except Exception:
            log.exception("job event handler failed for printer %s", event.printer)

    def _set_printer_state(self, printer: str, state: str, detail: str) -> None:
        current = self._states.get(printer)
        if current and current["state"] == state and current["detail"] == detail:
            return
        payload = {"state": state, "detail": detail, "since": rfc3339(time.time())}
        self._states[printer] = payload
        try:
            self.on_printer_state(printer, dict(payload))
        except Exception:
            log.exception("printer state handler failed for printer %s", printer)

    # workers

    async def _pause(self, seconds: float, *, printer: str | None = None) -> None:
        """Sleep, cut short by close() (and by a new job when ``printer`` is given)."""
        waits = [asyncio.ensure_future(self._stop.wait())]
        if printer is not None:
            waits.append(asyncio.ensure_future(self._wake[printer].wait()))
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        if printer is not None:
            self._wake[printer].clear()

    async def _worker(self, b: PrinterBinding) -> None:
        backoff = Backoff(initial=min(1.0, b.status_interval), maximum=max(b.retry_max, 1.0))
        while not self._stop.is_set():
            try:
                async with b.transport:
                    await self._serve(b)
                return
            except Exception as exc:
                log.exception("printer %s worker failed; restarting", b.id)
                self._set_printer_state(b.id, "error", f"gateway error: {exc}")
                await self._pause(backoff.next_delay())

    async def _serve(self, b: PrinterBinding) -> None:
        store = self._db_store
        while not self._stop.is_set():
            job = await self._db(store.next_job, b.id)
            if job is None:
                await self._check(b)
                await self._pause(b.status_interval, printer=b.id)
                continue
            await self._print(b, job)

    async def _check(self, b: PrinterBinding) -> tuple[bool, str, str]:
        """Ask the printer for its status: (may print now, state, detail)."""
        request = HS_REQUEST if b.kind == "zpl" else ESCPOS_STATUS_REQUEST
        try:
            answer = await b.transport.query(request, timeout=b.query_timeout)
        except DeviceUnavailable as exc:
            state, detail = "offline", str(exc)
            self._set_printer_state(b.id, state, detail)
            return False, state, detail
        if answer is None:
            # The transport cannot read back (file, CUPS): print without knowing.
            state, detail = "unknown", "this transport cannot read the printer's status"
            self._set_printer_state(b.id, state, detail)
            return True, state, detail
        if b.kind == "zpl":
            state, detail = answer_state(answer)
        elif not answer:
            state, detail = "unknown", "no answer to DLE EOT"
        else:
            try:
                answers = {n: answer[n - 1 : n] for n in escpos_status.STATUS_REQUESTS}
                state, detail = escpos_status.state_of(escpos_status.parse_status(answers))
            except StatusParseError:
                state, detail = "unknown", f"unreadable answer to DLE EOT ({len(answer)} bytes)"
        self._set_printer_state(b.id, state, detail)
        return state == "ready", state, detail

    async def _print(self, b: PrinterBinding, job: dict[str, Any]) -> None:
        store = self._db_store
        seq, total = job["seq"], job["total"]
        printed: int = job["printed"]
        backoff = Backoff(initial=min(1.0, b.status_interval), maximum=max(b.retry_max, 1.0))
        just_sent = False

        async def change(state: str, reason: str | None) -> None:
            nonlocal job
            if job["state"] == state and job["reason"] == reason:
                return
            event = await self._db(store.transition, seq, state, reason)
            job = await self._db(store.by_seq, seq)
            self._emit_job(event)

        async def unconfirmed(idx: int) -> None:
            nonlocal job
            await self._db(store.add_unconfirmed, seq, idx)
            job = await self._db(store.by_seq, seq)
            log.warning(
                "printer %s: label %d of job %s was sent but the connection dropped before "
                "the printer confirmed it; not resending (check that label)",
                b.id, idx + 1, job["job_id"],
            )

        while printed < total:
            if self._stop.is_set():
                return
            ready, state, detail = await self._check(b)
            if just_sent and state == "offline":
                await unconfirmed(printed - 1)
            just_sent = False
            if not ready:
                await change("held", f"{state}: {detail}")
                delay = backoff.next_delay() if state == "offline" else b.status_interval
                await self._pause(delay)
                continue
            backoff.reset()
            await change("printing", None)
            data = await self._db(store.label, seq, printed)
            if data is None:
                self._emit_job(await self._db(store.finish, seq, "failed", f"label {printed + 1} is missing"))
                return
            await self._db(store.begin_send, seq, printed)
            try:
                await b.transport.send(data)
            except DeviceUnavailable as exc:
                await self._db(store.send_failed, seq)
                self._set_printer_state(b.id, "offline", str(exc))
                await change("held", f"offline: {exc}")
                await self._pause(backoff.next_delay())
                continue
            printed += 1
            progress = bool(self.progress_every and printed % self.progress_every == 0 and printed < total)
            progress_event = await self._db(store.sent, seq, printed, progress=progress)
            job = await self._db(store.by_seq, seq)
            just_sent = True
            if progress_event is not None:
                self._emit_job(progress_event)
        if just_sent:
            _, state, _ = await self._check(b)
            if state == "offline":
                await unconfirmed(printed - 1)
        self._emit_job(await self._db(store.finish, seq, "done", None))
