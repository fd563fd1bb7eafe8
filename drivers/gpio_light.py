"""A stack light or relay board on GPIO lines (a Raspberry Pi's header), through gpiozero.

One output line per lamp and one for the buzzer, each optional; ``active_high = False``
for relay boards whose inputs are active low. gpiozero (the ``gpio`` extra) is imported
when the light is first opened, so a gateway without GPIO never loads it. Tests pass
gpiozero's ``MockFactory`` as ``pin_factory``; on a Pi the default factory (lgpio or
RPi.GPIO, whichever gpiozero finds) drives the real lines.

GPIO lines cannot be unplugged; a line that cannot be claimed (busy, no such chip) is
reported ``disconnected`` with the reason and retried with backoff.
"""

from __future__ import annotations

import asyncio
from typing import Any

from gatewayd_drivers.backoff import Backoff
from gatewayd_drivers.base import StateListener, ignore_state
from gatewayd_drivers.indicator import BackgroundIndicator, Lamp

__all__ = ["GpioLight"]

BLINK_S = 0.5  # on and off time of a blinking lamp


class GpioLight(BackgroundIndicator):
    """``pins`` maps ``red`` / ``yellow`` / ``green`` / ``buzzer`` to a GPIO (BCM) number."""

    kind = "gpio light"

    def __init__(
        self,
        *,
        id: str,
        pins: dict[str, int],
        active_high: bool = True,
        pin_factory: Any = None,
        on_state: StateListener = ignore_state,
        backoff: Backoff | None = None,
    ) -> None:
        unknown = sorted(set(pins) - {"red", "yellow", "green", "buzzer"})
        if unknown:
            raise ValueError(f"gpio light {id}: unknown output(s) {', '.join(unknown)}")
        if not pins:
            raise ValueError(f"gpio light {id}: needs at least one of red, yellow, green or buzzer")
        super().__init__(id=id, on_state=on_state, backoff=backoff)
        self.pins = dict(pins)
        self.active_high = active_high
        self.pin_factory = pin_factory
        self._outputs: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"GpioLight(id={self.id!r}, pins={self.pins!r})"

    async def _open(self) -> None:
        try:
            from gpiozero import DigitalOutputDevice
            from gpiozero.exc import GPIOZeroError
        except ImportError as exc:
            # No errno: the reason is the message (describe_os_error would print only ENOPKG's words).
            raise OSError("gpiozero is not installed (pip install 'gatewayd[gpio]')") from exc
        outputs: dict[str, Any] = {}
        try:
            for name, pin in self.pins.items():
                outputs[name] = DigitalOutputDevice(
                    pin, active_high=self.active_high, initial_value=False, pin_factory=self.pin_factory
                )
        except (GPIOZeroError, OSError, RuntimeError) as exc:
            for out in outputs.values():
                out.close()
            raise OSError(f"cannot claim GPIO lines {self.pins}: {exc}") from exc
        self._outputs = outputs

    async def _close(self) -> None:
        outputs, self._outputs = self._outputs, {}
        for out in outputs.values():
            await asyncio.to_thread(out.close)

    async def _set_lamp(self, lamp: Lamp | None, blink: bool) -> None:
        for name in ("red", "yellow", "green"):
            out = self._outputs.get(name)
            if out is None:
                continue
            if lamp is not None and name == lamp.value:
                if blink:
                    out.blink(on_time=BLINK_S, off_time=BLINK_S)
                else:
                    out.on()
            else:
                out.off()

    async def _set_buzzer(self, on: bool) -> None:
        out = self._outputs.get("buzzer")
        if out is None:
            return
        if on:
            out.on()
        else:
            out.off()
