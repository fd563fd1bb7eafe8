"""USB HID Point-of-Sale scanners: decoded-data input reports read from hidraw or pyusb.

In HID-POS mode (usage page 0x8C, "Bar Code Scanner", HID Point of Sale Usage Tables) a
scanner sends each read as input reports of this shape (Honeywell, Zebra and Access-IS
document the same layout for their 64-byte report)::

    byte 0       report id 0x02 (decoded data)
    byte 1       number of data bytes in this report
    bytes 2..4   AIM symbology identifier, "]" + code character + modifier (e.g. "]Q1"),
                 or zero bytes when the scanner does not send it
    bytes 5..60  data, zero padded (56 bytes)
    byte 61      vendor symbology id (Honeywell code id), informative
    byte 62      reserved
    byte 63      bit 0: more reports of the same read follow (continuation)

Unlike a keyboard wedge, the data arrives as bytes, GS (0x1D) and all, with no keyboard
layout involved, and the symbology identifier comes out of band. The node is found
through ``/sys/class/hidraw/*/device/uevent`` (``HID_ID``, ``HID_UNIQ``); where no hidraw
node exists pyusb reads the interrupt IN endpoint (``gatewayd[usb]``, imported lazily).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import importlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from gatewayd_drivers.background_scanner import BackgroundScanner
from gatewayd_drivers.backoff import Backoff
from gatewayd_drivers.base import DeviceState, DriverError, RawRead, StateListener, ignore_state
from gatewayd_drivers.device_discovery import DeviceDiscovery
from gatewayd_drivers.framing import StateReporter

__all__ = [
    "REPORT_ID_DECODED_DATA",
    "HidPosAssembler",
    "HidPosRead",
    "HidPosScanner",
    "HidrawReportSource",
    "PyusbReportSource",
    "ReportSource",
    "open_report_source",
]

REPORT_ID_DECODED_DATA = 0x02
_HEADER = 5  # report id, length, 3 symbology bytes
_TRAILER = 3  # vendor symbology id, reserved, flags
PERMISSION_HINT = (
    "install config/99-gatewayd.rules (udevadm control --reload && udevadm trigger) and "
    "add the gatewayd user to group gatewayd"
)
PYUSB_MISSING = "pyusb is not installed: pip install 'gatewayd[usb]'"


@dataclass(frozen=True, slots=True)
class HidPosRead:
    data: bytes
    symbology: str | None
    errors: tuple[str, ...] = ()


@dataclass(slots=True)
class _Pending:
    data: bytearray = field(default_factory=bytearray)
    symbology: str | None = None
    errors: list[str] = field(default_factory=list)
    reports: int = 0


class HidPosAssembler:
    """Joins decoded-data reports into reads; pure, fed one report at a time.

    ``feed`` returns a read when a report without the continuation flag completes it.
    Reports with another report id (status, feature echoes) are not data and are
    skipped. A length byte larger than the report can carry is recorded as an error and
    the bytes present are kept.
    """

    def __init__(self, *, max_length: int = 8192) -> None:
        if max_length < 1:
            raise ValueError(f"max_length {max_length}: expected at least 1")
        self._max_length = max_length
        self._pending = _Pending()

    @property
    def pending(self) -> bool:
        return self._pending.reports > 0

    def feed(self, report: bytes) -> HidPosRead | None:
        if not report or report[0] != REPORT_ID_DECODED_DATA:
            return None
        pending = self._pending
        if len(report) < _HEADER + _TRAILER:
            pending.errors.append(
                f"decoded-data report of {len(report)} bytes: expected at least "
                f"{_HEADER + _TRAILER} (id, length, 3 symbology bytes, data, 3 trailer bytes)"
            )
            return self._complete()
        if pending.reports == 0:
            pending.symbology = self._symbology(report[2:5], pending.errors)
        pending.reports += 1
        area = report[_HEADER:-_TRAILER]
        length = report[1]
        if length > len(area):
            pending.errors.append(
                f"report {pending.reports} says {length} data bytes but carries at most "
                f"{len(area)}: kept {len(area)}"
            )
        chunk = area[:length]
        room = self._max_length - len(pending.data)
        if len(chunk) > room:
            pending.errors.append(f"read longer than {self._max_length} bytes: the rest was cut")
            chunk = chunk[: max(room, 0)]
        pending.data += chunk
        if report[-1] & 0x01:
            return None  # continuation: more reports of this read follow
        return self._complete()

    def flush(self, reason: str) -> HidPosRead | None:
        """The partial read after its continuation never came (timeout or unplug)."""
        if not self.pending:
            return None
        self._pending.errors.append(f"continuation report missing ({reason}): read incomplete")
        return self._complete()

    @staticmethod
    def _symbology(aim: bytes, errors: list[str]) -> str | None:
        if aim == b"\0\0\0":
            return None  # AIM identifiers switched off in the scanner
        if aim[0] == ord("]") and all(0x20 < b < 0x7F for b in aim):
            return aim.decode("ascii")
        errors.append(
            f"symbology bytes {aim.hex(' ')}: expected ']' and two characters (AIM) or zeros"
        )
        return None

    def _complete(self) -> HidPosRead:
        pending, self._pending = self._pending, _Pending()
        return HidPosRead(bytes(pending.data), pending.symbology, tuple(pending.errors))


class ReportSource(Protocol):
    """An opened HID-POS device: its input reports as bytes, and close."""

    def close(self) -> None: ...

    def reports(self) -> AsyncIterator[bytes]: ...


class HidrawReportSource:
    """Input reports from ``/dev/hidrawN``: one ``read()`` returns one report."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    async def reports(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        while True:
            ready: asyncio.Future[None] = loop.create_future()
            loop.add_reader(self._fd, ready.set_result, None)
            try:
                await ready
            finally:
                loop.remove_reader(self._fd)
            try:
                report = os.read(self._fd, 4096)
            except BlockingIOError:
                continue
            if not report:
                raise OSError(errno.ENODEV, "hidraw node closed")
            yield report


class PyusbReportSource:
    """Input reports from the interrupt IN endpoint, where no hidraw node exists."""

    def __init__(self, usb: str, serial_number: str | None = None) -> None:
        try:
            core: Any = importlib.import_module("usb.core")
            util: Any = importlib.import_module("usb.util")
        except ImportError:
            raise DriverError(PYUSB_MISSING) from None
        vendor, product = (int(part, 16) for part in usb.split(":"))
        device = core.find(
            idVendor=vendor, idProduct=product,
            custom_match=None if serial_number is None
            else lambda d: util.get_string(d, d.iSerialNumber) == serial_number,
        )
        if device is None:
            raise FileNotFoundError(errno.ENOENT, f"no USB device {usb}")
        config = device.get_active_configuration()
        interface = next(i for i in config if i.bInterfaceClass == 3)  # HID
        if device.is_kernel_driver_active(interface.bInterfaceNumber):
            device.detach_kernel_driver(interface.bInterfaceNumber)
        self._endpoint = util.find_descriptor(
            interface,
            custom_match=lambda e: util.endpoint_direction(e.bEndpointAddress) == util.ENDPOINT_IN,
        )
        self._device, self._util, self._core = device, util, core

    def close(self) -> None:
        self._util.dispose_resources(self._device)

    async def reports(self) -> AsyncIterator[bytes]:
        size = self._endpoint.wMaxPacketSize
        while True:
            try:
                data = await asyncio.to_thread(self._endpoint.read, size, 1000)
            except self._core.USBTimeoutError:
                continue
            except self._core.USBError as exc:
                raise OSError(exc.errno or errno.EIO, str(exc)) from exc
            yield bytes(data)


def open_report_source(target: str) -> ReportSource:
    """``/dev/hidrawN`` -> hidraw; ``usb://VID:PID[/serial]`` -> pyusb."""
    if target.startswith("usb://"):
        usb, _, serial = target.removeprefix("usb://").partition("/")
        return PyusbReportSource(usb, serial or None)
    return HidrawReportSource(target)


class HidPosScanner(BackgroundScanner):
    """One HID-POS scanner. ``async with scanner:`` then ``async for read in scanner.reads():``."""

    kind = "hidpos scanner"

    def __init__(
        self,
        *,
        id: str,
        usb: str,
        serial_number: str | None = None,
        continuation_timeout: float = 1.0,
        on_state: StateListener = ignore_state,
        backoff: Backoff | None = None,
        discovery: DeviceDiscovery | None = None,
        opener: Callable[[str], ReportSource] | None = None,
    ) -> None:
        parts = usb.split(":")
        if len(parts) != 2 or not all(len(p) == 4 for p in parts):
            raise ValueError(f"hidpos scanner {id!r}: usb {usb!r}: expected VID:PID in hex")
        try:
            for part in parts:
                int(part, 16)
        except ValueError:
            raise ValueError(
                f"hidpos scanner {id!r}: usb {usb!r}: expected VID:PID in hex") from None
        self.id = id
        self.usb = usb.lower()
        self.serial_number = serial_number
        self._continuation_timeout = continuation_timeout
        self._report = StateReporter(id, on_state)
        self._backoff = backoff or Backoff()
        self._discovery = discovery or DeviceDiscovery()
        self._opener = opener or open_report_source
        self._assembler = HidPosAssembler()

    @property
    def match(self) -> str:
        return self.usb + (f" serial {self.serial_number}" if self.serial_number else "")

    def _emit(self, read: HidPosRead | None) -> None:
        if read is not None:
            assert self._queue is not None  # set by __aenter__, before _run starts
            self._queue.put(RawRead(data=read.data, device=self.id,
                                           symbology=read.symbology, errors=read.errors))

    async def _wait(self) -> None:
        await asyncio.sleep(self._backoff.next_delay())

    def _find(self) -> str | None:
        node = self._discovery.find_hidraw(usb=self.usb, serial_number=self.serial_number)
        if node is not None:
            return node
        return self._discovery.find_usb(usb=self.usb, serial_number=self.serial_number)

    async def _run(self) -> None:
        while True:
            target = self._find()
            if target is None:
                self._report(DeviceState.DISCONNECTED, f"no HID-POS device matches {self.match}")
                await self._wait()
                continue
            try:
                source = self._opener(target)
            except FileNotFoundError:
                await self._wait()
                continue
            except PermissionError:
                self._report(DeviceState.ERROR,
                             f"permission denied on {target}: {PERMISSION_HINT}")
                await self._wait()
                continue
            except OSError as exc:
                self._report(DeviceState.ERROR, f"cannot open {target}: {exc.strerror or exc}")
                await self._wait()
                continue
            except DriverError as exc:
                self._report(DeviceState.ERROR, str(exc))
                await self._wait()
                continue
            try:
                self._report(DeviceState.CONNECTED, target)
                self._backoff.reset()
                reason = await self._pump(source)
            finally:
                source.close()
            self._emit(self._assembler.flush(reason))
            self._report(DeviceState.DISCONNECTED, f"{target}: {reason}")
            await self._wait()

    async def _pump(self, source: ReportSource) -> str:
        reports: asyncio.Queue[bytes | OSError | None] = asyncio.Queue()

        async def pump() -> None:
            try:
                async for report in source.reports():
                    reports.put_nowait(report)
            except OSError as exc:
                reports.put_nowait(exc)
            else:
                reports.put_nowait(None)

        task = asyncio.create_task(pump(), name=f"gatewayd[scanner {self.id}].reports")
        try:
            while True:
                timeout = self._continuation_timeout if self._assembler.pending else None
                try:
                    item = await asyncio.wait_for(reports.get(), timeout)
                except TimeoutError:
                    self._emit(self._assembler.flush(
                        f"none within {self._continuation_timeout:g} s"))
                    continue
                if item is None:
                    return "report stream ended"
                if isinstance(item, OSError):
                    if item.errno in (errno.ENODEV, errno.EIO):
                        return f"device removed ({errno.errorcode[item.errno]})"
                    return f"read failed: {item.strerror or item}"
                self._emit(self._assembler.feed(item))
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
