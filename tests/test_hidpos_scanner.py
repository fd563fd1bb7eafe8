"""HID-POS: reports -> reads for every vendor layout, the hidraw source on a real FIFO, the
scanner loop choosing its layout from the report descriptor, and recording (open_raw)."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatewayd_drivers.backoff import Backoff
from gatewayd_drivers.base import DeviceState, DeviceUnavailable, RawRead, Scanner
from gatewayd_drivers.capture import Recordable, parse_capture
from gatewayd_drivers.device_discovery import DeviceDiscovery
from gatewayd_drivers.hid_descriptor import GENERIC, LAYOUTS, HidPosLayout
from gatewayd_drivers.hidpos_scanner import (
    HIDIOCGRDESC,
    HIDIOCGRDESCSIZE,
    HidPosAssembler,
    HidPosRead,
    HidPosScanner,
    HidrawReportSource,
    _report_descriptor_length,
    choose_layout,
)
from tests.data.make_hidpos_captures import DATAMATRIX, GS1_128, LONG_QR
from tests.hidpos_descriptors import HONEYWELL_DESCRIPTOR, ZEBRA_DESCRIPTOR
from tests.openers import Opener

CAPTURES = Path(__file__).parent / "data" / "captures"


def reports_of(name: str) -> list[bytes]:
    return [payload for _, payload in parse_capture((CAPTURES / name).read_text()).records
            if isinstance(payload, bytes)]


Decoded = list[tuple[bytes, str | None, tuple[str, ...]]]


def decoded(name: str) -> Decoded:
    capture = parse_capture((CAPTURES / name).read_text())
    assembler = HidPosAssembler(choose_layout(capture.descriptor, capture.usb_vid))
    reads = [read for _, report in capture.records if isinstance(report, bytes) and (read := assembler.feed(report))]
    assert not assembler.pending
    return [(read.data, read.symbology, read.errors) for read in reads]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # The Zebra quirk: a UPC-A under "]Xg", passed on as sent (README, "Scanner settings").
        ("hidpos_zebra_upca_xg.capture", [(b"012345678905", "]Xg", ())]),
        ("hidpos_zebra_datamatrix_continued.capture", [(DATAMATRIX, "]d2", ())]),
        ("hidpos_zebra_no_aim.capture", [(b"SUP1-20261127-0001", None, ())]),
        ("hidpos_honeywell_gs1_128.capture", [(GS1_128, "]C1", ())]),
        ("hidpos_honeywell_qr_continued.capture", [(LONG_QR, "]Q1", ()), (GS1_128, "]C1", ())]),
        ("hidpos_newland_code128.capture", [(b"SUP1-20261127-0002", None, ())]),
    ],
)
def test_each_vendor_layout_decodes_exactly(name: str, expected: Decoded) -> None:
    assert decoded(name) == expected


@pytest.mark.parametrize(
    ("name", "layout"),
    [
        ("hidpos_zebra_upca_xg.capture", "generic"),
        ("hidpos_honeywell_gs1_128.capture", "zebra"),
    ],
)
def test_the_wrong_layout_garbles_the_read(name: str, layout: str) -> None:
    # Why the layout comes from the device: read with another vendor's layout, the AIM
    # bytes are taken from the wrong place (and a Honeywell's AIM becomes a huge count).
    first = reports_of(name)[0]
    read = HidPosAssembler(LAYOUTS[layout]).feed(first)
    assert read is not None
    assert read.symbology is None
    assert any("expected ']' and two characters" in error for error in read.errors)


def test_the_zebra_upca_read_with_the_generic_layout_is_the_known_misread() -> None:
    read = HidPosAssembler(GENERIC).feed(reports_of("hidpos_zebra_upca_xg.capture")[0])
    assert read is not None and read.data == b"g01234567890"  # the AIM modifier leaks in, the '5' is lost


def report(layout: HidPosLayout, chunk: bytes, aim: bytes, *, more: bool, count: int | None = None,
           vendor: int = 0x73) -> bytes:
    out = bytearray(layout.report_size)
    if layout.report_id is not None:
        out[0] = layout.report_id
    if layout.count_offset is not None:
        n = len(chunk) if count is None else count
        out[layout.count_offset : layout.count_offset + layout.count_size] = n.to_bytes(layout.count_size, "little")
    for offset, byte in zip(layout.symbology_offsets, aim, strict=False):
        out[offset] = byte
    out[layout.data_offset : layout.data_offset + len(chunk)] = chunk
    for offset in layout.vendor_offsets:
        out[offset] = vendor
    if more:
        out[layout.continuation_offset] |= layout.continuation_mask
    return bytes(out)


def assemble(layout: HidPosLayout, reports: list[bytes], **kwargs: int) -> list[HidPosRead]:
    assembler = HidPosAssembler(layout, **kwargs)
    return [read for r in reports if (read := assembler.feed(r))]


G = GENERIC


@pytest.mark.parametrize(
    ("reports", "expected"),
    [
        ([report(G, b"4006381333931", b"]E0", more=False)], [HidPosRead(b"4006381333931", "]E0", (), b"s")]),
        # NUL bytes inside the count are data: kept exactly
        ([report(G, b"AB\0C", b"]E0", more=False)], [HidPosRead(b"AB\0C", "]E0", (), b"s")]),
        # reports with another ID (status, command answers) are not data
        ([b"\x04" + bytes(63), report(G, b"12", b"]E0", more=False)], [HidPosRead(b"12", "]E0", (), b"s")]),
        # a device that sends the identifier only in the first report of a continued read
        ([report(G, b"AB", b"]Q1", more=True), report(G, b"CD", b"\0\0\0", more=False)],
         [HidPosRead(b"ABCD", "]Q1", (), b"s")]),
        ([report(G, b"AB", b"]C0", more=True), report(G, b"CD", b"]E0", more=False)],
         [HidPosRead(b"ABCD", "]C0", ("report 2: symbology bytes 5d 45 30 differ from 5d 43 30: a continuation "
                                      "report may be missing",), b"s")]),
        ([report(G, b"AB", b"]E0", more=False, count=60)],
         [HidPosRead(b"AB" + bytes(54), "]E0", ("report 1 says 60 data bytes but carries at most 56: kept 56",),
                     b"s")]),
        ([report(G, b"AB", b"XYZ", more=False)],
         [HidPosRead(b"AB", None, ("symbology bytes 58 59 5a: expected ']' and two characters (AIM) or zeros",),
                     b"s")]),
        ([bytes([2, 1, 0x5D])], [HidPosRead(b"", None, ("report of 3 bytes: the generic layout needs 64",))]),
        ([report(G, b"AB", b"]E0", more=True), b"\x02\x03"],
         [HidPosRead(b"AB", "]E0", ("report of 2 bytes: the generic layout needs 64",), b"s")]),
    ],
    ids=["single", "nul-in-data", "other-report-id", "aim-in-first-only", "aim-changes", "count-too-large",
         "bad-aim", "short", "short-continuation"],
)
def test_assembler(reports: list[bytes], expected: list[HidPosRead]) -> None:
    assert assemble(G, reports) == expected


def test_flush_after_missing_continuation_and_max_length() -> None:
    a = HidPosAssembler(G, max_length=3)
    assert a.feed(report(G, b"ABCD", b"]E0", more=True)) is None
    assert a.pending
    assert a.flush("device removed") == HidPosRead(
        b"ABC", "]E0", ("read longer than 3 bytes: the rest was cut",
                        "continuation report missing (device removed): read incomplete"), b"s")
    assert a.flush("again") is None
    with pytest.raises(ValueError, match="max_length 0: expected at least 1"):
        HidPosAssembler(G, max_length=0)


@given(
    layout=st.sampled_from(list(LAYOUTS.values())),
    data=st.binary(max_size=600),
    cuts=st.lists(st.integers(0, 56), max_size=20),
    noise=st.booleans(),
)
def test_a_read_split_across_any_number_of_reports_reassembles_exactly(
    layout: HidPosLayout, data: bytes, cuts: list[int], noise: bool
) -> None:
    # Any chunk sizes up to a report's capacity, empty ones included, the rest in full
    # reports; reports of another ID in between must not disturb the read.
    chunks, rest = [], data
    for size in cuts:
        chunks.append(rest[:size])
        rest = rest[size:]
    while rest:
        chunks.append(rest[: layout.data_length])
        rest = rest[layout.data_length :]
    chunks = chunks or [b""]
    assembler = HidPosAssembler(layout)
    reads = []
    for i, chunk in enumerate(chunks):
        if noise:
            assert assembler.feed(b"\x04" + bytes(63)) is None
        reads.append(assembler.feed(report(layout, chunk, b"]d2", more=i < len(chunks) - 1)))
    *partial, final = reads
    assert partial == [None] * len(partial)
    symbology = "]d2" if layout.symbology_offsets else None
    assert final == HidPosRead(data, symbology, (), bytes([0x73] * len(layout.vendor_offsets)))


def test_the_hidraw_ioctl_numbers_are_linux_ones() -> None:
    # linux/hidraw.h, as the kernel headers expand them for every architecture with the
    # generic ioctl encoding (x86, arm, arm64).
    assert (HIDIOCGRDESCSIZE, HIDIOCGRDESC) == (0x80044801, 0x90044802)


def test_report_descriptor_length_from_the_hid_descriptor() -> None:
    # HID descriptor: bLength 9, type 0x21, bcdHID 1.11, country 0, 1 descriptor: Report, 89 bytes
    assert _report_descriptor_length(bytes.fromhex("09 21 11 01 00 01 22 59 00")) == 89
    assert _report_descriptor_length(bytes.fromhex("07 05 81 03 40 00 01")) is None  # an endpoint only
    assert _report_descriptor_length(b"") is None


async def test_hidraw_source_reads_one_report_per_read_from_a_real_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "hidraw0"
    os.mkfifo(fifo)
    source = HidrawReportSource(str(fifo))
    writer = os.open(fifo, os.O_WRONLY)
    reports = source.reports()
    try:
        assert source.descriptor() is None  # a FIFO answers no HIDIOCGRDESC (ENOTTY)
        for rep in reports_of("hidpos_honeywell_qr_continued.capture"):
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
    def __init__(self, reports: list[bytes], *, then: str = "block", descriptor: bytes | None = None) -> None:
        self.script, self.then, self.closed, self._descriptor = reports, then, False, descriptor

    def close(self) -> None:
        self.closed = True

    def descriptor(self) -> bytes | None:
        return self._descriptor

    async def reports(self) -> AsyncIterator[bytes]:
        for rep in self.script:
            yield rep
        if self.then == "unplug":
            raise OSError(errno.EIO, "Input/output error")
        if self.then == "block":
            await asyncio.Event().wait()


def write(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)


KEYBOARD_DESCRIPTOR = bytes.fromhex("05010906a101050719e029e7c0")
BROKEN_POS_DESCRIPTOR = bytes.fromhex("058c0902a101850209fe150026ff007508953f8102c0")  # no continuation flag


def hidraw(root: Path, n: int, *, hid_id: str, uniq: str, descriptor: bytes, name: str = "Honeywell 1950g") -> None:
    dev = root / f"sys/class/hidraw/hidraw{n}/device"
    write(dev / "uevent", f"DRIVER=hid-generic\nHID_ID={hid_id}\nHID_NAME={name}\n"
          f"HID_PHYS=usb-0000:01:00.0-1.2/input{n}\nHID_UNIQ={uniq}\n")
    write(dev / "report_descriptor", descriptor)
    write(root / f"dev/hidraw{n}", "")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    hid_id = "0003:00000C2E:00001007"
    hidraw(tmp_path, 0, hid_id=hid_id, uniq="19001A0B45", descriptor=KEYBOARD_DESCRIPTOR)
    hidraw(tmp_path, 1, hid_id=hid_id, uniq="19001A0B45", descriptor=HONEYWELL_DESCRIPTOR)
    hidraw(tmp_path, 2, hid_id=hid_id, uniq="OTHER", descriptor=HONEYWELL_DESCRIPTOR)
    return tmp_path


def make(root: Path, opener: Opener[ScriptedReports], states: list[tuple[DeviceState, str]],
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


@pytest.mark.parametrize(("serial", "node"), [("19001A0B45", "/dev/hidraw1"), ("OTHER", "/dev/hidraw2")])
async def test_finds_the_pos_interface_by_usb_id_and_serial(root: Path, serial: str, node: str) -> None:
    opener = Opener(ScriptedReports(reports_of("hidpos_honeywell_gs1_128.capture")))
    states: list[tuple[DeviceState, str]] = []
    scanner = make(root, opener, states, usb="0C2E:1007", serial_number=serial)
    assert isinstance(scanner, Scanner) and isinstance(scanner, Recordable)
    async with scanner:
        reads = await take(scanner, 1)
    assert (reads[0].data, reads[0].symbology, reads[0].device) == (GS1_128, "]C1", "dock-03-pos")
    assert opener.opened == [node]
    assert states == [(DeviceState.CONNECTED, node)]


async def test_the_layout_comes_from_the_descriptor_in_sysfs(tmp_path: Path) -> None:
    # A Zebra-layout device under a vendor ID the table does not know: only the descriptor
    # can tell where its data starts.
    hidraw(tmp_path, 0, hid_id="0003:00001234:00005678", uniq="", descriptor=ZEBRA_DESCRIPTOR, name="Scanner")
    opener = Opener(ScriptedReports(reports_of("hidpos_zebra_datamatrix_continued.capture")))
    async with make(tmp_path, opener, [], usb="1234:5678") as scanner:
        reads = await take(scanner, 1)
    assert (reads[0].data, reads[0].symbology, reads[0].errors) == (DATAMATRIX, "]d2", ())
    assert scanner.layout.name == "descriptor"


async def test_the_descriptor_the_device_answers_comes_first(tmp_path: Path) -> None:
    hidraw(tmp_path, 0, hid_id="0003:00001234:00005678", uniq="", descriptor=KEYBOARD_DESCRIPTOR)
    source = ScriptedReports(reports_of("hidpos_zebra_upca_xg.capture"), descriptor=ZEBRA_DESCRIPTOR)
    async with make(tmp_path, Opener(source), [], usb="1234:5678") as scanner:
        reads = await take(scanner, 1)
    assert (reads[0].data, reads[0].symbology) == (b"012345678905", "]Xg")


async def test_an_unusable_descriptor_falls_back_to_the_vendor_layout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hidraw(tmp_path, 0, hid_id="0003:000005E0:00002100", uniq="", descriptor=BROKEN_POS_DESCRIPTOR)
    opener = Opener(ScriptedReports(reports_of("hidpos_zebra_upca_xg.capture")))
    with caplog.at_level(logging.INFO, logger="gatewayd_drivers.hidpos_scanner"):
        async with make(tmp_path, opener, [], usb="05e0:2100") as scanner:
            reads = await take(scanner, 1)
    assert (reads[0].data, reads[0].symbology) == (b"012345678905", "]Xg")
    assert scanner.layout.name == "zebra"
    assert ("its report descriptor gives no usable HID-POS layout (no Decoded Data Continued (0x8C:0xFF) field): "
            "using the layout zebra (recorded: Zebra 05e0:2100)") in caplog.text


async def test_unplug_mid_read_then_reconnect(root: Path) -> None:
    first_half = reports_of("hidpos_honeywell_qr_continued.capture")[:1]
    opener = Opener(
        PermissionError(errno.EACCES, "Permission denied"),
        ScriptedReports(first_half, then="unplug"),
        ScriptedReports(reports_of("hidpos_honeywell_gs1_128.capture")),
    )
    states: list[tuple[DeviceState, str]] = []
    async with make(root, opener, states, usb="0c2e:1007") as scanner:
        reads = await take(scanner, 2)
    assert [(r.data, r.symbology, r.errors) for r in reads] == [
        (LONG_QR[:56], "]Q1", ("continuation report missing (device removed (EIO)): read incomplete",)),
        (GS1_128, "]C1", ()),
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
    first = reports_of("hidpos_honeywell_qr_continued.capture")[0]
    opener = Opener(ScriptedReports([first]))
    async with make(root, opener, [], usb="0c2e:1007", continuation_timeout=0.01) as scanner:
        reads = await take(scanner, 1)
    assert reads[0].errors == ("continuation report missing (none within 0.01 s): read incomplete",)


async def test_falls_back_to_pyusb_target_without_hidraw(tmp_path: Path) -> None:
    dev = tmp_path / "sys/bus/usb/devices/1-1.2"
    write(dev / "idVendor", "05e0\n")
    write(dev / "idProduct", "2100\n")
    write(dev / "serial", "S123\n")
    opener = Opener(ScriptedReports(reports_of("hidpos_zebra_no_aim.capture"), descriptor=ZEBRA_DESCRIPTOR))
    async with make(tmp_path, opener, [], usb="05e0:2100", serial_number="S123") as scanner:
        reads = await take(scanner, 1)
    assert opener.opened == ["usb://05e0:2100/S123"]
    assert (reads[0].data, reads[0].symbology) == (b"SUP1-20261127-0001", None)


async def test_absent_device_reports_disconnected(tmp_path: Path) -> None:
    states: list[tuple[DeviceState, str]] = []
    seen = asyncio.Event()

    def on_state(device: str, state: DeviceState, detail: str) -> None:
        states.append((state, detail))
        seen.set()

    scanner = HidPosScanner(
        id="p", usb="0c2e:0b6a", discovery=DeviceDiscovery(root=tmp_path), opener=Opener(ScriptedReports([])),
        backoff=Backoff(initial=0.001, maximum=0.001, jitter=0), on_state=on_state,
    )
    async with scanner:
        await seen.wait()
    assert states == [(DeviceState.DISCONNECTED, "no HID-POS device matches 0c2e:0b6a")]


@pytest.mark.parametrize("usb", ["0c2e", "0c2e:0b6a:1", "zzzz:0b6a", "c2e:b6a"])
def test_invalid_usb_id(usb: str) -> None:
    with pytest.raises(ValueError, match=f"hidpos scanner 'p': usb '{usb}': expected VID:PID"):
        HidPosScanner(id="p", usb=usb)


# -- recording ----------------------------------------------------------------------------


async def test_open_raw_hands_over_reports_and_the_descriptor(root: Path) -> None:
    reports = reports_of("hidpos_honeywell_qr_continued.capture")
    source = ScriptedReports(reports, then="end")
    scanner = make(root, Opener(source), [], usb="0c2e:1007", serial_number="19001A0B45")
    stream = await scanner.open_raw()
    assert [r async for r in stream.records()] == reports
    await stream.aclose()
    assert source.closed
    header = stream.header
    assert (header.kind, header.usb, header.descriptor) == ("hidpos", "0c2e:1007", HONEYWELL_DESCRIPTOR)
    assert header.device == "Honeywell 1950g, /dev/hidraw1, serial 19001A0B45"
    assert dict(header.headers) == {"scanner": "dock-03-pos",
                                    "report-layout": "descriptor (the device's report descriptor)"}


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (PermissionError(errno.EACCES, "Permission denied"), "permission denied on /dev/hidraw1: install config/"),
        (OSError(errno.EBUSY, "Device or resource busy"),
         "/dev/hidraw1 is in use by another program: stop the gatewayd service first"),
        (OSError(errno.EIO, "Input/output error"), "cannot open /dev/hidraw1: Input/output error"),
    ],
)
async def test_open_raw_says_what_to_do(root: Path, failure: OSError, message: str) -> None:
    scanner = make(root, Opener(failure), [], usb="0c2e:1007")
    with pytest.raises(DeviceUnavailable, match="^" + message):
        await scanner.open_raw()


async def test_open_raw_without_the_device(tmp_path: Path) -> None:
    scanner = make(tmp_path, Opener(ScriptedReports([])), [], usb="0c2e:1007")
    with pytest.raises(DeviceUnavailable, match="no HID-POS device matches 0c2e:1007: is it plugged in and set to "
                       "HID-POS mode"):
        await scanner.open_raw()


@pytest.mark.hardware
def test_hidiocgrdesc_on_real_hidraw_nodes_gives_what_sysfs_gives() -> None:
    nodes = [node for node in sorted(Path("/dev").glob("hidraw*")) if os.access(node, os.R_OK)]
    if not nodes:
        pytest.skip("no readable /dev/hidraw* node on this machine: the HIDIOCGRDESC ioctl is checked where one is")
    for node in nodes:
        source = HidrawReportSource(str(node))
        try:
            descriptor = source.descriptor()
        finally:
            source.close()
        assert descriptor == Path(f"/sys/class/hidraw/{node.name}/device/report_descriptor").read_bytes(), node
