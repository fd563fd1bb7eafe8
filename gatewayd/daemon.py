"""The gateway daemon, the composition root: it wires the parts together, nothing imports it.

scanners → :mod:`gatewayd.reads` (decode, dedupe, station tag) → outbox → publisher → MQTT,
and MQTT requests → :class:`~gatewayd.delivery.requests.Requests` → the handlers of the
built-in commands and of the print path. ``Gateway.run`` owns every long-lived task, each
named ``gatewayd[...]``, and every resource it opens is closed on every exit path (one
``AsyncExitStack``). Shutdown is orderly: stop reading, stop printing, let in-flight
events be acknowledged, publish ``offline``, close MQTT, write the last delivery marks,
close the outbox. ``offline`` is published on every exit once a broker was connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gatewayd import __version__
from gatewayd.clock import ClockSync, rfc3339
from gatewayd.config import STEPS, ScannerSettings, Settings
from gatewayd.delivery.mqtt_link import Message, MqttLink
from gatewayd.delivery.outbox import GAP_TOPIC, CommitDeferred, Event, Gap, Outbox, Recovery
from gatewayd.delivery.publisher import Publisher
from gatewayd.delivery.replay import Replay, send_replayed
from gatewayd.delivery.requests import Requests, check_fields
from gatewayd.errors import ConfigError, DeviceUnavailable, OutboxFull, PayloadError
from gatewayd.feedback.service import Feedback
from gatewayd.memory import release_freed_memory
from gatewayd.payloads import (
    device_payload,
    gap_payload,
    job_payload,
    json_bytes,
    printer_payload,
    station_payload,
)
from gatewayd.reads.decode import DecodeOptions, load_tables
from gatewayd.reads.scan_event import StepCommandRead, scan_event
from gatewayd.reads.scanners import build_scanner
from gatewayd.reads.stations import Stations
from gatewayd.reads.vendor_ids import prefix_of
from gatewayd.status_file import REFRESH_S, STATUS_FILE, ProcessId, write_status
from gatewayd.systemd import Notifier
from gatewayd_drivers.backoff import Backoff
from gatewayd_drivers.base import DeviceState, RawRead, Scanner
from gatewayd_drivers.indicator import BackgroundIndicator

if TYPE_CHECKING:
    from gatewayd.delivery.epcis_capture import CaptureSender
    from gatewayd.delivery.feed import Feed
    from gatewayd.epcis.derive import Derived
    from gatewayd.printing.service import PrintService

__all__ = ["Gateway"]


class _Snapshots:
    """The test seam of :data:`SNAPSHOT_ENV`. Runs on the loop thread, between SQLite
    transactions, so each copy is a consistent database (and its WAL)."""

    def __init__(self, outbox: Outbox, directory: Path) -> None:
        self.outbox = outbox
        self.directory = directory
        self.count = max((int(p.name) for p in directory.glob("[0-9]*") if p.name.isdigit()), default=0)

    def __call__(self, durable_seq: int) -> None:
        self.count += 1
        tmp = self.directory / f".{self.count}"
        tmp.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal"):
            src = Path(f"{self.outbox.path}{suffix}")
            if src.exists():
                shutil.copyfile(src, tmp / f"{src.name}")
        (tmp / "durable_seq").write_text(f"{durable_seq}\n", encoding="ascii")
        tmp.rename(self.directory / str(self.count))

log = logging.getLogger("gatewayd")

STATUS_INTERVAL_S = 30.0
# The states /metrics lists for every printer (a 0/1 gauge each), plus whatever it reports.
PRINTER_STATES = ("unknown", "ready", "printing", "paper_out", "ribbon_out", "head_open", "paused", "offline")
PRUNE_INTERVAL_S = 600.0
STATUS_FILE_GAP_S = 0.5  # a burst of reads becomes one status file write
AFTER_START_WAIT_S = 2.0  # the GS1 tables load once online, or after this long without a broker
# A test seam, never set in production: after every completed outbox sync, copy the
# outbox files to <dir>/<n>/, the disk a power cut at that moment would leave (tests
# restart from such a copy to check what survives).
SNAPSHOT_ENV = "GATEWAYD_TEST_SNAPSHOT_DIR"


@dataclass
class Counters:
    reads: dict[str, int] = field(default_factory=dict)  # per scanner
    captured: int = 0
    refused: int = 0
    step_commands: int = 0
    captured_by_station: dict[str, int] = field(default_factory=dict)
    refused_by_scanner: dict[str, int] = field(default_factory=dict)
    print_jobs: dict[tuple[str, str], int] = field(default_factory=dict)  # (printer, state) reached
    suppressed_by_station: dict[str, int] = field(default_factory=dict)  # repeats suppressed: Stations' own count

    @property
    def suppressed(self) -> int:
        return sum(self.suppressed_by_station.values())


@dataclass
class DeviceInfo:
    state: str
    detail: str
    since: float
    reported: bool = True  # False until the driver first says how the device is


# Meta keys of the EPCIS outbox: the last scan seq turned into EPCIS, and the open door
# contexts after it (written in the same transaction as the document of that scan).
SCAN_CURSOR = "scan_cursor"
DOOR_CONTEXTS = "door_contexts"
DERIVE_BATCH = 10  # scans derived, then committed in one transaction
DERIVE_IDLE_S = 1.0  # how often open contexts are checked for the idle timeout
DERIVE_QUIET_S = 0.05  # documents are made once reads pause this long ...
DERIVE_MAX_DELAY_S = 0.1  # ... or after this long while they keep coming


class EpcisOutput:
    """EPCIS 2.0 output, off the read path: when reads pause, a task turns committed scan
    rows into EPCISDocuments in ``seq`` order and commits them, with its cursor and the door
    contexts, to a second outbox (``epcis.sqlite3``), from which a publisher sends them to
    ``P/epcis/{station}`` and, with ``capture_url``, the capture sender POSTs them. Both
    deliver at least once and resume after a restart or ``kill -9`` from what is committed."""

    def __init__(self, gateway: Gateway, scans: Outbox, link: MqttLink) -> None:
        # Imported here, when [epcis] is configured: a gateway without it does not load them.
        from gatewayd.delivery.epcis_capture import CaptureSender
        from gatewayd.epcis.derive import EpcisDeriver

        s = gateway.settings
        assert s.epcis is not None
        self.gateway = gateway
        self.scans = scans
        self.link = link
        self.deriver = EpcisDeriver(s)
        # Every document can be derived again from the scan outbox, and its cursor commits
        # with it: a commit lost with power rolls both back together and the documents are
        # made again, with the same events. So this outbox skips the fsync per commit (WAL, NORMAL).
        # A damaged one is set aside and salvaged like the scan outbox; its lost documents
        # are derived again, so it announces no gaps.
        self.outbox = Outbox.open(
            s.gateway.state_dir / "epcis.sqlite3",
            dataclasses.replace(s.outbox, synchronous="normal"),
            gap_event=None,
        )
        self.publisher = Publisher(link=link, outbox=self.outbox, settings=s.outbox)
        self.capture: CaptureSender | None = None
        if s.epcis.capture_url is not None:
            self.capture = CaptureSender(
                outbox=self.outbox,
                settings=s.epcis,
                refused_dir=s.gateway.state_dir / "epcis-refused",
                alarm=gateway.set_alarm,
            )
        self.tracker = self.deriver.tracker()
        self._wake = asyncio.Event()
        self._last_read = 0.0  # monotonic time of the last read captured
        self._steps: list[tuple[str, int]] = []  # (station, last scan seq before its step changed)
        self._shown: dict[str, dict[str, Any] | None] = {}
        self.errors = 0
        cursor = self.outbox.get_meta(SCAN_CURSOR)
        if cursor is None:
            # First start with [epcis]: reads from now on (earlier ones were published
            # before EPCIS output was configured).
            self.outbox.set_meta(SCAN_CURSOR, str(scans.last_seq))
        self._cursor = int(self.outbox.get_meta(SCAN_CURSOR) or 0)
        try:
            self.deriver.load_state(self.outbox.get_meta(DOOR_CONTEXTS))
        except ValueError as exc:  # unreadable (written by another version?): start without
            log.error("epcis: the stored dispatch and receiving contexts are unreadable, starting without: %s", exc)

    @property
    def cursor(self) -> int:
        """The last scan seq whose EPCIS output is committed."""
        return self._cursor

    async def start(self, stack: contextlib.AsyncExitStack) -> None:
        """Start delivering and deriving (the caller closes :attr:`outbox` on its way out)."""
        await stack.enter_async_context(self.publisher)
        if self.capture is not None:
            await stack.enter_async_context(self.capture)
        # What a crash left behind, before new reads come in: the read path's door contexts
        # start from the derived ones, so both follow the same reads from the same state.
        while self.derive_pending():
            pass
        self.tracker = self.deriver.tracker()
        self.gateway.spawn(self._run(), "gatewayd[epcis].derive")

    def wake(self) -> None:
        """A read was captured: make its document once reads pause."""
        self._last_read = time.monotonic()
        self._wake.set()

    def step_changed(self, station: str) -> None:
        self.tracker.step_changed(station)
        self._steps.append((station, self.scans.last_seq))
        self._wake.set()

    def context(self, station: str) -> dict[str, Any] | None:
        return self.deriver.context(station)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=DERIVE_IDLE_S)
            await self._quiet()
            try:
                await self._derive_waiting()
            except Exception:
                # A bug must not end EPCIS output for good: say it, resume from what is stored.
                log.exception("epcis: making documents failed; trying again from scan %d", self._cursor + 1)
                self.deriver.load_state(self.outbox.get_meta(DOOR_CONTEXTS))
                await asyncio.sleep(DERIVE_IDLE_S)

    async def _derive_waiting(self) -> None:
        """Derive and commit every committed scan not derived yet, then close idle contexts."""
        while True:
            rows = self._pending()
            derived: list[Derived] = []
            for row in rows:
                derived += self._derive(row)
                await asyncio.sleep(0)  # a read that comes in meanwhile waits for one document at most
            if not rows or not self._commit(derived, rows[-1].seq) or len(rows) < DERIVE_BATCH:
                break
            await asyncio.sleep(0)  # and between batches, for their publishes and acks
        if self._cursor >= self.scans.last_seq:
            now = rfc3339(time.time())
            closed = self._steps_before(None) + self.deriver.tick(now=now, created=now)
            if closed:
                self._commit(closed, self._cursor)
        self._show_contexts()

    async def _quiet(self) -> None:
        """Wait for a pause between reads (DERIVE_QUIET_S), or DERIVE_MAX_DELAY_S at most
        while reads keep coming: documents are made between reads, in batches, so making
        them never competes with a scan on its way out. A read only notes its time here
        (no task is woken per read); this wakes once per quiet period."""
        started = time.monotonic()
        self._wake.clear()
        while True:
            now = time.monotonic()
            quiet_for = now - self._last_read
            if quiet_for >= DERIVE_QUIET_S or now - started >= DERIVE_MAX_DELAY_S:
                return
            await asyncio.sleep(min(DERIVE_QUIET_S - quiet_for, DERIVE_MAX_DELAY_S - (now - started)))

    def derive_pending(self) -> bool:
        """Derive and commit a batch of committed scans at once; True if there may be more."""
        rows = self._pending()
        if not rows:
            self._commit(self._steps_before(None), self._cursor)
            return False
        derived = [d for row in rows for d in self._derive(row)]
        return self._commit(derived, rows[-1].seq) and len(rows) == DERIVE_BATCH

    def _pending(self) -> list[Event]:
        """The next committed scans to derive, unless the EPCIS outbox is full."""
        if self.outbox.full:
            self.gateway.set_alarm("epcis_outbox_full", f"{self.outbox.path} is full; EPCIS output waits")
            return []
        self.gateway.set_alarm("epcis_outbox_full", None)
        rows = self.scans.history(from_seq=self._cursor + 1, to_seq=self.scans.last_seq, limit=DERIVE_BATCH)
        if rows and rows[0].seq > self._cursor + 1:
            # Pruned before they were derived: the EPCIS output was stuck for longer than
            # [outbox] retention_hours (a full EPCIS outbox). Say so; replay cannot help.
            log.error(
                "epcis: scans %d to %d were pruned before their EPCIS documents were made",
                self._cursor + 1,
                rows[0].seq - 1,
            )
        return rows

    def _derive(self, row: Event) -> list[Derived]:
        """The step changes made before this scan, then the scan itself."""
        derived = self._steps_before(row.seq)
        derived.append(self.deriver.scan(json.loads(row.payload), created=rfc3339(time.time())))
        return derived

    def _steps_before(self, seq: int | None) -> list[Derived]:
        out = []
        while self._steps and (seq is None or self._steps[0][1] < seq):
            station, _ = self._steps.pop(0)
            derived = self.deriver.step_changed(station, created=rfc3339(time.time()))
            if derived is not None:
                out.append(derived)
        return out

    def _commit(self, derived: list[Derived], cursor: int) -> bool:
        """Commit derived documents with the cursor and the door contexts, in one
        transaction, then hand them to the publisher; False (nothing kept) on failure."""
        for d in derived:
            for problem in d.errors:
                self.errors += 1
                log.error("epcis: station %s, event %s: %s", d.station, d.event_id or "-", problem)
        items = [
            (f"{self.gateway.root}/epcis/{d.station}", d.event_id, json_bytes(d.document))
            for d in derived
            if d.document is not None
        ]
        try:
            events = self.outbox.capture_many(
                items, meta={SCAN_CURSOR: str(cursor), DOOR_CONTEXTS: self.deriver.state()}
            )
        except (sqlite3.Error, OutboxFull) as exc:
            # Nothing stored: go back to the stored state; the same scans are derived again.
            log.error("epcis: cannot store EPCIS documents up to scan %d: %s", cursor, exc)
            self.gateway.set_alarm("epcis_outbox_error", f"cannot write {self.outbox.path}: {exc}")
            self.deriver.load_state(self.outbox.get_meta(DOOR_CONTEXTS))
            self._steps.clear()
            return False
        self._cursor = cursor
        self.gateway.set_alarm("epcis_outbox_error", None)
        if events:
            # The drain task sends them in order, a window at a time, in one socket write
            # rather than one per document.
            self.publisher.wake()
            if self.capture is not None:
                self.capture.wake()
        return True

    def _show_contexts(self) -> None:
        for station in self.gateway.settings.stations:
            shown = self.deriver.context(station.id)
            if self._shown.get(station.id) != shown:
                self._shown[station.id] = shown
                self.gateway.publish_station(station.id)

    def replay(self, start: int, end: int) -> None:
        """``request/replay``: the EPCIS documents of the scans ``start``..``end`` again."""
        self.gateway.background(self._replay(start, end), "gatewayd[request replay].epcis")

    async def _replay(self, start: int, end: int) -> None:
        sent = 0
        cursor = start
        while cursor <= end:
            scans = self.scans.history(from_seq=cursor, to_seq=end, limit=DERIVE_BATCH)
            if not scans:
                break
            cursor = scans[-1].seq + 1
            documents = self.outbox.by_event_ids(e.event_id for e in scans)
            if self.capture is not None:
                self.capture.replay(documents)
            sent += await send_replayed(self.link, documents, self.gateway.settings.outbox.inflight)
        log.info("replay: re-published %d EPCIS document(s) of scans %d to %d", sent, start, end)

    def prune(self) -> None:
        # Documents the capture endpoint has not taken yet stay, whatever their age.
        keep = self.capture.cursor + 1 if self.capture is not None else None
        self.outbox.prune(keep_from_seq=keep)

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "depth": self.outbox.depth,
            "last_seq": self.outbox.last_seq,
            "scan_cursor": self.cursor,
            "errors": self.errors,
        }
        if self.capture is not None:
            body["capture"] = {
                "url": self.capture.url,
                "cursor": self.capture.cursor,
                "captured": self.capture.captured,
                "refused": self.capture.refused,
                "last_error": self.capture.last_error,
            }
        return body


class Gateway:
    """The running gateway. ``scanners`` and ``indicators`` replace the configured drivers
    (tests, demo)."""

    def __init__(
        self,
        settings: Settings,
        *,
        scanners: Mapping[str, Scanner] | None = None,
        indicators: Mapping[str, BackgroundIndicator] | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.settings = settings
        self.root = settings.topic_root
        self.notifier = notifier or Notifier()
        self.clock = ClockSync()
        self.decode_options = DecodeOptions.from_settings(settings.decode)
        self.counters = Counters()
        self.started_at = time.time()
        self.devices: dict[str, DeviceInfo] = {}
        self.alarms: dict[str, str] = {}
        self.last_reads: dict[str, dict[str, Any]] = {}  # per station: the last captured read
        self.process = ProcessId.of(os.getpid())
        self._status_changed = asyncio.Event()
        self._connected_once = asyncio.Event()  # the first connection: start-up is over
        self._status_file_failed = False
        self._injected = dict(scanners or {})
        self._scanners: dict[str, Scanner] = {}  # the driver each scanner runs now, for health
        self._injected_indicators = dict(indicators or {})
        self.feedback: Feedback | None = None
        self.metrics: Any = None  # gatewayd.http.metrics.Metrics when [http] is configured
        self.http_port: int | None = None  # the port the HTTP server listens on
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self.outbox: Outbox | None = None
        self.stations: Stations | None = None
        self.link: MqttLink | None = None
        self.publisher: Publisher | None = None
        self.printing: PrintService | None = None
        self.epcis: EpcisOutput | None = None
        self.job_feed: Feed | None = None
        self._recovered_through = 0  # seq up to which an outbox recovery must be delivered
        self.requests = Requests(
            root=self.root,
            max_payload_bytes=settings.mqtt.max_payload_bytes,
            publish=self._publish_response,
            spawn=self.background,
            response_topic_prefixes=settings.mqtt.response_topic_prefixes,
        )

    # -- lifecycle -------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then shut down in order."""
        s = self.settings
        state_dir = s.gateway.state_dir
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError([f"gateway.state_dir: cannot create {state_dir} ({exc.strerror})"]) from None
        async with contextlib.AsyncExitStack() as stack:
            # Unwound in reverse on every exit: tasks stop before the link closes, the
            # link closes (saying offline) before the outbox does.
            outbox = Outbox.open(
                state_dir / "outbox.sqlite3", s.outbox, on_recovery=self._outbox_recovered, gap_event=self._gap_event
            )
            stack.callback(self._close_outbox, outbox)
            self.outbox = outbox
            # Unwound after the link has closed and before the outbox does: the last word.
            stack.callback(self._write_status_file, "stopped")
            self.stations = Stations(s, load=outbox.get_meta, save=outbox.set_meta)
            self.counters.suppressed_by_station = self.stations.suppressed
            for sc in s.scanners:
                self.devices[sc.id] = DeviceInfo("disconnected", "not opened yet", time.time(), reported=False)
                self.counters.reads[sc.id] = 0
            for ind in s.indicators:
                self.devices[ind.id] = DeviceInfo("disconnected", "not opened yet", time.time(), reported=False)
            link = MqttLink(
                settings=s.mqtt,
                client_id=s.mqtt.client_id or f"gatewayd-{s.gateway.id}",
                will_topic=f"{self.root}/status",
                will_payload=json_bytes(self.status_payload("offline", brief=True)),
                subscriptions=[f"{self.root}/request/#"],
                on_connected=self._on_connected,
                on_ack=self._on_ack,
                on_message=self._on_message,
                on_problem=self.set_alarm,
                # Scans, EPCIS documents (their own window) and room for states and responses.
                max_inflight=s.outbox.inflight * (2 if s.epcis is not None else 1) + 100,
            )
            self.link = link
            snapshots = os.environ.get(SNAPSHOT_ENV)
            publisher = Publisher(
                link=link,
                outbox=outbox,
                settings=s.outbox,
                on_delivered=self._on_delivered,
                on_latency=self._on_latency,
                on_synced=_Snapshots(outbox, Path(snapshots)) if snapshots else None,
            )
            self.publisher = publisher
            # Indicators and station pages first: the first read already shows on them.
            self.feedback = await stack.enter_async_context(
                Feedback(
                    s,
                    station_info=self._station_info,
                    on_state=self.device_state,
                    indicators=self._injected_indicators,
                    scanner_link=self._scanners.get,  # a scanner indicator sends host commands on it
                )
            )
            if s.http is not None:
                await self._start_http(stack)
            if s.epcis is not None:
                self.epcis = EpcisOutput(self, outbox, link)
                stack.callback(self.epcis.outbox.close)
            # Every command handler is in place before the first connection: a request the
            # broker kept for our persistent session arrives right after CONNACK.
            self._register_commands(stack)
            if s.printers:
                await self._start_printing(stack)
            await stack.enter_async_context(link)
            await stack.enter_async_context(publisher)  # leaving it writes the last delivery marks
            if self.epcis is not None:
                await self.epcis.start(stack)
            stack.push_async_callback(self._say_offline)
            stack.push_async_callback(self._stop_tasks)
            for sc in s.scanners:
                self.spawn(self._scanner_loop(sc), f"gatewayd[scanner {sc.id}].read")
            self.spawn(self._housekeeping(), "gatewayd[outbox].housekeeping")
            self.spawn(self._status_file_loop(), "gatewayd[status].file")
            if self.notifier.watchdog_interval:
                self.spawn(self._watchdog(self.notifier.watchdog_interval), "gatewayd[systemd].watchdog")
            log.info(
                "gatewayd %s started: gateway %s, %d station(s), %d scanner(s), "
                "outbox %s (last seq %d, %d undelivered)",
                __version__,
                s.gateway.id,
                len(s.stations),
                len(s.scanners),
                outbox.path,
                outbox.last_seq,
                outbox.depth,
            )
            self.notifier.ready(self._status_line())
            self.background(self._after_start(), "gatewayd[start].tables")
            await stop.wait()
            log.info("stopping: closing scanners")
            self.notifier.stopping()
            await self._stop_tasks()
            # The print path stops as the stack unwinds, after the link has closed, so no
            # request reaches it once it has stopped.
            publisher.wake()
            await self._settle(publisher, timeout=2.0)
        log.info("stopped")

    async def _after_start(self) -> None:
        """Once online (or :data:`AFTER_START_WAIT_S` after start, with no broker): load the
        decoder's GS1 tables (biip, about 60 ms), off the path to ``online``, then give what
        start-up freed back to the system. On the loop thread on purpose: what a worker
        thread frees stays in its own malloc arena, which the trim does not shrink. A read
        that comes meanwhile waits for it, as it would have waited for the start."""
        with contextlib.suppress(TimeoutError):  # `online` goes out first (or the broker is away)
            await asyncio.wait_for(self._connected_once.wait(), AFTER_START_WAIT_S)
        await asyncio.sleep(0)
        load_tables()
        release_freed_memory()

    def _register_commands(self, stack: contextlib.AsyncExitStack) -> None:
        assert self.outbox is not None and self.link is not None
        replay = Replay(
            outbox=self.outbox,
            link=self.link,
            inflight_limit=self.settings.outbox.inflight,
            spawn=self.background,
            also=self.epcis.replay if self.epcis is not None else None,
        )
        builtin = {
            "station/step": self._request_station_step,
            "replay": replay.handle,
            "health": self._request_health,
            "rebirth": self._request_rebirth,
        }
        if self.feedback is not None:
            builtin["feedback"] = self.feedback.handle
        for command, handler in builtin.items():
            stack.callback(self.requests.register(command, handler))
        if not self.settings.printers:
            self.requests.explain("print", "no printers are configured on this gateway")
            self.requests.explain("print/status", "no printers are configured on this gateway")

    async def _start_http(self, stack: contextlib.AsyncExitStack) -> None:
        """Station pages, /metrics and /healthz; loaded only when ``[http]`` is configured."""
        from gatewayd.http.metrics import Metrics
        from gatewayd.http.server import GatewayView, HttpServer

        assert self.settings.http is not None and self.feedback is not None
        self.metrics = Metrics(self.metrics_snapshot)
        view = GatewayView(
            gateway=self.settings.gateway.id, feedback=self.feedback, metrics=self.metrics, health=self.health_reasons
        )
        server = await stack.enter_async_context(HttpServer(self.settings.http, view))
        self.http_port = server.port

    async def _start_printing(self, stack: contextlib.AsyncExitStack) -> None:
        """The print path: its queue and printer workers, and its request handlers."""
        # Imported here, when printers are configured: the print path brings label
        # rendering and its libraries, which a scan-only gateway should not load at start.
        from gatewayd.delivery.feed import Feed, FeedEvent
        from gatewayd.printing.service import PrintService

        printing = PrintService(self.settings, on_job_event=self._job_event, on_printer_state=self._printer_state)
        try:
            await printing.start()
        except (sqlite3.Error, OSError) as exc:
            # A damaged or unreadable job store must stop printing, not scanning. It is
            # not replaced by a fresh one: its job ids are what keeps a redelivered print
            # request from printing a lot label twice.
            await printing.stop()
            state_dir = self.settings.gateway.state_dir
            detail = (
                f"printing is unavailable: cannot open the print-job store in {state_dir} ({exc}); "
                "scanning goes on. Move the damaged print_jobs.sqlite3 or lots.sqlite3 aside "
                "(a fresh one forgets which job ids were printed) and restart"
            )
            self.set_alarm("printing_unavailable", detail)
            for command in ("print", "print/status"):
                self.requests.explain(command, detail)
            return
        stack.push_async_callback(printing.stop)
        self.printing = printing
        assert self.link is not None

        async def pending(after_seq: int, limit: int) -> list[FeedEvent]:
            events = await printing.pending_events(after_seq, limit)
            root = self.root
            return [
                FeedEvent(e.seq, f"{root}/printers/{e.printer}/jobs", json_bytes(job_payload(e.printer, e.payload)))
                for e in events
            ]

        # Job events go out from the job store, at least once and in order, like scans:
        # an outcome reached during a broker outage is delivered after it.
        feed = Feed(name="jobs", link=self.link, pending=pending, delivered=printing.events_delivered)
        await stack.enter_async_context(feed)  # left before printing.stop closes the store
        self.job_feed = feed
        for command, handler in printing.handlers().items():
            stack.callback(self.requests.register(command, handler))

    def _close_outbox(self, outbox: Outbox) -> None:
        # A late paho callback (a CONNACK racing the shutdown) must find no outbox rather
        # than a closed one: see the guards in the MQTT callbacks.
        self.outbox = None
        outbox.close()

    async def _settle(self, publisher: Publisher, *, timeout: float) -> None:
        # Give in-flight events a moment to be acknowledged before saying goodbye.
        assert self.link is not None
        deadline = time.monotonic() + timeout
        while self.link.connected and publisher.inflight and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    async def _say_offline(self) -> None:
        """Publish ``offline`` if connected, then close the link (every exit path)."""
        assert self.link is not None
        await self.link.close(final=(f"{self.root}/status", json_bytes(self.status_payload("offline"))))

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """A long-lived task, cancelled on the way out."""
        self._tasks.append(asyncio.create_task(coro, name=name))

    async def _stop_tasks(self) -> None:
        tasks, self._tasks = self._tasks + list(self._background), []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def background(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- read path -------------------------------------------------------------------

    def _scanner(self, sc: ScannerSettings) -> Scanner:
        if sc.id in self._injected:
            return self._injected[sc.id]
        return build_scanner(sc, on_state=self.device_state)

    async def _scanner_loop(self, sc: ScannerSettings) -> None:
        backoff = Backoff(initial=1.0, maximum=60.0)
        while True:
            try:
                scanner = self._scanner(sc)
                self._scanners[sc.id] = scanner
                async with scanner:
                    # Each read is handled on the driver's own turn of the loop, as it comes.
                    await scanner.deliver(functools.partial(self._take_read, sc, backoff))
                return  # a scanner whose reads end (a replay file) is done
            except asyncio.CancelledError:
                raise
            except (ConfigError, DeviceUnavailable, OSError, ImportError) as exc:
                detail = "; ".join(exc.problems) if isinstance(exc, ConfigError) else str(exc)
                self.device_state(sc.id, DeviceState.ERROR, detail)
            except Exception as exc:
                log.exception("scanner %s: unexpected error", sc.id)
                self.device_state(sc.id, DeviceState.ERROR, f"internal error: {exc!r}")
            await asyncio.sleep(backoff.next_delay())

    def _take_read(self, sc: ScannerSettings, backoff: Backoff, read: RawRead) -> None:
        backoff.reset()
        try:
            self.handle_read(sc, read)
        except Exception:
            # A bug must not cost the read silently, nor stop the scanner.
            self._refused(sc, read, "internal error")
            log.exception("REFUSED read from %s (internal error): raw=%r", sc.id, read.data)

    def handle_read(self, sc: ScannerSettings, read: RawRead) -> None:
        """Decode, dedupe, tag and capture one read. Runs on the loop thread."""
        assert self.stations is not None and self.outbox is not None
        stations = self.stations
        self.counters.reads[sc.id] = self.counters.reads.get(sc.id, 0) + 1
        result = scan_event(
            read,
            settings=self.settings,
            station=stations[sc.station],
            scanner=sc.id,
            clock_synced=self.clock.synced(),
            step_command=self.stations.step_command,
            options=self.decode_options,
            prefix=prefix_of(sc),
            is_repeat=lambda key: stations.is_repeat(sc.station, key, read.monotonic),
        )
        if result is None:
            return  # a repeat within the station's window, found before decoding it
        if isinstance(result, StepCommandRead):
            self.counters.step_commands += 1
            state = self.stations.set_step(sc.station, result.step, at=read.at)
            log.info("station %s: step set to %s by a step command scanned on %s", sc.station, state.step, sc.id)
            if self.epcis is not None:
                self.epcis.step_changed(sc.station)
            self.publish_station(sc.station)
            return
        station, raw = result.station.id, result.scan.raw
        tracker = self.epcis.tracker if self.epcis is not None else None
        bind: list[Callable[[], None]] = []  # the door context of the payload kept, if any

        def build(seq: int, event_id: str) -> bytes:
            # The outbox builds again after a recovery moved the seq: the last build is
            # the one captured, and only its door-context change may be applied.
            body = result.body(seq, event_id)
            bind.clear()
            if tracker is not None:
                context, commit = tracker.scan(body)
                if context is not None:
                    body["context"] = context
                bind.append(commit)
            return json_bytes(body)

        assert self.publisher is not None
        try:
            # A live read goes to the broker while its row is written (Outbox.capture).
            event = self.outbox.capture(
                topic=f"{self.root}/scans/{station}", build=build, at=read.at, live=self.publisher
            )
        except OutboxFull as exc:
            self._refused(sc, read, "outbox full")
            # Loud and complete: the journal keeps what the outbox could not.
            log.error("REFUSED read from %s at %s (%s): raw=%r", sc.id, station, exc, raw)
            self.set_alarm("outbox_full", str(exc))
            return
        except CommitDeferred as exc:
            # It went out before its commit, which failed: kept (memory and seq.live) and
            # written before anything else once the disk takes writes; reads wait till then.
            event = exc.event
            log.error(
                "outbox: cannot write %s (%s): seq %d, already published, is kept until it can be "
                "written; reads are refused until then", self.outbox.path, exc.cause, event.seq,
            )  # fmt: skip
            self.set_alarm("outbox_error", f"cannot write {self.outbox.path}: {exc.cause}")
        except (sqlite3.Error, OSError) as exc:
            # Disk full, I/O error, a read-only state directory: the same promise holds.
            self._refused(sc, read, "outbox write failed")
            log.error("REFUSED read from %s at %s (outbox write failed: %s): raw=%r", sc.id, station, exc, raw)
            self.set_alarm("outbox_error", f"cannot write {self.outbox.path}: {exc}")
            return
        else:
            self.set_alarm("outbox_error", None)
        for commit in bind:
            commit()  # the read is captured: it belongs to its dispatch / receiving context
        self.counters.captured += 1
        self.last_reads[station] = {
            "at": rfc3339(read.at),
            "seq": event.seq,
            "scanner": sc.id,
            "kind": result.scan.kind,
        }
        self.status_changed()
        c = self.counters.captured_by_station
        c[station] = c.get(station, 0) + 1
        self.publisher.captured(event)
        if self.feedback is not None:
            self.feedback.read_captured(
                station,
                seq=event.seq,
                event_id=event.event_id,
                scanner=sc.id,
                at=read.at,
                fields=result.scan.payload_fields(),
            )
        if self.epcis is not None:
            self.epcis.wake()  # derived after this read is on its way, never before

    def _refused(self, sc: ScannerSettings, read: RawRead, reason: str) -> None:
        self.counters.refused += 1
        r = self.counters.refused_by_scanner
        r[sc.id] = r.get(sc.id, 0) + 1
        if self.feedback is not None:
            self.feedback.read_refused(sc.station, scanner=sc.id, at=read.at, reason=reason)

    # -- device, station and printer state -------------------------------------------

    def device_state(self, device: str, state: DeviceState, detail: str) -> None:
        old = self.devices.get(device)
        if old is not None and old.state == state.value and old.detail == detail:
            return
        info = DeviceInfo(state.value, detail, time.time())
        self.devices[device] = info
        self.status_changed()
        level = logging.INFO if state is DeviceState.CONNECTED else logging.WARNING
        log.log(level, "device %s: %s%s", device, state.value, f" ({detail})" if detail else "")
        self._publish_device(device)
        self._show_device(device)

    def _station_devices(self) -> list[tuple[str, str, str]]:
        """(device, kind, station) of every configured device that serves a station."""
        s = self.settings
        out = [(sc.id, "scanner", sc.station) for sc in s.scanners]
        out += [(i.id, "indicator", i.station) for i in s.indicators]
        out += [(p.id, "printer", p.station) for p in s.printers if p.station is not None]
        return out

    def _device_view(self, device: str, kind: str) -> dict[str, Any]:
        if kind == "printer":
            states = self.printing.printer_states() if self.printing is not None else {}
            st = states.get(device) or {"state": "unknown", "detail": "not checked yet", "since": None}
            return {"id": device, "kind": kind, "state": st.get("state"), "detail": st.get("detail"),
                    "since": st.get("since")}
        info = self.devices.get(device)
        if info is None:
            return {"id": device, "kind": kind, "state": "unknown", "detail": None, "since": None}
        return {"id": device, "kind": kind, "state": info.state, "detail": info.detail, "since": rfc3339(info.since)}

    def _show_device(self, device: str) -> None:
        if self.feedback is None:
            return
        for did, kind, station in self._station_devices():
            if did == device:
                self.feedback.notify(station, "device", self._device_view(did, kind))

    def _station_info(self, station: str) -> dict[str, Any]:
        """What a station page shows beside verdicts and reads: its step and its devices."""
        assert self.stations is not None
        st = self.stations[station]
        return {
            "step": {"step": st.step, "since": rfc3339(st.since)},
            "devices": [self._device_view(d, k) for d, k, s in self._station_devices() if s == station],
            "context": self.epcis.context(station) if self.epcis is not None else None,
        }

    def _publish_device(self, device: str) -> None:
        info = self.devices[device]
        self.publish_retained(
            f"{self.root}/devices/{device}/state", device_payload(device, info.state, info.detail, info.since)
        )

    def publish_station(self, station_id: str) -> None:
        assert self.stations is not None
        st = self.stations[station_id]
        context = self.epcis.context(station_id) if self.epcis is not None else None
        if self.feedback is not None:
            self.feedback.notify(station_id, "step", {"step": st.step, "since": rfc3339(st.since)})
            if self.epcis is not None:
                self.feedback.notify(station_id, "context", context or {})
        self.publish_retained(
            f"{self.root}/stations/{station_id}/state",
            station_payload(st.id, st.step, st.biz_step, st.since, context=context),
        )

    def _printer_state(self, printer: str, state: dict[str, Any]) -> None:
        self.status_changed()
        station = next((p.station for p in self.settings.printers if p.id == printer), None)
        self.publish_retained(f"{self.root}/printers/{printer}/state", printer_payload(printer, state, station=station))
        if station is not None and self.feedback is not None:
            view = {"id": printer, "kind": "printer", **{k: state.get(k) for k in ("state", "detail", "since")}}
            self.feedback.notify(station, "device", view)

    def _outbox_recovered(self, recovery: Recovery) -> None:
        """The outbox set a damaged or lost database aside (it logged what it did)."""
        # The alarm stays until the WMS has everything the recovery salvaged or announced
        # (see _on_delivered); the kept files stay for someone to look at.
        self._recovered_through = max(self._recovered_through, recovery.through_seq)
        self.set_alarm("outbox_recovered", recovery.describe())
        if self.publisher is not None:
            self.publisher.wake()  # salvaged undelivered events and the gap announcement

    def _gap_event(self, seq: int, event_id: str, gap: Gap, at: float) -> tuple[str, bytes]:
        body = gap_payload(
            seq,
            event_id,
            from_seq=gap.from_seq,
            to_seq=gap.to_seq,
            reason=gap.reason,
            at=at,
            gateway=self.settings.gateway.id,
        )
        return f"{self.root}/scans/{GAP_TOPIC}", json_bytes(body)

    def _job_event(self, printer: str, job: dict[str, Any]) -> None:
        if isinstance(job.get("state"), str):
            key = (printer, job["state"])
            self.counters.print_jobs[key] = self.counters.print_jobs.get(key, 0) + 1
        # Already recorded in the job store: the feed publishes it from there.
        if self.job_feed is not None:
            self.job_feed.wake()

    def publish_retained(self, topic: str, payload: Mapping[str, Any]) -> None:
        if self.link is not None and self.link.connected:
            self.link.publish(topic, json_bytes(payload), retain=True)
        # While offline the retained state is re-published on the next connect.

    def set_alarm(self, name: str, detail: str | None) -> None:
        if detail is None:
            if self.alarms.pop(name, None) is not None:
                log.warning("alarm cleared: %s", name)
                self.publish_status()
            return
        if self.alarms.get(name) != detail:
            if name not in self.alarms:
                log.error("ALARM %s: %s", name, detail)
            self.alarms[name] = detail
            self.publish_status()

    # -- status ----------------------------------------------------------------------

    def status_payload(self, state: str, *, brief: bool = False) -> dict[str, Any]:
        s = self.settings
        body: dict[str, Any] = {
            "schema": "gatewayd.status/1",
            "state": state,
            "gateway": s.gateway.id,
            "version": __version__,
            "started_at": rfc3339(self.started_at),
        }
        if s.gateway.site:
            body["site"] = s.gateway.site
        if brief:
            return body
        body["at"] = rfc3339(time.time())
        body["clock_synced"] = self.clock.synced()
        if self.stations is not None:
            body["stations"] = {st.id: self._station_status(st.id, st.step, st.since) for st in self.stations.all()}
        body["scanners"] = {
            sc.id: self.devices[sc.id].state if sc.id in self.devices else "unknown" for sc in s.scanners
        }
        printers = self.printing.printer_states() if self.printing is not None else {}
        body["printers"] = {p.id: printers[p.id]["state"] if p.id in printers else "unknown" for p in s.printers}
        if self.outbox is not None:
            st = self.outbox.stats()
            body["outbox"] = {
                "depth": st.depth,
                "bytes": st.depth_bytes,
                "last_seq": st.last_seq,
                "oldest_undelivered_seq": st.oldest_undelivered_seq,
                "oldest_undelivered_at": rfc3339(st.oldest_undelivered_at) if st.oldest_undelivered_at else None,
                "first_retained_seq": st.first_retained_seq,
                "full": st.full,
                "refused": st.refused,
            }
        if self.epcis is not None:
            body["epcis"] = self.epcis.status()
        body["alarms"] = [{"alarm": k, "detail": v} for k, v in sorted(self.alarms.items())]
        return body

    def _station_status(self, station: str, step: str, since: float) -> dict[str, Any]:
        status: dict[str, Any] = {"step": step, "since": rfc3339(since)}
        if station in self.last_reads:
            status["last_read"] = self.last_reads[station]
        return status

    def health_reasons(self) -> list[str]:
        """Why the gateway is unhealthy (``/healthz`` answers 503 with these); [] = healthy."""
        reasons: list[str] = []
        if self.outbox is None:
            reasons.append("not running: the outbox is closed")
        if self.link is None or not self.link.connected:
            err = self.link.last_error if self.link is not None else None
            reasons.append("broker not connected" + (f" ({err})" if err else ""))
        reasons += [f"{name}: {detail}" for name, detail in sorted(self.alarms.items())]
        for sc in self.settings.scanners:
            info = self.devices.get(sc.id)
            if info is not None and info.reported and info.state != DeviceState.CONNECTED.value:
                reasons.append(f"scanner {sc.id} {info.state}" + (f" ({info.detail})" if info.detail else ""))
        return reasons

    def metrics_snapshot(self) -> Any:
        """The counters and gauges ``/metrics`` exports (a gatewayd.http.metrics.MetricsSnapshot)."""
        from gatewayd.http.metrics import MetricsSnapshot

        s = self.settings
        c = self.counters
        snap = MetricsSnapshot(
            reads={(sc.station, sc.id): c.reads.get(sc.id, 0) for sc in s.scanners},
            captured={st.id: c.captured_by_station.get(st.id, 0) for st in s.stations},
            suppressed=dict(c.suppressed_by_station),
            refused={(sc.station, sc.id): c.refused_by_scanner.get(sc.id, 0) for sc in s.scanners},
            broker_connected=self.link is not None and self.link.connected,
            print_jobs=dict(c.print_jobs),
            verdicts=dict(self.feedback.verdicts) if self.feedback is not None else {},
            printer_states=PRINTER_STATES,
        )
        if self.outbox is not None:
            snap.outbox_depth = self.outbox.depth
            st = self.outbox.stats()
            snap.outbox_bytes = st.depth_bytes
            if st.oldest_undelivered_at is not None:
                snap.oldest_undelivered_age_s = max(0.0, time.time() - st.oldest_undelivered_at)
        states = self.printing.printer_states() if self.printing is not None else {}
        snap.printer_state = {p.id: str((states.get(p.id) or {}).get("state", "unknown")) for p in s.printers}
        kinds = {sc.id: "scanner" for sc in s.scanners} | {i.id: "indicator" for i in s.indicators}
        snap.devices = {d: (kinds.get(d, "device"), info.state) for d, info in self.devices.items()}
        return snap

    def publish_status(self) -> None:
        self.status_changed()
        self.publish_retained(f"{self.root}/status", self.status_payload("online"))

    def status_changed(self) -> None:
        """Something ``gatewayd status`` shows changed: write the status file soon."""
        self._status_changed.set()

    async def _status_file_loop(self) -> None:
        while True:
            self._write_status_file("running")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._status_changed.wait(), REFRESH_S)
            await asyncio.sleep(STATUS_FILE_GAP_S)
            self._status_changed.clear()

    def _write_status_file(self, state: str) -> None:
        """``state_dir/status.json`` for ``gatewayd status``: the health answer, this
        process, how often it is rewritten. A failure is logged once and never stops the
        gateway: the file is for people, the outbox is what matters."""
        path = self.settings.gateway.state_dir / STATUS_FILE
        body = self.health(state=state)
        body["process"] = self.process.to_dict() if self.process else {"pid": os.getpid()}
        body["refresh_s"] = REFRESH_S
        try:
            write_status(path, body)
        except OSError as exc:
            if not self._status_file_failed:
                log.warning("cannot write %s (%s): gatewayd status will not see this gateway", path, exc)
            self._status_file_failed = True
            return
        self._status_file_failed = False

    def _status_line(self) -> str:
        assert self.outbox is not None
        box = self.outbox
        link = self.link
        broker = f"connected to {link.broker}" if link and link.connected else "broker not connected"
        return (
            f"{broker}; outbox {box.depth} undelivered, last seq {box.last_seq}; "
            f"{self.counters.captured} reads captured"
        )

    def rebirth(self) -> None:
        """Re-publish every retained state (on connect and on ``request/rebirth``)."""
        self.publish_status()
        assert self.stations is not None
        for st in self.stations.all():
            self.publish_station(st.id)
        for device, info in list(self.devices.items()):
            if info.reported:
                self._publish_device(device)
        if self.printing is not None:
            for printer, state in self.printing.printer_states().items():
                self._printer_state(printer, state)

    # -- requests --------------------------------------------------------------------

    def _publish_response(self, topic: str, payload: bytes, correlation_data: bytes | None) -> None:
        if self.link is not None:
            self.link.publish(topic, payload, correlation_data=correlation_data)

    def _request_station_step(self, body: dict[str, Any]) -> dict[str, Any]:
        check_fields(body, {"station", "step"})
        station = body.get("station")
        step = body.get("step")
        assert self.stations is not None
        if not isinstance(station, str) or station not in self.stations:
            known = ", ".join(st.id for st in self.stations.all())
            raise PayloadError(f"station must be one of {known}, got {station!r}")
        if step not in STEPS:
            raise PayloadError(f"step must be one of {', '.join(STEPS)}, got {step!r}")
        state = self.stations.set_step(station, step)
        log.info("station %s: step set to %s by request", station, step)
        if self.epcis is not None:
            self.epcis.step_changed(station)
        self.publish_station(station)
        return station_payload(state.id, state.step, state.biz_step, state.since)

    def _request_health(self, body: dict[str, Any]) -> dict[str, Any]:
        check_fields(body, set())
        return self.health()

    def health(self, *, state: str = "online") -> dict[str, Any]:
        """The status plus counters, the broker link, and each device's and printer's state
        with its detail and since: the ``health`` answer and the status file."""
        status = self.status_payload(state)
        c = self.counters
        status["counters"] = {
            "reads": dict(c.reads),
            "captured": c.captured,
            "suppressed_repeats": c.suppressed,
            "refused": c.refused,
            "step_commands": c.step_commands,
        }
        if self.publisher is not None:
            status["counters"].update(
                published=self.publisher.published,
                delivered=self.publisher.delivered,
                rejected=self.publisher.rejected,
                inflight=self.publisher.inflight,
            )
        if self.link is not None:
            status["mqtt"] = {
                "connected": self.link.connected,
                "broker": str(self.link.broker) if self.link.broker else None,
                "protocol": "5" if self.link.v5 else "3.1.1",  # with "auto", per broker
                "last_error": self.link.last_error,
            }
        # Keyboard wedges count the keys that typed nothing outside a read (never published).
        ignored = {sid: getattr(sc, "ignored_keys", None) for sid, sc in sorted(self._scanners.items())}
        status["counters"]["ignored_keys"] = {sid: n for sid, n in ignored.items() if isinstance(n, int)}
        status["devices"] = {
            d: {"state": i.state, "detail": i.detail, "since": rfc3339(i.since)}
            for d, i in sorted(self.devices.items())
        }
        if self.printing is not None:
            status["printer_states"] = self.printing.printer_states()
        return status

    def _request_rebirth(self, body: dict[str, Any]) -> dict[str, Any]:
        check_fields(body, set())
        self.rebirth()
        return {"republished": True}

    # -- MQTT callbacks --------------------------------------------------------------

    def _on_connected(self) -> None:
        if self.outbox is None:
            return  # shutting down
        self.rebirth()
        self._connected_once.set()
        self.notifier.status(self._status_line())
        assert self.publisher is not None
        self.publisher.on_connected()
        if self.epcis is not None:
            self.epcis.publisher.on_connected()
        if self.job_feed is not None:
            self.job_feed.on_connected()

    def _on_ack(self, mid: int, ok: bool, reason: str) -> None:
        if self.outbox is None:
            return  # shutting down: the mark is lost, the event is redelivered next start
        if self.job_feed is not None and self.job_feed.on_ack(mid, ok, reason):
            return
        assert self.publisher is not None
        self.publisher.on_ack(mid, ok, reason)  # each publisher takes only its own mids
        if self.epcis is not None:
            self.epcis.publisher.on_ack(mid, ok, reason)

    def _on_latency(self, seconds: float) -> None:
        if self.metrics is not None:
            self.metrics.observe_delivery(seconds)

    def _on_delivered(self) -> None:
        if self.outbox is None:
            return
        if "outbox_full" in self.alarms and not self.outbox.full:
            self.set_alarm("outbox_full", None)
        if "outbox_recovered" in self.alarms:
            first = self.outbox.first_undelivered_seq()
            if first is None or first > self._recovered_through:
                log.warning("outbox: what the recovery salvaged and announced is delivered")
                self.set_alarm("outbox_recovered", None)

    def _on_message(self, msg: Message) -> None:
        if self.outbox is None:
            return  # shutting down: too late to act on a request
        self.requests.handle(msg)

    # -- periodic work ---------------------------------------------------------------

    async def _housekeeping(self) -> None:
        assert self.outbox is not None
        last_prune = 0.0
        while True:
            await asyncio.sleep(STATUS_INTERVAL_S)
            try:
                # The file at the outbox path must still be ours and intact (it recovers
                # and raises the alarm itself if not); a passive checkpoint bounds the WAL.
                self.outbox.check()
                if self.outbox.write_unwritten():
                    self.set_alarm("outbox_error", None)
                self.outbox.checkpoint()
                if time.monotonic() - last_prune > PRUNE_INTERVAL_S:
                    last_prune = time.monotonic()
                    self.outbox.prune()
                    if self.epcis is not None:
                        self.epcis.prune()
            except (sqlite3.Error, OSError) as exc:
                log.error("outbox housekeeping failed (will retry): %s", exc)
            if not self.outbox.full:
                self.set_alarm("outbox_full", None)
            self.publish_status()
            self.notifier.status(self._status_line())

    async def _watchdog(self, interval: float) -> None:
        while True:
            self.notifier.watchdog()
            await asyncio.sleep(interval)
