"""Builds scanner drivers from validated settings (drivers never see the config)."""

from __future__ import annotations

from pathlib import Path
from typing import assert_never

from gatewayd.config import (
    EvdevScannerSettings,
    FramingSettings,
    HidPosScannerSettings,
    ReplayScannerSettings,
    ScannerSettings,
    SerialScannerSettings,
    TcpScannerSettings,
)
from gatewayd_drivers.base import Scanner, StateListener

__all__ = ["build_scanner"]


def build_scanner(s: ScannerSettings, *, on_state: StateListener) -> Scanner:
    """The driver for ``s``, not yet opened. Drivers with optional dependencies are
    imported here, when configured, so a gateway without them does not need them."""
    match s:
        case SerialScannerSettings():
            from gatewayd_drivers.serial_scanner import SerialScanner

            return SerialScanner(
                id=s.id,
                port=s.port,
                baudrate=s.baudrate,
                bytesize=s.bytesize,
                parity=s.parity,
                stopbits=s.stopbits,
                terminator=s.framing.terminator.encode(),
                stx_etx=s.framing.stx_etx,
                char_timeout=_char_timeout(s.framing),
                max_length=s.framing.max_length,
                on_state=on_state,
            )
        case TcpScannerSettings():
            from gatewayd_drivers.tcp_scanner import TcpScanner

            return TcpScanner(
                id=s.id,
                host=s.host,
                port=s.port,
                mode=s.mode,
                terminator=s.framing.terminator.encode(),
                stx_etx=s.framing.stx_etx,
                char_timeout=_char_timeout(s.framing),
                max_length=s.framing.max_length,
                on_state=on_state,
            )
        case EvdevScannerSettings():
            from gatewayd_drivers.evdev_scanner import EvdevScanner

            return EvdevScanner(
                id=s.id,
                path=s.path,
                name=s.name,
                usb=s.usb,
                layout=s.layout,
                suffix=s.suffix,
                gs_substitute=s.gs_substitute,
                on_state=on_state,
            )
        case HidPosScannerSettings():
            from gatewayd_drivers.hidpos_scanner import HidPosScanner

            return HidPosScanner(id=s.id, usb=s.usb, serial_number=s.serial_number, on_state=on_state)
        case ReplayScannerSettings():
            from gatewayd_drivers.replay_scanner import ReplayScanner

            return ReplayScanner(
                id=s.id, path=Path(s.path), interval=s.interval_s, loop=s.loop, pace=s.pace, on_state=on_state
            )
        case _:
            assert_never(s)


def _char_timeout(framing: FramingSettings) -> float | None:
    """Seconds of silence that end a partial read; ``None``: wait for the terminator."""
    return framing.char_timeout_ms / 1000 if framing.char_timeout_ms else None
