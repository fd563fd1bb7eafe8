"""Hardware adapters for gatewayd: scanners yield raw reads, printer transports move bytes.

The repository folder ``drivers/`` installs under the import name ``gatewayd_drivers``.
Nothing in it imports MQTT, SQLite, the config loader or ``gatewayd``. The interfaces are
re-exported here; the test fakes (``gatewayd_drivers.fake``) are not, so no product import
loads them. Each driver lives in its own module and is imported where it is used, so an
optional dependency (python-evdev, pyusb) is only needed by the driver that uses it:

=====================  ================================================================
``serial_scanner``     ``SerialScanner``: RS-232 and USB CDC scanners (pyserial)
``tcp_scanner``        ``TcpScanner``: network scanners, client or server mode
``evdev_scanner``      ``EvdevScanner``: USB keyboard-wedge scanners (python-evdev)
``hidpos_scanner``     ``HidPosScanner``: USB HID-POS scanners (hidraw, pyusb)
``replay_scanner``     ``ReplayScanner``: reads from a file (demo, trials)
``raw_escapes``        the one escape grammar for raw reads written as text (``\\x1d``, ``<GS>``)
``printer_transport``  ``open_transport(url)``: tcp, usb, file, serial, cups
``zebra_status``       ``~HS`` / ``~HQES`` parsing; ``escpos_status``: DLE EOT
=====================  ================================================================
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
from gatewayd_drivers.framing import Frame, Framer

__all__ = [
    "Backoff",
    "DeviceState",
    "DeviceUnavailable",
    "DriverError",
    "Frame",
    "Framer",
    "PrinterTransport",
    "RawRead",
    "Scanner",
    "StateListener",
    "ignore_state",
]
