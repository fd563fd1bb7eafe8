"""The feedback service: verdicts to a station's indicators and page, at once.

The daemon tells it about each read (:meth:`Feedback.read_captured`,
:meth:`Feedback.read_refused`) and hands it ``request/feedback``
(:meth:`Feedback.handle`). The gateway shows what it knows itself at once: a read it
could not decode is ``warn`` "unreadable: scan again"; a read captured and sent is a
neutral ``sent`` (lamps dark), which also clears the previous read's verdict, so a reject
left over from the last pallet is never taken for this one's.

A verdict names the read it answers by ``event_id`` or ``seq`` (or, naming none, answers
the station's latest read). A verdict for an earlier read, arriving after a newer read at
the station, is shown as such: marked ``earlier`` with that read's lot on the page, on
that read's row, and blinking on the lights (:func:`~gatewayd.feedback.verdicts.signal_for`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self

from gatewayd.clock import rfc3339
from gatewayd.config import Settings
from gatewayd.errors import PayloadError
from gatewayd.feedback.board import Board, ReadRow, Subscription
from gatewayd.feedback.indicators import build_indicator
from gatewayd.feedback.verdicts import FeedbackRequest, parse_feedback_request, signal_for
from gatewayd_drivers.base import StateListener, ignore_state
from gatewayd_drivers.indicator import IDLE, BackgroundIndicator, Signal

__all__ = ["UNREADABLE", "Feedback"]

log = logging.getLogger("gatewayd.feedback")

UNREADABLE = "unreadable: scan again"


class Feedback:
    """``async with Feedback(settings, ...)``: opens the indicators, keeps the boards.

    ``station_info(station)`` returns what the page shows beside verdicts and reads (the
    step, the devices); ``indicators`` replaces the configured drivers (tests, demo).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        station_info: Callable[[str], dict[str, Any]] = lambda station: {},
        on_state: StateListener = ignore_state,
        indicators: Mapping[str, BackgroundIndicator] | None = None,
        scanner_link: Callable[[str], object] = lambda scanner: None,
    ) -> None:
        self.settings = settings
        self.station_info = station_info
        self.on_state = on_state
        self.boards = {s.id: Board(s.id) for s in settings.stations}
        self.verdicts: dict[tuple[str, str], int] = {}  # (station, verdict) -> count, for /metrics
        self._injected = dict(indicators or {})
        self._scanner_link = scanner_link
        self.indicators: dict[str, list[BackgroundIndicator]] = {s.id: [] for s in settings.stations}
        self._stack = contextlib.AsyncExitStack()
        self._buzz_s = settings.feedback.buzz_ms / 1000
        self._shows: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Self:
        async with contextlib.AsyncExitStack() as stack:
            for s in self.settings.indicators:
                ind = self._injected.get(s.id) or build_indicator(
                    s, on_state=self.on_state, scanner_link=self._scanner_link
                )
                await stack.enter_async_context(ind)
                self.indicators[s.station].append(ind)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for board in self.boards.values():
            board.close()
        await self._stack.aclose()

    # -- the page ------------------------------------------------------------------------

    def snapshot(self, station: str) -> dict[str, Any]:
        return self.boards[station].snapshot(lambda: self.station_info(station))

    def subscribe(self, station: str) -> Subscription:
        return self.boards[station].subscribe()

    def unsubscribe(self, station: str, sub: Subscription) -> None:
        self.boards[station].unsubscribe(sub)

    def notify(self, station: str, kind: str, data: dict[str, Any]) -> None:
        """Pass a step or device change on to the station's pages."""
        if station in self.boards:
            self.boards[station].emit(kind, data)

    # -- what the gateway knows itself ------------------------------------------------------

    def read_captured(
        self, station: str, *, seq: int, event_id: str, scanner: str, at: float, fields: Mapping[str, Any]
    ) -> None:
        """A read was captured (``fields``: its scan-event fields): show ``sent``, or
        ``warn`` when it could not be decoded."""
        board = self.boards[station]
        unreadable = fields.get("kind") == "unknown"
        verdict = "warn" if unreadable else "sent"
        row = ReadRow(
            seq=seq,
            event_id=event_id,
            scanned_at=rfc3339(at),
            scanner=scanner,
            kind=str(fields.get("kind")),
            raw=str(fields.get("raw") or ""),
            lot=fields.get("lot"),
            gtin=fields.get("gtin"),
            expiry=fields.get("expiry"),
            errors=[str(e) for e in fields.get("errors") or []],
            verdict=verdict,
        )
        board.add_read(row)
        self._show(board, verdict, UNREADABLE if unreadable else None, row, source="gateway", earlier=False)

    def read_refused(self, station: str, *, scanner: str, at: float, reason: str) -> None:
        """A read could not be recorded (outbox full, disk error): the operator must know."""
        board = self.boards[station]
        row = ReadRow(seq=None, event_id=None, scanned_at=rfc3339(at), scanner=scanner, kind="refused", raw="")
        self._show(board, "warn", f"not recorded: {reason}", row, source="gateway", earlier=False)

    # -- request/feedback ----------------------------------------------------------------------

    def handle(self, body: dict[str, Any]) -> dict[str, Any]:
        req = parse_feedback_request(body, set(self.boards))
        board = self.boards[req.station]
        row, earlier = self._answered(board, req)
        if row is not None and row.seq is not None:
            row.verdict = req.verdict
            board.update_read(row)
        shown = self._show(board, req.verdict, req.message, row, source="wms", earlier=earlier, req=req)
        log.info(
            "feedback %s at %s%s: %s",
            req.verdict,
            req.station,
            f" for seq {row.seq}" if row is not None else "",
            req.message or "",
        )
        return {
            "station": req.station,
            "verdict": req.verdict,
            "shown": "earlier" if earlier else "current",
            "seq": shown.get("seq"),
            "event_id": shown.get("event_id"),
            "indicators": [i.id for i in self.indicators[req.station]],
        }

    def _answered(self, board: Board, req: FeedbackRequest) -> tuple[ReadRow | None, bool]:
        """The read a verdict answers, and whether a newer read came at the station since."""
        latest = board.latest
        if req.seq is None and req.event_id is None:
            return latest, False
        row = board.find(seq=req.seq, event_id=req.event_id)
        if row is not None:
            if req.seq is not None and req.event_id is not None and (row.seq, row.event_id) != (req.seq, req.event_id):
                raise PayloadError(
                    f"seq {req.seq} and event_id {req.event_id!r} name different reads at station {req.station}"
                )
            return row, row is not latest
        if req.seq is not None and latest is not None and latest.seq is not None and req.seq > latest.seq:
            raise PayloadError(f"seq {req.seq} is no read at station {req.station} (its latest read is {latest.seq})")
        # A read the board no longer lists (older, or from before a restart): shown with the
        # ids the WMS sent; earlier than the latest read if there is one.
        ghost = ReadRow(seq=req.seq, event_id=req.event_id, scanned_at="", scanner="", kind="", raw="")
        return ghost, latest is not None

    def _show(
        self,
        board: Board,
        verdict: str,
        message: str | None,
        row: ReadRow | None,
        *,
        source: str,
        earlier: bool,
        req: FeedbackRequest | None = None,
    ) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "verdict": verdict,
            "message": message,
            "source": source,
            "earlier": earlier,
            "seq": row.seq if row else None,
            "event_id": row.event_id if row else None,
            "lot": row.lot if row else None,
            "gtin": row.gtin if row else None,
            "expiry": row.expiry if row else None,
            "at": rfc3339(time.time()),
        }
        key = (board.station, verdict)
        self.verdicts[key] = self.verdicts.get(key, 0) + 1
        signal = signal_for(verdict, earlier=earlier, buzz_s=self._buzz_s)
        if earlier and verdict == "accept":
            # Nothing to change: the station shows the newer read's state; the row says it.
            return shown
        board.set_verdict(shown)
        if board.idle_timer is not None:
            board.idle_timer.cancel()
            board.idle_timer = None
        ttl_ms = req.ttl_ms if req is not None and req.ttl_ms is not None else None
        if verdict == "accept" and ttl_ms is None:
            ttl_ms = self.settings.feedback.accept_ms
        if ttl_ms:
            board.idle_timer = asyncio.get_running_loop().call_later(ttl_ms / 1000, self._to_idle, board)
        if signal is not None:
            self._light(board.station, signal)
        return shown

    def _to_idle(self, board: Board) -> None:
        board.idle_timer = None
        board.set_verdict({"verdict": "idle", "message": None, "at": rfc3339(time.time())})
        self._light(board.station, IDLE)

    def _light(self, station: str, signal: Signal) -> None:
        # Every indicator of the station at once; a write waits for no other device.
        for ind in self.indicators.get(station, ()):
            task = asyncio.get_running_loop().create_task(ind.show(signal), name=f"gatewayd[indicator {ind.id}].show")
            self._shows.add(task)
            task.add_done_callback(self._shows.discard)
