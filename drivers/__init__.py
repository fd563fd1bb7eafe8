"""Hardware adapters for gatewayd: scanners yield raw reads, printer transports move bytes.

Nothing in this package imports MQTT, SQLite, the config loader or ``gatewayd``. The
interfaces and fakes are re-exported here; each driver lives in its own module and is
imported where it is used, so an optional dependency (python-evdev, pyusb) is only needed
by the driver that uses it:

==============================  ==========================================================
``gatewayd_drivers.serial_scanner``      ``SerialScanner``: RS-232 and USB CDC scanners (pyserial)
``gatewayd_drivers.tcp_scanner``         ``TcpScanner``: network scanners, client or server mode
``gatewayd_drivers.evdev_scanner``       ``EvdevScanner``: USB keyboard-wedge scanners (python-evdev)
``gatewayd_drivers.hidpos_scanner``      ``HidPosScanner``: USB HID-POS scanners (hidraw, pyusb)
``gatewayd_drivers.replay_scanner``      ``ReplayScanner``: reads from a file (demo, trials)
``gatewayd_drivers.printer_transport``   ``open_transport(url)``: tcp, usb, file, serial, cups
``gatewayd_drivers.zebra_status``        ``~HS`` / ``~HQES`` parsing; ``gatewayd_drivers.escpos_status``: DLE EOT
==============================  ==========================================================
"""

from gatewayd_drivers.backoff import Backoff
from gatewayd_drivers.base import (
    DeviceState,
    DeviceUnavailable,
    DriverError,
    PrinterTransport,
    RawRead,
    Scanner,
    StateListener,
    ignore_state,
)
from gatewayd_drivers.fake import FakeScanner, RecordingTransport
from gatewayd_drivers.framing import Frame, Framer

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
