"""Printer transports against real sockets, files, pseudo-terminals and a real subprocess."""

from __future__ import annotations

import ast
import asyncio
import os
import stat
import sys
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest

from gatewayd_drivers.base import DeviceUnavailable, PrinterTransport
from gatewayd_drivers.cups_printer import CupsPrinter
from gatewayd_drivers.file_printer import FilePrinter
from gatewayd_drivers.printer_transport import (
    CupsUrl,
    FileUrl,
    SerialUrl,
    TcpUrl,
    UsbUrl,
    open_transport,
    parse_printer_url,
)
from gatewayd_drivers.serial_printer import SerialPrinter
from gatewayd_drivers.tcp_printer import TcpPrinter
from gatewayd_drivers.transport_base import answer_complete
from gatewayd_drivers.usb_printer import UsbPrinter
from gatewayd_drivers.zebra_status import answer_state
from tests.fake_zebra import FakeZebra, hs_answer

LABEL = b"^XA^FO50,50^A0N,40,40^FDLOT-0001^FS^XZ"


async def test_tcp_send_and_status() -> None:
    async with FakeZebra() as fake, TcpPrinter(id="z", host=fake.host, port=fake.port) as t:
        assert isinstance(t, PrinterTransport)
        await t.send(LABEL)
        answer = await t.query(b"~HS", timeout=2)
        assert answer == hs_answer("ready", formats=1)
        assert answer_state(answer) == ("ready", "ready")
        fake.state = "paper_out"
        assert answer_state(await t.query(b"~HS", timeout=2))[0] == "paper_out"
        await fake.wait_for(lambda: fake.labels() == [LABEL])
        assert len(fake.connections) == 1  # one connection kept open


async def test_tcp_silent_printer_answers_empty() -> None:
    async with FakeZebra(silent=True) as fake, TcpPrinter(id="z", host=fake.host, port=fake.port) as t:
        assert await t.query(b"~HS", timeout=0.3) == b""
        assert answer_state(b"")[0] == "unknown"


async def test_tcp_late_answer_is_not_taken_for_the_next() -> None:
    async with FakeZebra(silent=True) as fake, TcpPrinter(id="z", host=fake.host, port=fake.port) as t:
        assert await t.query(b"~HS", timeout=0.2) == b""
        fake.silent = False
        fake.state = "head_open"
        # the printer now answers the earlier request late, then the new one
        assert answer_state(await t.query(b"~HS", timeout=2))[0] == "head_open"


async def test_tcp_refused_is_unavailable() -> None:
    async with FakeZebra() as fake:
        port = fake.port
    t = TcpPrinter(id="z", host="127.0.0.1", port=port, timeout=2)
    async with t:
        with pytest.raises(DeviceUnavailable, match=rf"printer z at 127.0.0.1:{port}: cannot connect"):
            await t.send(LABEL)


async def test_tcp_printer_vanishing_mid_send_is_unavailable() -> None:
    async with FakeZebra(drop_after_bytes=1000) as fake, TcpPrinter(
        id="z", host=fake.host, port=fake.port, timeout=5
    ) as t:
        with pytest.raises(DeviceUnavailable, match=r"printer z at 127\.0\.0\.1"):
            await t.send(b"^XA^FD" + b"x" * 8_000_000 + b"^XZ")
        assert len(fake.connections[0]) == 1000
        # the next use reconnects
        await t.send(LABEL)
        await fake.wait_for(lambda: fake.labels() == [LABEL])


async def test_tcp_printer_gone_between_calls_reconnects_or_reports() -> None:
    async with FakeZebra() as fake, TcpPrinter(id="z", host=fake.host, port=fake.port) as t:
        await t.send(LABEL)
        await fake.wait_for(lambda: len(fake.labels()) == 1)
        await fake.drop_all()
        # Depending on whether the close was seen yet, the query reconnects or says the
        # link is gone; it never invents an answer.
        try:
            assert answer_state(await t.query(b"~HS", timeout=2)) == ("ready", "ready")
        except DeviceUnavailable as exc:
            message = str(exc)
        else:
            message = "printer z at 127.0.0.1: reconnected"
        assert message.startswith("printer z at 127.0.0.1")
        await t.send(LABEL)
        await fake.wait_for(lambda: len(fake.labels()) == 2)


async def test_tcp_stalled_printer_times_out() -> None:
    # A server that accepts but never reads: the write must not hang.
    async def never_read(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.Event().wait()

    server = await asyncio.start_server(never_read, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with TcpPrinter(id="z", host="127.0.0.1", port=port, timeout=0.5) as t:
            with pytest.raises(DeviceUnavailable, match="printer stopped reading"):
                await t.send(b"x" * 50_000_000)
    finally:
        server.close()


async def test_file_printer_appends_and_cannot_query(tmp_path: Path) -> None:
    path = tmp_path / "out" / "labels.zpl"
    path.parent.mkdir()
    async with FilePrinter(id="f", path=path) as t:
        await t.send(LABEL)
        await t.send(LABEL)
        assert await t.query(b"~HS", timeout=1) is None
    async with FilePrinter(id="f", path=path) as t:
        await t.send(b"more")
    assert path.read_bytes() == LABEL * 2 + b"more"


async def test_file_printer_missing_device_is_unavailable() -> None:
    async with FilePrinter(id="f", path="/dev/usb/lp-gatewayd-missing") as t:
        with pytest.raises(DeviceUnavailable, match="no such device"):
            await t.send(LABEL)


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, str]]:
    """A raw pseudo-terminal: (master fd, slave path)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    try:
        yield master, path
    finally:
        os.close(slave)
        os.close(master)


async def answer_on(master: int, expect: bytes, answer: bytes) -> bytes:
    """Read from the pty master until ``expect`` arrived, then write ``answer``."""
    loop = asyncio.get_running_loop()
    got = b""
    while expect not in got:
        got += await loop.run_in_executor(None, os.read, master, 4096)
    os.write(master, answer)
    return got


async def test_file_printer_reads_back_from_a_device_node(pty_pair: tuple[int, str]) -> None:
    master, path = pty_pair
    assert stat.S_ISCHR(os.stat(path).st_mode)
    async with FilePrinter(id="f", path=path, timeout=2) as t:
        helper = asyncio.create_task(answer_on(master, b"~HS", hs_answer("head_open")))
        answer = await t.query(b"~HS", timeout=2)
        assert await helper == b"~HS"
        assert answer_state(answer)[0] == "head_open"


async def test_serial_printer_send_and_query(pty_pair: tuple[int, str]) -> None:
    master, path = pty_pair
    async with SerialPrinter(id="s", port=path, baudrate=19200, timeout=2) as t:
        await t.send(LABEL)
        helper = asyncio.create_task(answer_on(master, LABEL + b"\x10\x04\x04", b"\x12"))
        assert await t.query(b"\x10\x04\x04", timeout=2) == b"\x12"
        assert await helper == LABEL + b"\x10\x04\x04"
        assert await t.query(b"\x10\x04\x01", timeout=0.2) == b""


async def test_serial_printer_missing_port() -> None:
    async with SerialPrinter(id="s", port="/dev/ttyGATEWAYD-missing", timeout=2) as t:
        with pytest.raises(DeviceUnavailable, match="printer s on /dev/ttyGATEWAYD-missing: cannot open"):
            await t.send(LABEL)


def fake_lp(tmp_path: Path, *, exit_code: int = 0) -> Path:
    """An `lp` stand-in that records its arguments and stdin."""
    script = tmp_path / "lp"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys, pathlib\n"
        f"d = pathlib.Path({str(tmp_path)!r})\n"
        "(d / 'args').write_text(' '.join(sys.argv[1:]))\n"
        "(d / 'data').write_bytes(sys.stdin.buffer.read())\n"
        f"print('lp: queue problem', file=sys.stderr) if {exit_code} else None\n"
        f"sys.exit({exit_code})\n"
    )
    script.chmod(0o755)
    return script


async def test_cups_printer_runs_lp_raw(tmp_path: Path) -> None:
    async with CupsPrinter(id="c", queue="zebra_raw", lp=str(fake_lp(tmp_path))) as t:
        await t.send(LABEL)
        assert await t.query(b"~HS", timeout=1) is None
    assert (tmp_path / "args").read_text() == "-d zebra_raw -o raw -s"
    assert (tmp_path / "data").read_bytes() == LABEL


async def test_cups_printer_refusal_and_missing_lp(tmp_path: Path) -> None:
    async with CupsPrinter(id="c", queue="q", lp=str(fake_lp(tmp_path, exit_code=1))) as t:
        with pytest.raises(DeviceUnavailable, match=r"refused the job \(exit 1: lp: queue problem\)"):
            await t.send(LABEL)
    async with CupsPrinter(id="c", queue="q", lp=str(tmp_path / "nope")) as t:
        with pytest.raises(DeviceUnavailable, match="is not installed"):
            await t.send(LABEL)


def test_cups_queue_name_checked() -> None:
    with pytest.raises(ValueError, match="is not a CUPS queue name"):
        CupsPrinter(id="c", queue="-o evil")


async def test_usb_printer_absent_device_is_unavailable() -> None:
    # No USB bus here (or no such device): the error says why in plain words.
    async with UsbPrinter(id="u", vid=0xFFFE, pid=0xFFFD, timeout=1) as t:
        with pytest.raises(
            DeviceUnavailable, match=r"printer u at usb://fffe:fffd: (no such device|libusb)"
        ):
            await t.send(LABEL)


@pytest.mark.parametrize(
    ("url", "kind", "attrs"),
    [
        ("tcp://10.0.0.50:9100", TcpPrinter, {"host": "10.0.0.50", "port": 9100}),
        ("tcp://10.0.0.50", TcpPrinter, {"host": "10.0.0.50", "port": 9100}),
        ("tcp://printer.local:6101", TcpPrinter, {"host": "printer.local", "port": 6101}),
        ("usb://0a5f:0164", UsbPrinter, {"vid": 0x0A5F, "pid": 0x0164}),
        ("file:///dev/usb/lp0", FilePrinter, {"path": "/dev/usb/lp0"}),
        ("serial:///dev/ttyUSB0?baudrate=19200", SerialPrinter, {"port": "/dev/ttyUSB0", "baudrate": 19200}),
        ("serial:///dev/ttyS1", SerialPrinter, {"port": "/dev/ttyS1", "baudrate": 9600}),
        ("cups://zebra_raw", CupsPrinter, {"queue": "zebra_raw"}),
    ],
)
def test_open_transport(url: str, kind: type, attrs: dict[str, object]) -> None:
    t = open_transport(url, id="p1", timeout=3.0)
    assert isinstance(t, kind)
    assert isinstance(t, PrinterTransport)
    assert t.id == "p1"
    for name, value in attrs.items():
        assert getattr(t, name) == value


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://x", "unsupported printer URL 'http://x': expected tcp://host:port, usb://VID:PID"),
        ("usb://zebra", "bad USB id in printer URL 'usb://zebra': expected usb://VID:PID in hex"),
        ("tcp://:9100", "missing host in printer URL 'tcp://:9100'"),
        ("serial:///dev/ttyS0?parity=E", "unknown option 'parity' in printer URL"),
        ("cups://", "missing queue name in printer URL 'cups://'"),
    ],
)
def test_open_transport_errors(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("?", r"\?")) :
        open_transport(url, id="p1", timeout=3.0)


# The one grammar of printer URLs: each URL, what it parses to, and its canonical form
# (defaults spelled out), which parses to the same thing again.
URLS = [
    ("tcp://10.0.0.50", TcpUrl("10.0.0.50", 9100), "tcp://10.0.0.50:9100"),
    ("tcp://Printer.Local:6101/", TcpUrl("printer.local", 6101), "tcp://printer.local:6101"),
    ("tcp://[fd00::50]", TcpUrl("fd00::50", 9100), "tcp://[fd00::50]:9100"),
    ("usb://0A5F:0164", UsbUrl(0x0A5F, 0x0164), "usb://0a5f:0164"),
    ("file:///dev/usb/lp0", FileUrl("/dev/usb/lp0"), "file:///dev/usb/lp0"),
    ("file:///var/spool/zpl%20out/labels.zpl", FileUrl("/var/spool/zpl out/labels.zpl"),
     "file:///var/spool/zpl%20out/labels.zpl"),
    ("serial:///dev/ttyS1", SerialUrl("/dev/ttyS1", 9600), "serial:///dev/ttyS1?baudrate=9600"),
    ("serial:///dev/ttyUSB0?baudrate=19200", SerialUrl("/dev/ttyUSB0", 19200), "serial:///dev/ttyUSB0?baudrate=19200"),
    ("cups://zebra_raw", CupsUrl("zebra_raw"), "cups://zebra_raw"),
    ("cups:///zebra_raw", CupsUrl("zebra_raw"), "cups://zebra_raw"),
]


@pytest.mark.parametrize(("url", "parsed", "canonical"), URLS, ids=[u[0] for u in URLS])
def test_printer_url_grammar(url: str, parsed: object, canonical: str) -> None:
    assert parse_printer_url(url) == parsed
    assert str(parsed) == canonical
    assert parse_printer_url(canonical) == parsed


BAD_URLS = [
    ("lpt://zebra", "unsupported printer URL 'lpt://zebra': expected tcp://host:port, usb://VID:PID, "
     "file:///dev/usb/lp0, serial:///dev/ttyUSB0?baudrate=19200 or cups://QUEUE"),
    ("tcp://10.0.0.50:0", "bad port in printer URL 'tcp://10.0.0.50:0': expected 1-65535"),
    ("tcp://10.0.0.50:99999", "bad port in printer URL 'tcp://10.0.0.50:99999': expected 1-65535"),
    ("tcp://:9100", "missing host in printer URL 'tcp://:9100': expected tcp://host[:port]"),
    ("tcp://10.0.0.50:9100/zpl", "expected only a host and a port in printer URL 'tcp://10.0.0.50:9100/zpl' "
     "(tcp://host[:port])"),
    ("tcp://10.0.0.50:9100?timeout=3", "unknown options 'timeout=3' in printer URL "
     "'tcp://10.0.0.50:9100?timeout=3': a tcp URL has none"),
    ("usb://0a5f", "bad USB id in printer URL 'usb://0a5f': expected usb://VID:PID in hex, such as usb://0a5f:0164"),
    ("file://", "missing device path in printer URL 'file://': expected file:///dev/..."),
    ("serial:///dev/ttyUSB0?parity=E", "unknown option 'parity' in printer URL 'serial:///dev/ttyUSB0?parity=E': "
     "expected only baudrate=<number>"),
    ("serial:///dev/ttyUSB0?baudrate=0", "baudrate must be a number in printer URL "
     "'serial:///dev/ttyUSB0?baudrate=0', such as baudrate=19200"),
    ("cups://", "missing queue name in printer URL 'cups://': expected cups://QUEUE"),
    ("cups://-o", "bad queue name '-o' in printer URL 'cups://-o': expected printable characters, "
     "no spaces, '/', '\\', quotes or '#', not starting with '-'"),
]


@pytest.mark.parametrize(("url", "message"), BAD_URLS, ids=[u[0] for u in BAD_URLS])
def test_printer_url_errors(url: str, message: str) -> None:
    with pytest.raises(ValueError, match="printer URL") as info:
        parse_printer_url(url)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("request_", "answer", "complete"),
    [
        (b"~HS", hs_answer("ready"), True),
        (b"~HS", hs_answer("ready")[:-6], False),
        (b"~HQES", b"\x02 ERRORS: 0 00000000 00000000\x03", True),
        (b"\x10\x04\x01", b"\x12", True),
        (b"\x10\x04\x01\x10\x04\x04", b"\x12", False),
        (b'! U1 getvar "device.languages"\r\n', b'"zpl"', True),
        (b"^XA^XZ", b"anything", None),
    ],
)
def test_answer_complete(request_: bytes, answer: bytes, complete: bool | None) -> None:
    assert answer_complete(request_, answer) is complete


TRANSPORT_MODULES = ["tcp_printer", "usb_printer", "file_printer", "serial_printer", "cups_printer"]


@pytest.mark.parametrize("module", TRANSPORT_MODULES)
def test_transports_sit_below_the_factory(module: str) -> None:
    # printer_transport imports every transport; a transport imports only transport_base
    # of the printer plumbing, never the factory above it (no import cycle).
    root = Path(__file__).resolve().parent.parent / "drivers"
    tree = ast.parse((root / f"{module}.py").read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "gatewayd_drivers.printer_transport" not in imported
    factory = ast.parse((root / "printer_transport.py").read_text(encoding="utf-8"))
    assert f"gatewayd_drivers.{module}" in {n.module for n in factory.body if isinstance(n, ast.ImportFrom)}
