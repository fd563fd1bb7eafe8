"""Indicator settings → the driver that runs the device (as :mod:`gatewayd.reads.scanners` does for scanners)."""

from __future__ import annotations

from collections.abc import Callable

from gatewayd.config import (
    GpioIndicatorSettings,
    IndicatorSettings,
    ScannerIndicatorSettings,
    TowerSerialIndicatorSettings,
)
from gatewayd_drivers.base import StateListener
from gatewayd_drivers.indicator import BackgroundIndicator

__all__ = ["build_indicator"]


def build_indicator(
    s: IndicatorSettings, *, on_state: StateListener, scanner_link: Callable[[str], object] = lambda sid: None
) -> BackgroundIndicator:
    """The driver of one ``[[indicators]]`` entry; its optional library loads when it opens.
    ``scanner_link(id)`` is the running driver of scanner ``id`` (for ``driver = "scanner"``)."""
    if isinstance(s, TowerSerialIndicatorSettings):
        from gatewayd_drivers.tower_light import TowerLight

        return TowerLight(id=s.id, port=s.port, baudrate=s.baudrate, on_state=on_state)
    if isinstance(s, GpioIndicatorSettings):
        from gatewayd_drivers.gpio_light import GpioLight

        pins = {name: pin for name in ("red", "yellow", "green", "buzzer") if (pin := getattr(s, name)) is not None}
        return GpioLight(id=s.id, pins=pins, active_high=s.active_high, on_state=on_state)
    if isinstance(s, ScannerIndicatorSettings):
        from gatewayd_drivers.scanner_light import ScannerLight

        scanner = s.scanner
        return ScannerLight(
            id=s.id, scanner=scanner, link=lambda: scanner_link(scanner), protocol=s.protocol, on_state=on_state
        )
    raise AssertionError(f"no driver for indicator settings {type(s).__name__}")
