"""Builds scanner drivers from validated settings (drivers never see the config)."""

from __future__ import annotations

from gatewayd.config import ScannerSettings
from gatewayd.errors import ConfigError
from gatewayd_drivers.base import Scanner, StateListener

__all__ = ["build_scanner"]


def build_scanner(s: ScannerSettings, *, on_state: StateListener) -> Scanner:
    framing = s.framing
    char_timeout = framing.char_timeout_ms / 1000 if framing.char_timeout_ms else None
    if s.driver == "serial":
        from gatewayd_drivers.serial_scanner import SerialScanner

        assert s.port is not None
        return SerialScanner(
            id=s.id,
            port=s.port,
            baudrate=s.baudrate,
            bytesize=s.bytesize,
            parity=s.parity,
            stopbits=s.stopbits,
            terminator=framing.terminator.encode(),
            stx_etx=framing.stx_etx,
            char_timeout=char_timeout,
            max_length=framing.max_length,
            on_state=on_state,
        )
    if s.driver == "tcp":
        from gatewayd_drivers.tcp_scanner import TcpScanner

        assert s.host is not None and s.tcp_port is not None
        return TcpScanner(
            id=s.id,
            host=s.host,
            port=s.tcp_port,
            mode=s.mode,
            terminator=framing.terminator.encode(),
            stx_etx=framing.stx_etx,
            char_timeout=char_timeout,
            max_length=framing.max_length,
            on_state=on_state,
        )
    if s.driver == "replay":
        from pathlib import Path

        from gatewayd_drivers.replay_scanner import ReplayScanner

        assert s.path is not None
        return ReplayScanner(id=s.id, path=Path(s.path), interval=s.interval_s, loop=s.loop, on_state=on_state)
    if s.driver == "evdev":
        from gatewayd_drivers.evdev_scanner import EvdevScanner

        return EvdevScanner(
            id=s.id,
            path=s.path,
            name=s.name,
            usb=s.usb,
            layout=s.layout,
            terminator_key=s.terminator_key,
            gs_substitute=s.gs_substitute,
            on_state=on_state,
        )
    if s.driver == "hidpos":
        from gatewayd_drivers.hidpos_scanner import HidPosScanner

        assert s.usb is not None
        return HidPosScanner(id=s.id, usb=s.usb, serial_number=s.serial_number, on_state=on_state)
    raise ConfigError([f"scanners: {s.id}: unknown driver {s.driver!r}"])
