"""HID-POS: report bytes -> reads, the hidraw source on a real FIFO, the scanner loop."""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gatewayd_drivers.backoff import Backoff
from gatewayd_drivers.base import DeviceState, RawRead, Scanner
from gatewayd_drivers.device_discovery import DeviceDiscovery
from gatewayd_drivers.hidpos_scanner import (
    HidPosAssembler,
    HidPosRead,
    HidPosScanner,
    HidrawReportSource,
)
from tests.openers import Opener

DATA = Path(__file__).parent / "data"
GS1 = b"010950600013435210ABC123\x1d17271231"
LONG_QR = (
    b"https://id.gs1.org/01/09506000134352/10/ABC123?17=271231&3103=000189"
    b"&lot_note=received-at-dock-03-from-supplier-SUP1-pallet-0042"
)


def recorded(name: str) -> list[bytes]:
    return [bytes.fromhex(line) for line in (DATA / name).read_text().split()]


def assemble(reports: list[bytes]) -> list[HidPosRead]:
    assembler = HidPosAssembler()
    return [read for report in reports if (read := assembler.feed(report))]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("hidpos_honeywell_gs1_128.hex", [HidPosRead(GS1, "]C1")]),
        ("hidpos_honeywell_qr_continued.hex", [HidPosRead(LONG_QR, "]Q1")]),
        ("hidpos_zebra_no_aim.hex", [HidPosRead(b"SUP1-20261127-0001", None)]),
        ("hidpos_zebra_datamatrix_continued.hex", [HidPosRead(GS1 * 3, "]d2")]),
    ],
)
def test_recorded_reports(name: str, expected: list[HidPosRead]) -> None:
    assert assemble(recorded(name)) == expected


def report(data: bytes, *, length: int | None = None, aim: bytes = b"]E0", more: bool = False,
           report_id: int = 2, size: int = 64) -> bytes:
    body = data.ljust(size - 8, b"\0")[: size - 8]
    n = len(data) if length is None else length
    return bytes([report_id, n]) + aim + body + bytes([0, 0, int(more)])


@pytest.mark.parametrize(
    ("reports", "expected"),
    [
        ([report(b"4006381333931")], [HidPosRead(b"4006381333931", "]E0")]),
        # zero padding inside the length is data: kept exactly
        ([report(b"AB\0C")], [HidPosRead(b"AB\0C", "]E0")]),
        # other report ids (status) are not data
        ([report(b"x", report_id=4), report(b"12")], [HidPosRead(b"12", "]E0")]),
        # the symbology comes from the first report of a continued read
        ([report(b"AB", more=True, aim=b"]Q1"), report(b"CD", aim=b"\0\0\0")],
         [HidPosRead(b"ABCD", "]Q1")]),
        # a smaller report size (32 bytes) has the same header and trailer
        ([report(b"SHORT", size=32)], [HidPosRead(b"SHORT", "]E0")]),
        ([report(b"AB", length=70)],
         [HidPosRead(b"AB" + bytes(54), "]E0",
                     ("report 1 says 70 data bytes but carries at most 56: kept 56",))]),
        ([report(b"AB", aim=b"XYZ")],
         [HidPosRead(b"AB", None,
                     ("symbology bytes 58 59 5a: expected ']' and two characters (AIM) "
                      "or zeros",))]),
        ([bytes([2, 1, 0x5D])],
         [HidPosRead(b"", None, ("decoded-data report of 3 bytes: expected at least 8 (id, "
                                 "length, 3 symbology bytes, data, 3 trailer bytes)",))]),
    ],
    ids=["single", "nul-in-data", "other-report-id", "continued", "32-byte", "bad-length",
         "bad-aim", "short"],
)
def test_assembler(reports: list[bytes], expected: list[HidPosRead]) -> None:
    assert assemble(reports) == expected


def test_flush_after_missing_continuation_and_max_length() -> None:
    a = HidPosAssembler(max_length=3)
    assert a.feed(report(b"ABCD", more=True)) is None
    assert a.pending
    assert a.flush("device removed") == HidPosRead(
        b"ABC", "]E0", ("read longer than 3 bytes: the rest was cut",
                        "continuation report missing (device removed): read incomplete"))
    assert a.flush("again") is None


async def test_hidraw_source_reads_one_report_per_read_from_a_real_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "hidraw0"
    os.mkfifo(fifo)
    source = HidrawReportSource(str(fifo))
    writer = os.open(fifo, os.O_WRONLY)
    reports = source.reports()
    try:
        for rep in recorded("hidpos_honeywell_qr_continued.hex"):
            os.write(writer, rep)
            assert await anext(reports) == rep
        os.close(writer)
        writer = -1
        with pytest.raises(OSError, match="hidraw node closed") as info:
            await anext(reports)
        assert info.value.errno == errno.ENODEV
    finally:
        if writer >= 0:
            os.close(writer)
        source.close()


# -- the scanner loop ---------------------------------------------------------------------


class ScriptedReports:
    def __init__(self, reports: list[bytes], *, then: str = "block") -> None:
        self.script, self.then, self.closed = reports, then, False

    def close(self) -> None:
        self.closed = True

    async def reports(self) -> AsyncIterator[bytes]:
        for rep in self.script:
            yield rep
        if self.then == "unplug":
            raise OSError(errno.EIO, "Input/output error")
        await asyncio.Event().wait()


def write(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)


# Report descriptor fragments: Usage Page (Bar Code Scanner 0x8C) vs Generic Desktop.
POS_DESCRIPTOR = bytes.fromhex("068c000902a101850209fe150026ff007508953f8102c0")
KEYBOARD_DESCRIPTOR = bytes.fromhex("05010906a101050719e029e7c0")


def hidraw(root: Path, n: int, *, hid_id: str, uniq: str, descriptor: bytes) -> None:
    dev = root / f"sys/class/hidraw/hidraw{n}/device"
    write(dev / "uevent", f"DRIVER=hid-generic\nHID_ID={hid_id}\nHID_NAME=Honeywell 1950g\n"
          f"HID_PHYS=usb-0000:01:00.0-1.2/input{n}\nHID_UNIQ={uniq}\n")
    write(dev / "report_descriptor", descriptor)
    write(root / f"dev/hidraw{n}", "")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    hid_id = "0003:00000C2E:00000B6A"
    hidraw(tmp_path, 0, hid_id=hid_id, uniq="19001A0B45", descriptor=KEYBOARD_DESCRIPTOR)
    hidraw(tmp_path, 1, hid_id=hid_id, uniq="19001A0B45", descriptor=POS_DESCRIPTOR)
    hidraw(tmp_path, 2, hid_id=hid_id, uniq="OTHER", descriptor=POS_DESCRIPTOR)
    return tmp_path


def make(root: Path, opener: Opener, states: list[tuple[DeviceState, str]],
         **kwargs: object) -> HidPosScanner:
    return HidPosScanner(
        id="dock-03-pos",
        backoff=Backoff(initial=0.001, maximum=0.001, jitter=0),
        discovery=DeviceDiscovery(root=root),
        opener=opener,
        on_state=lambda _id, state, detail: states.append((state, detail)),
        **kwargs,  # type: ignore[arg-type]
    )


async def take(scanner: HidPosScanner, n: int) -> list[RawRead]:
    out: list[RawRead] = []
    async for read in scanner.reads():
        out.append(read)
        if len(out) == n:
            break
    return out


@pytest.mark.parametrize(
    ("serial", "node"), [("19001A0B45", "/dev/hidraw1"), ("OTHER", "/dev/hidraw2")])
async def test_finds_the_pos_interface_by_usb_id_and_serial(
    root: Path, serial: str, node: str
) -> None:
    opener = Opener(ScriptedReports(recorded("hidpos_honeywell_gs1_128.hex")))
    states: list[tuple[DeviceState, str]] = []
    scanner = make(root, opener, states, usb="0C2E:0B6A", serial_number=serial)
    assert isinstance(scanner, Scanner)
    async with scanner:
        reads = await take(scanner, 1)
    assert (reads[0].data, reads[0].symbology, reads[0].device) == (GS1, "]C1", "dock-03-pos")
    assert opener.opened == [node]
    assert states == [(DeviceState.CONNECTED, node)]


async def test_unplug_mid_read_then_reconnect(root: Path) -> None:
    first_half = recorded("hidpos_honeywell_qr_continued.hex")[:1]
    opener = Opener(
        PermissionError(errno.EACCES, "Permission denied"),
        ScriptedReports(first_half, then="unplug"),
        ScriptedReports(recorded("hidpos_zebra_no_aim.hex")),
    )
    states: list[tuple[DeviceState, str]] = []
    async with make(root, opener, states, usb="0c2e:0b6a") as scanner:
        reads = await take(scanner, 2)
    assert [(r.data, r.symbology, r.errors) for r in reads] == [
        (LONG_QR[:56], "]Q1",
         ("continuation report missing (device removed (EIO)): read incomplete",)),
        (b"SUP1-20261127-0001", None, ()),
    ]
    assert states == [
        (DeviceState.ERROR, "permission denied on /dev/hidraw1: install "
         "config/99-gatewayd.rules (udevadm control --reload && udevadm trigger) and add "
         "the gatewayd user to group gatewayd"),
        (DeviceState.CONNECTED, "/dev/hidraw1"),
        (DeviceState.DISCONNECTED, "/dev/hidraw1: device removed (EIO)"),
        (DeviceState.CONNECTED, "/dev/hidraw1"),
    ]


async def test_missing_continuation_times_out(root: Path) -> None:
    first = recorded("hidpos_honeywell_qr_continued.hex")[0]
    opener = Opener(ScriptedReports([first]))
    states: list[tuple[DeviceState, str]] = []
    async with make(root, opener, states, usb="0c2e:0b6a",
                    continuation_timeout=0.01) as scanner:
        reads = await take(scanner, 1)
    assert reads[0].errors == (
        "continuation report missing (none within 0.01 s): read incomplete",)


async def test_falls_back_to_pyusb_target_without_hidraw(tmp_path: Path) -> None:
    dev = tmp_path / "sys/bus/usb/devices/1-1.2"
    write(dev / "idVendor", "05e0\n")
    write(dev / "idProduct", "1300\n")
    write(dev / "serial", "S123\n")
    opener = Opener(ScriptedReports(recorded("hidpos_zebra_no_aim.hex")))
    states: list[tuple[DeviceState, str]] = []
    async with make(tmp_path, opener, states, usb="05e0:1300", serial_number="S123") as scanner:
        await take(scanner, 1)
    assert opener.opened == ["usb://05e0:1300/S123"]


async def test_absent_device_reports_disconnected(tmp_path: Path) -> None:
    states: list[tuple[DeviceState, str]] = []
    seen = asyncio.Event()
    opener = Opener(ScriptedReports([]))

    def on_state(device: str, state: DeviceState, detail: str) -> None:
        states.append((state, detail))
        seen.set()

    scanner = HidPosScanner(
        id="p", usb="0c2e:0b6a", discovery=DeviceDiscovery(root=tmp_path), opener=opener,
        backoff=Backoff(initial=0.001, maximum=0.001, jitter=0),
        on_state=on_state,
    )
    async with scanner:
        await seen.wait()
    assert states == [(DeviceState.DISCONNECTED, "no HID-POS device matches 0c2e:0b6a")]


@pytest.mark.parametrize("usb", ["0c2e", "0c2e:0b6a:1", "zzzz:0b6a", "c2e:b6a"])
def test_invalid_usb_id(usb: str) -> None:
    with pytest.raises(ValueError, match=f"hidpos scanner 'p': usb '{usb}': expected VID:PID"):
        HidPosScanner(id="p", usb=usb)
