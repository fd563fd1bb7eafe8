"""Printer transports by URL: the one grammar of ``[[printers]].transport``, and the factory.

``open_transport("tcp://10.0.0.50:9100", id="dock-03-zebra", timeout=10.0)`` returns an
unopened :class:`~gatewayd_drivers.base.PrinterTransport`; use it as ``async with t:``.
The URL forms (config/gatewayd.example.toml documents them for site engineers):

* ``tcp://host[:port]``: raw TCP; the port defaults to 9100, the raw port of Zebra and
  most ESC/POS network printers,
* ``usb://VID:PID`` (hex, pyusb),
* ``file:///dev/usb/lp0`` (a device node or a plain file),
* ``serial:///dev/ttyUSB0[?baudrate=19200]`` (9600 baud by default),
* ``cups://QUEUE`` (a raw CUPS queue, through ``lp``).

:func:`parse_printer_url` is the grammar: the config validates ``transport`` with it and
:func:`open_transport` builds from it, so what ``gatewayd check`` accepts is what the
daemon opens. Its messages follow a key path (``printers[0].transport: ...``), so they
start in lower case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeAlias
from urllib.parse import parse_qs, quote, unquote, urlsplit

from gatewayd_drivers.base import PrinterTransport
from gatewayd_drivers.cups_printer import QUEUE_NAME_RE, CupsPrinter
from gatewayd_drivers.file_printer import FilePrinter
from gatewayd_drivers.serial_printer import DEFAULT_BAUDRATE, SerialPrinter
from gatewayd_drivers.tcp_printer import RAW_PORT, TcpPrinter
from gatewayd_drivers.usb_printer import UsbPrinter

__all__ = [
    "URL_FORMS",
    "CupsUrl",
    "FileUrl",
    "PrinterUrl",
    "SerialUrl",
    "TcpUrl",
    "UsbUrl",
    "open_transport",
    "parse_printer_url",
]

URL_FORMS = (
    "tcp://host:port, usb://VID:PID, file:///dev/usb/lp0, serial:///dev/ttyUSB0?baudrate=19200 or cups://QUEUE"
)
_USB_ID_RE = re.compile(r"^([0-9a-fA-F]{4}):([0-9a-fA-F]{4})$")


@dataclass(frozen=True, slots=True)
class TcpUrl:
    host: str
    port: int = RAW_PORT

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp://{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class UsbUrl:
    vid: int
    pid: int

    def __str__(self) -> str:
        return f"usb://{self.vid:04x}:{self.pid:04x}"


@dataclass(frozen=True, slots=True)
class FileUrl:
    path: str

    def __str__(self) -> str:
        return f"file://{quote(self.path)}"


@dataclass(frozen=True, slots=True)
class SerialUrl:
    port: str
    baudrate: int = DEFAULT_BAUDRATE

    def __str__(self) -> str:
        return f"serial://{quote(self.port)}?baudrate={self.baudrate}"


@dataclass(frozen=True, slots=True)
class CupsUrl:
    queue: str

    def __str__(self) -> str:
        return f"cups://{quote(self.queue, safe='')}"


# A parsed printer URL; ``str()`` gives its canonical form, defaults spelled out.
PrinterUrl: TypeAlias = TcpUrl | UsbUrl | FileUrl | SerialUrl | CupsUrl


def parse_printer_url(url: str) -> PrinterUrl:
    """Parse a ``[[printers]].transport`` URL; :class:`ValueError` says what is wrong.

    >>> parse_printer_url("tcp://10.0.0.50")
    TcpUrl(host='10.0.0.50', port=9100)
    """
    parts = urlsplit(url)
    scheme = parts.scheme
    if scheme not in ("tcp", "usb", "file", "serial", "cups"):
        raise ValueError(f"unsupported printer URL {url!r}: expected {URL_FORMS}")
    if parts.query and scheme != "serial":
        raise ValueError(f"unknown options {parts.query!r} in printer URL {url!r}: a {scheme} URL has none")
    if scheme == "tcp":
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"bad port in printer URL {url!r}: expected 1-65535") from None
        if port == 0:
            raise ValueError(f"bad port in printer URL {url!r}: expected 1-65535")
        if not parts.hostname:
            raise ValueError(f"missing host in printer URL {url!r}: expected tcp://host[:port]")
        if parts.path not in ("", "/") or parts.username is not None:
            raise ValueError(f"expected only a host and a port in printer URL {url!r} (tcp://host[:port])")
        return TcpUrl(parts.hostname) if port is None else TcpUrl(parts.hostname, port)
    if scheme == "usb":
        match = _USB_ID_RE.match(parts.netloc)
        if match is None or parts.path:
            raise ValueError(
                f"bad USB id in printer URL {url!r}: expected usb://VID:PID in hex, such as usb://0a5f:0164"
            )
        return UsbUrl(int(match[1], 16), int(match[2], 16))
    if scheme in ("file", "serial"):
        path = unquote(parts.path)
        if not path:
            raise ValueError(f"missing device path in printer URL {url!r}: expected {scheme}:///dev/...")
        if scheme == "file":
            return FileUrl(path)
        baudrate = DEFAULT_BAUDRATE
        for key, values in parse_qs(parts.query).items():
            if key != "baudrate":
                raise ValueError(f"unknown option {key!r} in printer URL {url!r}: expected only baudrate=<number>")
            if not values[-1].isdigit() or int(values[-1]) == 0:
                raise ValueError(f"baudrate must be a number in printer URL {url!r}, such as baudrate=19200")
            baudrate = int(values[-1])
        return SerialUrl(path, baudrate)
    queue = unquote(parts.netloc or parts.path.strip("/"))
    if not queue:
        raise ValueError(f"missing queue name in printer URL {url!r}: expected cups://QUEUE")
    if not QUEUE_NAME_RE.match(queue) or queue.startswith("-"):
        raise ValueError(
            f"bad queue name {queue!r} in printer URL {url!r}: expected printable characters, "
            "no spaces, '/', '\\', quotes or '#', not starting with '-'"
        )
    return CupsUrl(queue)


def open_transport(url: str | PrinterUrl, *, id: str, timeout: float) -> PrinterTransport:
    """Build the transport a ``[[printers]].transport`` URL names (not yet opened).

    Raises :class:`ValueError` naming the URL and what was expected when it cannot be used.
    """
    parsed = parse_printer_url(url) if isinstance(url, str) else url
    match parsed:
        case TcpUrl(host, port):
            return TcpPrinter(id=id, host=host, port=port, timeout=timeout)
        case UsbUrl(vid, pid):
            return UsbPrinter(id=id, vid=vid, pid=pid, timeout=timeout)
        case FileUrl(path):
            return FilePrinter(id=id, path=path, timeout=timeout)
        case SerialUrl(port, baudrate):
            return SerialPrinter(id=id, port=port, baudrate=baudrate, timeout=timeout)
        case CupsUrl(queue):
            return CupsPrinter(id=id, queue=queue, timeout=timeout)
