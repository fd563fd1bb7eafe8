"""The station's own scanner as its indicator: beeper and LEDs by host commands on its link.

The scanner driver (serial, or TCP) keeps the link; this indicator only writes host
commands on it, through the :class:`HostLink` it is given, and is ``connected`` while the
scanner is. One protocol is implemented: Zebra SSI (:mod:`gatewayd_drivers.zebra_ssi`).

============  ==========================================================
signal        host commands
============  ==========================================================
green         LED_OFF red, LED_ON green
red           LED_OFF green, LED_ON red
yellow        LED_ON green and red (amber on a bicolour LED)
dark          LED_OFF green and red
buzzer        BEEP high-low-high (a reject); nothing to switch off
============  ==========================================================

A scanner has no blinking LED command; a blinking signal is shown steady.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from gatewayd_drivers.backoff import Backoff
from gatewayd_drivers.base import StateListener, ignore_state
from gatewayd_drivers.indicator import BackgroundIndicator, Lamp
from gatewayd_drivers.zebra_ssi import BEEP, BEEP_CODES, LED_BITS, LED_OFF, LED_ON, ssi_packet

__all__ = ["PROTOCOLS", "HostLink", "ScannerLight"]

PROTOCOLS = ("zebra-ssi",)
POLL_S = 0.5  # how often the link's state is looked at while it is up

_GREEN, _RED = LED_BITS["green"], LED_BITS["red"]


@runtime_checkable
class HostLink(Protocol):
    """A scanner driver's link, as far as host commands need it."""

    @property
    def linked(self) -> bool: ...

    async def send(self, data: bytes) -> int: ...


class ScannerLight(BackgroundIndicator):
    """``link()`` returns the scanner's current driver (it changes when the scanner is reopened)."""

    kind = "scanner beeper"

    def __init__(
        self,
        *,
        id: str,
        scanner: str,
        link: Callable[[], object],
        protocol: str = "zebra-ssi",
        on_state: StateListener = ignore_state,
        backoff: Backoff | None = None,
    ) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"scanner light {id}: protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
        super().__init__(id=id, on_state=on_state, backoff=backoff or Backoff(initial=0.5, maximum=5.0))
        self.scanner = scanner
        self.link = link
        self.protocol = protocol

    def __repr__(self) -> str:
        return f"ScannerLight(id={self.id!r}, scanner={self.scanner!r}, protocol={self.protocol!r})"

    def _current(self) -> HostLink:
        link = self.link()
        if not isinstance(link, HostLink):
            raise OSError(f"scanner {self.scanner} takes no host commands")
        if not link.linked:
            raise OSError(f"scanner {self.scanner} is not connected")
        return link

    async def _open(self) -> None:
        self._current()

    async def _close(self) -> None:
        pass  # the link belongs to the scanner

    async def _watch(self) -> str:
        while not self._lost.is_set():
            try:
                self._current()
            except OSError as exc:
                return str(exc)
            await asyncio.sleep(POLL_S)
        return "write failed"

    async def _send(self, *packets: bytes) -> None:
        if await self._current().send(b"".join(packets)) == 0:
            raise OSError(f"scanner {self.scanner} is not connected")

    async def _set_lamp(self, lamp: Lamp | None, blink: bool) -> None:
        if lamp is Lamp.GREEN:
            await self._send(ssi_packet(LED_OFF, bytes([_RED])), ssi_packet(LED_ON, bytes([_GREEN])))
        elif lamp is Lamp.RED:
            await self._send(ssi_packet(LED_OFF, bytes([_GREEN])), ssi_packet(LED_ON, bytes([_RED])))
        elif lamp is Lamp.YELLOW:
            await self._send(ssi_packet(LED_ON, bytes([_GREEN | _RED])))
        else:
            await self._send(ssi_packet(LED_OFF, bytes([_GREEN | _RED])))

    async def _set_buzzer(self, on: bool) -> None:
        if on:
            await self._send(ssi_packet(BEEP, bytes([BEEP_CODES["high_low_high"]])))
