"""Indicators: outputs that show a station's verdict to the person at the dock.

An indicator (a tower light, a relay board on GPIO lines, a scanner's own beeper) knows
lamps, blinking and a buzzer, never verdicts: ``gatewayd`` turns a verdict into a
:class:`Signal` and calls :meth:`BackgroundIndicator.show`. Like a scanner, an indicator is
``async with indicator:``; inside, a background task keeps the device open, reports
``connected`` / ``disconnected`` through its state listener, and reopens it with a capped,
jittered backoff after an unplug. The last signal shown is shown again on reopen, so a
light plugged back in shows the current verdict, not a stale or blank one.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from gatewayd_drivers.backoff import Backoff
from gatewayd_drivers.base import DeviceState, StateListener, ignore_state
from gatewayd_drivers.framing import StateReporter, describe_os_error

__all__ = ["IDLE", "BackgroundIndicator", "Lamp", "Signal"]

_log = logging.getLogger(__name__)


class Lamp(enum.StrEnum):
    RED = "red"
    YELLOW = "yellow"
    GREEN = "green"


@dataclass(frozen=True, slots=True)
class Signal:
    """What an indicator shows: one lamp (or none), steady or blinking, and a buzz."""

    lamp: Lamp | None = None
    blink: bool = False
    buzz_s: float = 0.0  # sound the buzzer this long, then stop; 0 = silent


IDLE = Signal()


class BackgroundIndicator:
    """The lifecycle every indicator shares; a driver implements the device part.

    ``_open`` opens the device (raising ``OSError`` or ``DeviceUnavailable`` when it cannot),
    ``_set_lamp`` and ``_set_buzzer`` drive it, ``_watch`` returns (with the reason, in plain
    words) when the device is lost, and ``_close`` closes it.
    """

    kind = "indicator"

    def __init__(self, *, id: str, on_state: StateListener = ignore_state, backoff: Backoff | None = None) -> None:
        self.id = id
        self.current = IDLE
        self._report = StateReporter(id, on_state)
        self._backoff = backoff if backoff is not None else Backoff(initial=0.5, maximum=30.0)
        self._task: asyncio.Task[None] | None = None
        self._buzz: asyncio.Task[None] | None = None
        self._open_now = False
        self._lost = asyncio.Event()
        self._showing = asyncio.Lock()

    # -- what a driver implements ---------------------------------------------------------

    async def _open(self) -> None:
        raise NotImplementedError

    async def _close(self) -> None:
        raise NotImplementedError

    async def _set_lamp(self, lamp: Lamp | None, blink: bool) -> None:
        raise NotImplementedError

    async def _set_buzzer(self, on: bool) -> None:
        raise NotImplementedError

    async def _watch(self) -> str:
        """Wait until the device is lost; the default waits for a failed write."""
        await self._lost.wait()
        return "write failed"

    # -- the shared lifecycle -------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._open_now

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run(), name=f"gatewayd[indicator {self.id}].device")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._buzz is not None:
            self._buzz.cancel()
        if self._open_now:
            with contextlib.suppress(Exception):
                # Leave the light dark: a lamp left on after the gateway stops would say
                # something that nobody decided.
                await self._set_lamp(None, False)
                await self._set_buzzer(False)
        for task in (self._buzz, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._task = self._buzz = None

    async def show(self, signal: Signal) -> None:
        """Show ``signal`` now if the device is open; it is shown on (re)open otherwise."""
        self.current = signal
        # One signal at a time, in the order asked: a reject's buzzer must not sound
        # after the accept that followed it has lit green.
        async with self._showing:
            if not self._open_now or signal is not self.current:
                return  # closed, or a newer signal came while this one waited
            try:
                await self._apply(signal)
            except (OSError, ValueError) as exc:
                self._device_lost(f"write failed ({describe_os_error(exc)})")

    async def _apply(self, signal: Signal) -> None:
        if self._buzz is not None and not self._buzz.done():
            # The last buzz is still sounding: stop it now unless this signal buzzes too.
            self._buzz.cancel()
            if signal.buzz_s <= 0:
                await self._set_buzzer(False)
        self._buzz = None
        await self._set_lamp(signal.lamp, signal.blink)
        if signal.buzz_s > 0:
            await self._set_buzzer(True)
            self._buzz = asyncio.create_task(self._buzz_off(signal.buzz_s), name=f"gatewayd[indicator {self.id}].buzz")

    async def _buzz_off(self, after: float) -> None:
        await asyncio.sleep(after)
        with contextlib.suppress(OSError, ValueError):
            await self._set_buzzer(False)

    def _device_lost(self, detail: str) -> None:
        self._lost_detail = detail
        self._lost.set()

    async def _run(self) -> None:
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # A bug must not leave the station without its light: say so, and retry.
                _log.exception("indicator %s: unexpected error", self.id)
                self._report(DeviceState.ERROR, f"internal error: {exc!r}")
            await asyncio.sleep(self._backoff.next_delay())

    async def _session(self) -> None:
        """Open the device, show the current signal, and return once it is lost."""
        self._lost.clear()
        self._lost_detail = ""
        try:
            await self._open()
        except (OSError, ValueError) as exc:
            self._report(DeviceState.DISCONNECTED, f"cannot open ({describe_os_error(exc)})")
            return
        self._open_now = True
        self._backoff.reset()
        _log.info("indicator %s: open", self.id)
        self._report(DeviceState.CONNECTED, "open")
        try:
            with contextlib.suppress(OSError, ValueError):
                await self._apply(self.current)
            reason = await self._watch()
        finally:
            self._open_now = False
            if self._buzz is not None:
                self._buzz.cancel()
            with contextlib.suppress(Exception):
                await self._close()
        detail = self._lost_detail or reason
        _log.warning("indicator %s: %s", self.id, detail)
        self._report(DeviceState.DISCONNECTED, f"device disconnected ({detail})")
