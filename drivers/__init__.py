"""Hardware adapters for gatewayd: scanners yield raw reads, printer transports move bytes.

Nothing in this package imports MQTT, SQLite, the config loader or ``gatewayd``.
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

__all__ = [
    "Backoff",
    "DeviceState",
    "DeviceUnavailable",
    "DriverError",
    "PrinterTransport",
    "RawRead",
    "Scanner",
    "StateListener",
    "ignore_state",
]
