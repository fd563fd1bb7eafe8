"""Hardware adapters for gatewayd: scanners yield raw reads, printer transports move bytes.

Nothing in this package imports MQTT, SQLite, the config loader or ``gatewayd``. The
interfaces and fakes are re-exported here; each driver lives in its own module and is
imported where it is used, so an optional dependency (python-evdev, pyusb) is only needed
by the driver that uses it:

==============================  ==========================================================
``drivers.serial_scanner``      ``SerialScanner``: RS-232 and USB CDC scanners (pyserial)
``drivers.tcp_scanner``         ``TcpScanner``: network scanners, client or server mode
``drivers.evdev_scanner``       ``EvdevScanner``: USB keyboard-wedge scanners (python-evdev)
``drivers.hidpos_scanner``      ``HidPosScanner``: USB HID-POS scanners (hidraw, pyusb)
``drivers.replay_scanner``      ``ReplayScanner``: reads from a file (demo, trials)
``drivers.printer_transport``   ``open_transport(url)``: tcp, usb, file, serial, cups
``drivers.zebra_status``        ``~HS`` / ``~HQES`` parsing; ``drivers.escpos_status``: DLE EOT
==============================  ==========================================================
"""

from drivers.backoff import Backoff
from drivers.base import (
    DeviceState,
    DeviceUnavailable,
    DriverError,
    PrinterTransport,
    RawRead,
    Scanner,
    StateListener,
    ignore_state,
)
from drivers.fake import FakeScanner, RecordingTransport
from drivers.framing import Frame, Framer

__all__ = [
    "Backoff",
    "DeviceState",
    "DeviceUnavailable",
    "DriverError",
    "FakeScanner",
    "Frame",
    "Framer",
    "PrinterTransport",
    "RawRead",
    "RecordingTransport",
    "Scanner",
    "StateListener",
    "ignore_state",
]
