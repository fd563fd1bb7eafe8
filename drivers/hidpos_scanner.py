"""USB HID Point-of-Sale scanners: decoded-data input reports read from hidraw or pyusb.

In HID-POS mode (usage page 0x8C, "Bar Code Scanner", HID Point of Sale Usage Tables 1.02)
a scanner sends each read as one or more input reports holding a Byte Count (Generic
Desktop 0x3B), the AIM symbology identifier (0x8C:0xFB-0xFD), the Decoded Data (0x8C:0xFE),
vendor-defined bytes and the Decoded Data Continued flag (0x8C:0xFF). *Where* each sits in
the report differs between vendors, so the layout comes from the device's own report
descriptor (:mod:`gatewayd_drivers.hid_descriptor`): hidraw's ``HIDIOCGRDESC``, else
``/sys/class/hidraw/hidrawN/device/report_descriptor``, or a USB GET_DESCRIPTOR request
on the pyusb path. Only when none can be read or understood does the driver fall back to
the layout known for the USB vendor (Zebra, Honeywell, Datalogic, Newland) or the
documented generic one.

Unlike a keyboard wedge, the data arrives as bytes, GS (0x1D) and all, with no keyboard
layout involved, and the symbology identifier comes out of band. It is passed on exactly
as the device sent it: a Zebra 05e0:2100 reports a UPC-A as ``]Xg``, a Honeywell 0c2e:1007
the same label as ``]E0``, and neither is rewritten (README, "Scanner settings").

The node is found through ``/sys/class/hidraw/*/device/uevent`` (``HID_ID``,
``HID_UNIQ``); where no hidraw node exists pyusb reads the interrupt IN endpoint
(``gatewayd[usb]``, imported lazily).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import importlib
import logging
import os
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from gatewayd_drivers.background_scanner import BackgroundScanner
from gatewayd_drivers.backoff import Backoff
from gatewayd_drivers.base import DeviceState, DeviceUnavailable, DriverError, RawRead, StateListener, ignore_state
from gatewayd_drivers.capture import BUSY_HINT, Capture, OpenedStream, RawStream
from gatewayd_drivers.device_discovery import DeviceDiscovery
from gatewayd_drivers.framing import StateReporter
from gatewayd_drivers.hid_descriptor import DescriptorError, HidPosLayout, hidpos_layout, layout_for_vendor

__all__ = [
    "HidPosAssembler",
    "HidPosRead",
    "HidPosScanner",
    "HidrawReportSource",
    "PyusbReportSource",
    "ReportSource",
    "choose_layout",
    "open_report_source",
]

_log = logging.getLogger(__name__)

PERMISSION_HINT = (
    "install config/99-gatewayd.rules (udevadm control --reload && udevadm trigger) and "
    "add the gatewayd user to group gatewayd"
)
PYUSB_MISSING = "pyusb is not installed: pip install 'gatewayd[usb]'"


# -- report assembly (pure) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HidPosRead:
    """One read: its data, the AIM identifier the device sent (or ``None``), what went wrong,
    and the vendor-page bytes of its first report (Honeywell's code ID, for example)."""

    data: bytes
    symbology: str | None
    errors: tuple[str, ...] = ()
    vendor: bytes = b""


@dataclass(slots=True)
class _Pending:
    data: bytearray = field(default_factory=bytearray)
    symbology: bytes = b""
    vendor: bytes = b""
    errors: list[str] = field(default_factory=list)
    reports: int = 0


class HidPosAssembler:
    """Joins decoded-data input reports into reads, for any :class:`HidPosLayout`.

    Pure: no I/O, fed one report at a time, so the driver, ``gatewayd decode --capture``,
    the replay driver and the tests share it. ``feed`` returns a read when a report without
    the continuation flag completes one; reports with another report ID (status, command
    answers) are not data and are skipped. The Byte Count says how many of a report's data
    bytes are real: data may hold NUL bytes, so the count, not the first NUL, ends it.
    Nothing is dropped: a count larger than the report can carry, a short report or a
    symbology that changes mid-read is recorded in the read's errors.
    """

    def __init__(self, layout: HidPosLayout, *, max_length: int = 8192) -> None:
        if max_length < 1:
            raise ValueError(f"max_length {max_length}: expected at least 1")
        self.layout = layout
        self._max_length = max_length
        self._pending = _Pending()
        # The last byte any field needs: a shorter report cannot be decoded.
        self._needed = 1 + max(
            layout.data_offset + layout.data_length - 1,
            layout.continuation_offset,
            *layout.symbology_offsets,
            *layout.vendor_offsets,
            (layout.count_offset or 0) + layout.count_size - 1,
        )

    @property
    def pending(self) -> bool:
        """Whether a continued read waits for its next report."""
        return self._pending.reports > 0

    def feed(self, report: bytes) -> HidPosRead | None:
        """The completed read, if ``report`` ends one."""
        layout, pending = self.layout, self._pending
        if layout.report_id is not None and (not report or report[0] != layout.report_id):
            return None
        if len(report) < self._needed:
            short = f"report of {len(report)} bytes: the {layout.name} layout needs {self._needed}"
            if not pending.reports:
                return HidPosRead(b"", None, (short,))
            pending.errors.append(short)  # ends the read: what follows cannot be trusted
            return self._complete()
        pending.reports += 1
        symbology = bytes(report[i] for i in layout.symbology_offsets)
        if pending.reports == 1:
            pending.symbology = symbology
            pending.vendor = bytes(report[i] for i in layout.vendor_offsets)
        elif symbology != pending.symbology and any(symbology):
            # Devices repeat the identifier in every continued report; a change means the
            # last report of the previous read was lost and a new read began.
            pending.errors.append(
                f"report {pending.reports}: symbology bytes {symbology.hex(' ')} differ from "
                f"{pending.symbology.hex(' ')}: a continuation report may be missing"
            )
        area = report[layout.data_offset : layout.data_offset + layout.data_length]
        if layout.count_offset is None:
            chunk = area.rstrip(b"\0")  # no Byte Count: padding and trailing NUL data look alike
        else:
            count = int.from_bytes(report[layout.count_offset : layout.count_offset + layout.count_size], "little")
            if count > layout.data_length:
                pending.errors.append(
                    f"report {pending.reports} says {count} data bytes but carries at most "
                    f"{layout.data_length}: kept {layout.data_length}"
                )
            chunk = area[:count]
        room = self._max_length - len(pending.data)
        if len(chunk) > room:
            cut = f"read longer than {self._max_length} bytes: the rest was cut"
            if cut not in pending.errors:
                pending.errors.append(cut)
            chunk = chunk[:room]
        pending.data += chunk
        if report[layout.continuation_offset] & layout.continuation_mask:
            return None
        return self._complete()

    def flush(self, reason: str) -> HidPosRead | None:
        """The partial read after its last report never came (timeout, unplug, end of capture)."""
        if not self.pending:
            return None
        self._pending.errors.append(f"continuation report missing ({reason}): read incomplete")
        return self._complete()

    def _complete(self) -> HidPosRead:
        pending, self._pending = self._pending, _Pending()
        errors = pending.errors
        return HidPosRead(bytes(pending.data), _aim(pending.symbology, errors), tuple(errors), pending.vendor)


def _aim(raw: bytes, errors: list[str]) -> str | None:
    """The identifier as sent, when it has the ISO/IEC 15424 form ``]`` + code + modifier."""
    if not any(raw):
        return None  # a layout without symbology bytes, or AIM transmission switched off
    if len(raw) == 3 and raw[0] == ord("]") and all(0x20 < b < 0x7F for b in raw[1:]):
        return raw.decode("ascii")
    errors.append(f"symbology bytes {raw.hex(' ')}: expected ']' and two characters (AIM) or zeros")
    return None


def choose_layout(descriptor: bytes | None, vid: int | None, *, device: str = "the device") -> HidPosLayout:
    """The layout of ``descriptor`` if it describes one, else the one known for ``vid``."""
    if descriptor:
        try:
            return hidpos_layout(descriptor)
        except DescriptorError as exc:
            fallback = layout_for_vendor(vid)
            _log.warning(
                "%s: its report descriptor gives no usable HID-POS layout (%s): using the layout %s",
                device, exc, fallback.describe(),
            )  # fmt: skip
            return fallback
    return layout_for_vendor(vid)


# -- device access ------------------------------------------------------------------------


class ReportSource(Protocol):
    """An opened HID-POS device: its report descriptor when it can be read, its input
    reports as bytes, and close."""

    def close(self) -> None: ...

    def descriptor(self) -> bytes | None: ...

    def reports(self) -> AsyncIterator[bytes]: ...


def _ior(kind: str, number: int, size: int) -> int:
    """Linux ``_IOR(type, nr, size)`` (asm-generic/ioctl.h): direction read is 2."""
    return (2 << 30) | (size << 16) | (ord(kind) << 8) | number


HID_MAX_DESCRIPTOR_SIZE = 4096  # linux/hid.h
HIDIOCGRDESCSIZE = _ior("H", 0x01, 4)  # linux/hidraw.h
HIDIOCGRDESC = _ior("H", 0x02, 4 + HID_MAX_DESCRIPTOR_SIZE)  # struct hidraw_report_descriptor


class HidrawReportSource:
    """Input reports from ``/dev/hidrawN``: one ``read()`` returns one report."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def descriptor(self) -> bytes | None:
        """The report descriptor through ``HIDIOCGRDESC``; ``None`` where the node cannot tell."""
        try:
            size_buf = bytearray(4)
            fcntl.ioctl(self._fd, HIDIOCGRDESCSIZE, size_buf, True)
            (size,) = struct.unpack("=I", size_buf)
            buf = bytearray(4 + HID_MAX_DESCRIPTOR_SIZE)
            struct.pack_into("=I", buf, 0, min(size, HID_MAX_DESCRIPTOR_SIZE))
            fcntl.ioctl(self._fd, HIDIOCGRDESC, buf, True)
        except OSError:
            return None  # not a hidraw node (ENOTTY), or gone
        return bytes(buf[4 : 4 + min(size, HID_MAX_DESCRIPTOR_SIZE)]) or None

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
            idVendor=vendor,
            idProduct=product,
            custom_match=None
            if serial_number is None
            else lambda d: util.get_string(d, d.iSerialNumber) == serial_number,
        )
        if device is None:
            raise FileNotFoundError(errno.ENOENT, f"no USB device {usb}")
        config = device.get_active_configuration()
        interface = next(i for i in config if i.bInterfaceClass == 3)  # HID
        self._interface = interface
        try:
            if device.is_kernel_driver_active(interface.bInterfaceNumber):
                device.detach_kernel_driver(interface.bInterfaceNumber)
            util.claim_interface(device, interface.bInterfaceNumber)
        except core.USBError as exc:
            raise OSError(exc.errno or errno.EIO, str(exc)) from exc
        self._endpoint = util.find_descriptor(
            interface,
            custom_match=lambda e: util.endpoint_direction(e.bEndpointAddress) == util.ENDPOINT_IN,
        )
        self._device, self._util, self._core = device, util, core

    def close(self) -> None:
        self._util.dispose_resources(self._device)

    def descriptor(self) -> bytes | None:
        """GET_DESCRIPTOR (Report, 0x22) to the HID interface (HID 1.11 section 7.1.1)."""
        length = _report_descriptor_length(bytes(self._interface.extra_descriptors or b""))
        try:
            data = self._device.ctrl_transfer(
                0x81, 0x06, 0x2200, self._interface.bInterfaceNumber, length or HID_MAX_DESCRIPTOR_SIZE, 1000
            )
        except self._core.USBError:
            return None
        return bytes(data) or None

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


def _report_descriptor_length(extra: bytes) -> int | None:
    """wDescriptorLength of the Report descriptor, from the HID descriptor (type 0x21) that
    follows the interface descriptor (HID 1.11 section 6.2.1)."""
    i = 0
    while i + 1 < len(extra) and extra[i] >= 2:
        length, kind = extra[i], extra[i + 1]
        if kind == 0x21 and length >= 9:
            for j in range(i + 6, i + length - 2, 3):  # bDescriptorType, wDescriptorLength pairs
                if extra[j] == 0x22:
                    return int.from_bytes(extra[j + 1 : j + 3], "little")
        i += length
    return None


def open_report_source(target: str) -> ReportSource:
    """``/dev/hidrawN`` -> hidraw; ``usb://VID:PID[/serial]`` -> pyusb."""
    if target.startswith("usb://"):
        usb, _, serial = target.removeprefix("usb://").partition("/")
        return PyusbReportSource(usb, serial or None)
    return HidrawReportSource(target)


# -- the scanner --------------------------------------------------------------------------


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
            self.vid, self.pid = (int(part, 16) for part in parts)
        except ValueError:
            raise ValueError(f"hidpos scanner {id!r}: usb {usb!r}: expected VID:PID in hex") from None
        self.id = id
        self.usb = usb.lower()
        self.serial_number = serial_number
        self._continuation_timeout = continuation_timeout
        self._report = StateReporter(id, on_state)
        self._backoff = backoff or Backoff()
        self._discovery = discovery or DeviceDiscovery()
        self._opener = opener or open_report_source
        self._assembler = HidPosAssembler(layout_for_vendor(self.vid))

    @property
    def match(self) -> str:
        return self.usb + (f" serial {self.serial_number}" if self.serial_number else "")

    @property
    def layout(self) -> HidPosLayout:
        """The report layout in use (of the device last opened)."""
        return self._assembler.layout

    def _emit(self, read: HidPosRead | None) -> None:
        if read is None:
            return
        assert self._queue is not None  # set by __aenter__, before _run starts
        if read.vendor:
            _log.debug("scanner %s: symbology %s, vendor bytes %s", self.id, read.symbology, read.vendor.hex(" "))
        self._queue.put(RawRead(data=read.data, device=self.id, symbology=read.symbology, errors=read.errors))

    async def _wait(self) -> None:
        await asyncio.sleep(self._backoff.next_delay())

    def _find(self) -> str | None:
        node = self._discovery.find_hidraw(usb=self.usb, serial_number=self.serial_number)
        if node is not None:
            return node
        return self._discovery.find_usb(usb=self.usb, serial_number=self.serial_number)

    def _descriptor(self, source: ReportSource, target: str) -> bytes | None:
        descriptor = source.descriptor()
        if descriptor is None and not target.startswith("usb://"):
            descriptor = self._discovery.hidraw_descriptor(target)
        return descriptor

    def _layout_of(self, source: ReportSource, target: str) -> tuple[HidPosLayout, bytes | None]:
        descriptor = self._descriptor(source, target)
        layout = choose_layout(descriptor, self.vid, device=f"scanner {self.id} ({target})")
        _log.info("scanner %s: %s: report layout %s", self.id, target, layout.describe())
        return layout, descriptor

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
                self._report(DeviceState.ERROR, f"permission denied on {target}: {PERMISSION_HINT}")
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
                self._assembler = HidPosAssembler(self._layout_of(source, target)[0])
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
                    self._emit(self._assembler.flush(f"none within {self._continuation_timeout:g} s"))
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

    # -- recording (gatewayd capture) -----------------------------------------------------

    async def open_raw(self) -> RawStream:
        """The device's input reports as they come, with its descriptor in the header.

        hidraw lets several readers see every report, so this works beside a running
        gateway (which then publishes the same reads); pyusb claims the interface, and a
        claimed one is reported busy.
        """
        target = self._find()
        if target is None:
            raise DeviceUnavailable(
                f"no HID-POS device matches {self.match}: is it plugged in and set to HID-POS mode?"
            )
        try:
            source = self._opener(target)
        except PermissionError:
            raise DeviceUnavailable(f"permission denied on {target}: {PERMISSION_HINT}") from None
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                raise DeviceUnavailable(f"{target} is in use by another program: {BUSY_HINT}") from None
            raise DeviceUnavailable(f"cannot open {target}: {exc.strerror or exc}") from None
        except DriverError as exc:
            raise DeviceUnavailable(str(exc)) from None
        layout, descriptor = self._layout_of(source, target)
        name = self._discovery.hidraw_name(target) if not target.startswith("usb://") else None
        header = Capture(
            "hidpos",
            usb_vid=self.vid,
            usb_pid=self.pid,
            descriptor=descriptor,
            device=", ".join(part for part in (name, target, self.serial_number and f"serial {self.serial_number}")
                             if part),
            headers=(("scanner", self.id), ("report-layout", layout.describe())),
        )

        async def close() -> None:
            source.close()

        return OpenedStream(header, source.reports(), close)
