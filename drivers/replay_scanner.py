"""A scanner that replays reads from a text file: for the demo, tests and site trials.

The file holds one read per line, UTF-8 text, with escapes for the bytes a barcode carries
that a text editor does not show::

    # receiving at dock 03, morning shift
    ]C1010950600013435210ABC123<GS>17271231
    @delay 0.5
    ]Q1https://id.gs1.org/01/09506000134352/10/ABC123
    ]d2\\x1d0109506000134352

- Escapes are those of :mod:`gatewayd_drivers.raw_escapes`, the grammar ``gatewayd decode``
  reads too: ``\\xHH`` (one byte, two hex digits), ``\\r``, ``\\n``, ``\\t``, ``\\\\``, and
  control characters by their ASCII name in angle brackets: ``<GS>`` (the GS1 group
  separator, 0x1D), ``<RS>``, ``<EOT>``... A read that really starts with ``#`` or ``@``
  writes it as ``\\x23`` / ``\\x40``.
- Blank lines and lines starting with ``#`` are skipped.
- ``@delay SECONDS`` waits that long before the next read instead of ``interval``; several
  in a row add up.

The file may instead be a device capture (``# gatewayd capture v1``, recorded by
``gatewayd capture``): its records are decoded by the driver code of the kind that recorded
them (:mod:`gatewayd_drivers.capture_reads`), symbology and driver errors included, and the
reads come at the times they completed in the recording (``pace="recorded"``) or one after
another (``pace="fast"``, with ``interval`` between them).

When the file ends, ``reads()`` waits for more only in the sense that it stays open (a real
scanner does not end either), or the file starts over when ``loop=True``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

from gatewayd_drivers.background_scanner import BackgroundScanner
from gatewayd_drivers.backoff import Backoff
from gatewayd_drivers.base import DeviceState, RawRead, StateListener, ignore_state
from gatewayd_drivers.capture import is_capture, parse_capture
from gatewayd_drivers.framing import StateReporter, describe_os_error
from gatewayd_drivers.raw_escapes import unescape

__all__ = [
    "ReplayDelay",
    "ReplayRead",
    "ReplayScanner",
    "parse_capture_replay",
    "parse_replay",
    "unescape",  # re-exported: the grammar lives in raw_escapes
]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReplayRead:
    """A read to deliver; ``line`` is its line number in the file (its number among the
    reads of a capture), ``symbology`` and ``errors`` what the driver of a capture gave it."""

    data: bytes
    line: int
    symbology: str | None = None
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReplayDelay:
    """``@delay SECONDS``: wait before the next read."""

    seconds: float
    line: int


def parse_replay(text: str) -> list[ReplayRead | ReplayDelay]:
    """The steps of a replay file. Raises :class:`ValueError` naming the line of a mistake."""
    steps: list[ReplayRead | ReplayDelay] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.startswith("@"):
            steps.append(_directive(line, number))
            continue
        try:
            steps.append(ReplayRead(unescape(line), number))
        except ValueError as exc:
            raise ValueError(f"line {number}: {exc}") from None
    return steps


def parse_capture_replay(text: str, *, device: str, pace: str = "recorded") -> list[ReplayRead | ReplayDelay]:
    """The steps of a capture file: its reads, with the recorded gaps between them as
    delays when ``pace`` is ``"recorded"``. Raises :class:`ValueError` naming the line."""
    if pace not in ("recorded", "fast"):
        raise ValueError(f"pace {pace!r}: expected 'recorded' or 'fast'")
    # The decoding of every driver (keymaps, HID-POS layouts) is loaded only for a capture.
    from gatewayd_drivers.capture_reads import capture_reads

    steps: list[ReplayRead | ReplayDelay] = []
    previous = 0.0
    for number, timed in enumerate(capture_reads(parse_capture(text), device=device).reads, start=1):
        if pace == "recorded" and timed.offset is not None:
            steps.append(ReplayDelay(max(timed.offset - previous, 0.0), number))
            previous = timed.offset
        steps.append(ReplayRead(timed.read.data, number, timed.read.symbology, timed.read.errors))
    return steps


def _directive(line: str, number: int) -> ReplayDelay:
    words = line.split()
    if words[0] != "@delay":
        raise ValueError(
            f"line {number}: unknown directive {words[0]!r}; expected '@delay SECONDS'"
        )
    try:
        if len(words) != 2:
            raise ValueError
        seconds = float(words[1])
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"line {number}: {line.strip()!r} is not a delay; "
            "expected '@delay SECONDS' with a number of seconds >= 0, e.g. '@delay 0.5'"
        ) from None
    return ReplayDelay(seconds, number)


class ReplayScanner(BackgroundScanner):
    """Replays the reads of a file as if scanned. ``async with`` then ``reads()``.

    ``interval`` seconds pass between reads unless an ``@delay`` says otherwise, and a read
    is only replayed once the previous one was taken from ``reads()``. A missing
    or unreadable file is reported ``disconnected``, a mistake in it ``error`` (with the
    line); both are retried with backoff, so fixing the file is enough.
    """

    kind = "replay scanner"
    task_name = "replay"

    def __init__(
        self,
        *,
        id: str,
        path: Path,
        interval: float = 0.0,
        loop: bool = False,
        pace: str = "recorded",
        on_state: StateListener = ignore_state,
        backoff: Backoff | None = None,
    ) -> None:
        if not math.isfinite(interval) or interval < 0:
            raise ValueError(f"replay scanner {id}: interval must be >= 0 seconds, got {interval}")
        if pace not in ("recorded", "fast"):
            raise ValueError(f"replay scanner {id}: pace must be 'recorded' or 'fast', got {pace!r}")
        self.id = id
        self.pace = pace
        self.path = Path(path)
        self.interval = interval
        self.loop = loop
        self._report = StateReporter(id, on_state)
        self._backoff = backoff if backoff is not None else Backoff()

    def __repr__(self) -> str:
        return f"ReplayScanner(id={self.id!r}, path={str(self.path)!r})"

    async def _load(self) -> list[ReplayRead | ReplayDelay]:
        while True:
            try:
                text = await asyncio.to_thread(self.path.read_text, encoding="utf-8")
                if is_capture(text):
                    return parse_capture_replay(text, device=self.id, pace=self.pace)
                return parse_replay(text)
            except OSError as exc:
                self._report(
                    DeviceState.DISCONNECTED, f"{self.path}: cannot read ({describe_os_error(exc)})"
                )
            except ValueError as exc:  # also UnicodeDecodeError: not UTF-8 text
                self._report(DeviceState.ERROR, f"{self.path}: {exc}")
            await asyncio.sleep(self._backoff.next_delay())

    async def _run(self) -> None:
        assert self._queue is not None
        steps = await self._load()
        count = sum(isinstance(step, ReplayRead) for step in steps)
        self._report(DeviceState.CONNECTED, f"{self.path}: replaying {count} reads")
        first = True
        delay: float | None = None
        while count:
            for step in steps:
                if isinstance(step, ReplayDelay):
                    delay = (delay or 0.0) + step.seconds
                    continue
                wait = delay if delay is not None else (0.0 if first else self.interval)
                await asyncio.sleep(wait)
                first, delay = False, None
                self._queue.put(
                    RawRead(step.data, device=self.id, symbology=step.symbology, at=time.time(),
                            monotonic=time.monotonic(), errors=step.errors)
                )
                # A file can wait, unlike a scanner: go at the reader's pace, so a looping
                # replay with no interval does not fill memory faster than reads are taken.
                await self._queue.wait_drained()
            if not self.loop:
                break
        _log.info("scanner %s: %s replayed", self.id, self.path)
        await asyncio.Future()  # a scanner stays open after its last read, as a real one does
