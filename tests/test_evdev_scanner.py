"""EvdevScanner with recorded event streams injected through its EventSource seam.

Discovery runs for real over a fake /dev tree in tmp_path; only the opened device is a
scripted source (this machine has no /dev/input).
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from gatewayd_drivers import keymaps as k
from gatewayd_drivers.backoff import Backoff
from gatewayd_drivers.base import DeviceState, DeviceUnavailable, RawRead, Scanner
from gatewayd_drivers.capture import Recordable, parse_capture
from gatewayd_drivers.device_discovery import DeviceDiscovery
from gatewayd_drivers.evdev_scanner import (
    EVDEV_MISSING,
    EvdevEventSource,
    EvdevMissing,
    EvdevScanner,
    EventSource,
)
from gatewayd_drivers.keymaps import wedge_events
from tests.openers import Opener

CAPTURES = Path(__file__).parent / "data" / "captures"
BY_ID = "/dev/input/by-id/usb-Honeywell_Imaging_1950g_19001A0B45-event-kbd"
Event = tuple[int, int, int]


class ScriptedSource:
    """Plays events, then ends the way the script says: unplug, stream end, or block."""

    def __init__(
        self, events: list[Event], *, then: str = "block", grab_error: int | None = None
    ) -> None:
        self.script = events
        self.then = then
        self.grab_error = grab_error
        self.grabbed = False
        self.closed = False

    def grab(self) -> None:
        if self.grab_error is not None:
            raise OSError(self.grab_error, os.strerror(self.grab_error))
        self.grabbed = True

    def close(self) -> None:
        self.closed = True

    async def events(self) -> AsyncIterator[Event]:
        for event in self.script:
            yield event
        if self.then == "unplug":
            raise OSError(errno.ENODEV, "No such device")
        if self.then == "block":
            await asyncio.Event().wait()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "dev/input/by-id").mkdir(parents=True)
    (tmp_path / "dev/input/event3").touch()
    return tmp_path


def plug(root: Path) -> None:
    link = root / BY_ID.lstrip("/")
    if not link.is_symlink():
        link.symlink_to("../event3")


def make(
    root: Path, opener: Opener, states: list[tuple[DeviceState, str]] | None = None, *,
    on_state: Callable[[str, DeviceState, str], None] | None = None, **kwargs: object,
) -> EvdevScanner:
    def record(device: str, state: DeviceState, detail: str) -> None:
        assert device == "dock-03-left"
        if states is not None:
            states.append((state, detail))
        if on_state is not None:
            on_state(device, state, detail)

    return EvdevScanner(
        id="dock-03-left",
        backoff=Backoff(initial=0.001, maximum=0.001, jitter=0),
        discovery=DeviceDiscovery(root=root),
        opener=opener,
        on_state=record,
        **kwargs,  # type: ignore[arg-type]
    )


async def take(scanner: EvdevScanner, n: int) -> list[RawRead]:
    out: list[RawRead] = []
    async for read in scanner.reads():
        out.append(read)
        if len(out) == n:
            break
    return out


def recording(name: str) -> list[Event]:
    return [p for _, p in parse_capture((CAPTURES / name).read_text()).records if isinstance(p, tuple)]


async def test_is_a_scanner(root: Path) -> None:
    scanner = make(root, Opener(ScriptedSource([])), path=BY_ID)
    assert isinstance(scanner, Scanner) and isinstance(scanner, Recordable)


@pytest.mark.parametrize(
    ("name", "layout", "expected"),
    [
        ("wedge_us_gs1_altcode.capture", "us", [b"]C1010950600013435210ABC123\x1d17271231"]),
        # the second read has no Enter: the inter-key timeout completes it
        ("wedge_de_capslock_altgr.capture", "de", [b"Lot@A/7-B", b"xyz"]),
        ("wedge_fr_digits_ctrl_gs.capture", "fr", [b"]C110LOT-1\x1d21a,b"]),
    ],
)
async def test_recorded_streams_by_stable_path(
    root: Path, name: str, layout: str, expected: list[bytes]
) -> None:
    plug(root)
    source = ScriptedSource(recording(name))
    opener = Opener(source)
    states: list[tuple[DeviceState, str]] = []
    async with make(root, opener, states, path=BY_ID, layout=layout,
                    key_timeout=0.01) as scanner:
        reads = await take(scanner, len(expected))
    assert [r.data for r in reads] == expected
    assert all(r.device == "dock-03-left" and r.errors == () for r in reads)
    assert opener.opened == [BY_ID]  # the stable link itself is opened
    assert source.grabbed and source.closed
    assert states == [(DeviceState.CONNECTED, BY_ID)]


async def test_the_down_arrow_after_enter_makes_no_read_and_is_counted(root: Path) -> None:
    plug(root)
    # A last read after the recording: once it is out, every key before it was translated.
    events = recording("wedge_boot_enter_down.capture") + wedge_events("END", layout="us")
    for suffix, ignored in ((["enter"], 2), (["enter", "down"], 0)):
        async with make(root, Opener(ScriptedSource(events)), path=BY_ID, suffix=suffix) as scanner:
            reads = await take(scanner, 3)
            assert [(r.data, r.errors) for r in reads] == [
                (b"https://example.com/l/A-1*2+3?q=Z_9", ()), (b"SUP1-20261127-0003", ()), (b"END", ())]
            assert scanner.ignored_keys == ignored


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def sys_input(root: Path, event: str, *, name: str, vendor: str, product: str,
              keyboard: bool = True) -> None:
    dev = root / f"sys/class/input/{event}/device"
    write(dev / "name", name + "\n")
    write(dev / "id/vendor", vendor + "\n")
    write(dev / "id/product", product + "\n")
    write(dev / "capabilities/ev", "120013\n" if keyboard else "3\n")
    write(dev / "capabilities/key",
          "1000000000007 ff9f207ac14057ff febeffdfffefffff fffffffffffffffe\n" if keyboard
          else "0\n")
    (root / f"dev/input/{event}").touch()


@pytest.mark.parametrize(
    ("match", "expected_node"),
    [
        ({"usb": "0C2E:0B61"}, "/dev/input/event5"),  # keyboard node, not the mouse node
        ({"name": "Honeywell Imaging Scanner"}, "/dev/input/event5"),
    ],
)
async def test_match_by_usb_id_or_name(
    root: Path, match: dict[str, str], expected_node: str
) -> None:
    sys_input(root, "event4", name="Honeywell Imaging Scanner", vendor="0c2e",
              product="0b61", keyboard=False)
    sys_input(root, "event5", name="Honeywell Imaging Scanner", vendor="0c2e", product="0b61")
    opener = Opener(ScriptedSource(wedge_events("A1", layout="us")))
    async with make(root, opener, None, **match) as scanner:  # type: ignore[arg-type]
        reads = await take(scanner, 1)
    assert reads[0].data == b"A1"
    assert opener.opened == [expected_node]


async def test_unplug_reports_and_regrabs(root: Path) -> None:
    plug(root)
    partial = wedge_events("PARTIAL", layout="us", terminator=None)
    first = ScriptedSource(wedge_events("ONE", layout="us") + partial, then="unplug")
    second = ScriptedSource(wedge_events("TWO", layout="us"))
    opener = Opener(first, second)
    states: list[tuple[DeviceState, str]] = []
    async with make(root, opener, states, path=BY_ID) as scanner:
        reads = await take(scanner, 3)
    assert [(r.data, r.errors) for r in reads] == [
        (b"ONE", ()),
        (b"PARTIAL", ("device disconnected mid-read (device removed (ENODEV))",)),
        (b"TWO", ()),
    ]
    assert states == [
        (DeviceState.CONNECTED, BY_ID),
        (DeviceState.DISCONNECTED, f"{BY_ID}: device removed (ENODEV)"),
        (DeviceState.CONNECTED, BY_ID),
    ]
    assert first.closed


async def test_waits_for_the_device_to_appear(root: Path) -> None:
    states: list[tuple[DeviceState, str]] = []

    def plug_when_missing(device: str, state: DeviceState, detail: str) -> None:
        if state is DeviceState.DISCONNECTED:
            plug(root)  # the operator plugs the scanner in

    opener = Opener(ScriptedSource(wedge_events("X", layout="us")))
    async with make(root, opener, states, on_state=plug_when_missing, path=BY_ID) as scanner:
        reads = await take(scanner, 1)
    assert reads[0].data == b"X"
    assert states == [
        (DeviceState.DISCONNECTED, f"no input device matches path={BY_ID}"),
        (DeviceState.CONNECTED, BY_ID),
    ]


@pytest.mark.parametrize(
    ("failure", "detail"),
    [
        (ScriptedSource([], grab_error=errno.EBUSY),
         f"{BY_ID} is grabbed by another process (EBUSY): stop it (another gatewayd, a "
         "kiosk or a desktop session)"),
        (PermissionError(errno.EACCES, "Permission denied"),
         f"permission denied on {BY_ID}: install config/99-gatewayd.rules (udevadm control "
         "--reload && udevadm trigger) and add the gatewayd user to group gatewayd"),
        (EvdevMissing(EVDEV_MISSING), EVDEV_MISSING),
    ],
    ids=["ebusy", "eacces", "no-evdev"],
)
async def test_open_failures_report_error_and_retry(
    root: Path, failure: EventSource | BaseException, detail: str
) -> None:
    plug(root)
    opener = Opener(failure, ScriptedSource(wedge_events("OK", layout="us")))
    states: list[tuple[DeviceState, str]] = []
    async with make(root, opener, states, path=BY_ID) as scanner:
        reads = await take(scanner, 1)
    assert reads[0].data == b"OK"
    assert states == [(DeviceState.ERROR, detail), (DeviceState.CONNECTED, BY_ID)]


async def test_syn_dropped_is_delivered_as_an_error_read(root: Path) -> None:
    plug(root)
    events = [*wedge_events("AB", layout="us", terminator=None),
              (k.EV_SYN, k.SYN_DROPPED, 0), (k.EV_SYN, k.SYN_REPORT, 0),
              *wedge_events("CD", layout="us")]
    async with make(root, Opener(ScriptedSource(events)), path=BY_ID) as scanner:
        reads = await take(scanner, 2)
    assert [(r.data, r.errors) for r in reads] == [
        (b"", ("kernel input buffer overrun (SYN_DROPPED): partial read discarded, "
               "2 characters discarded",)),
        (b"CD", ()),
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "evdev scanner 'x': expected path, name or usb to match"),
        ({"usb": "0c2e:0b61", "key_timeout": 0}, "evdev scanner 'x': key_timeout 0: expected > 0"),
        ({"usb": "0c2e:0b61", "layout": "se"},
         "unknown keyboard layout 'se': expected one of us, uk, de, fr"),
        ({"usb": "0c2e:0b61", "suffix": ["return"]}, "suffix key 'return': expected one of enter, tab, lf, esc"),
    ],
)
def test_invalid_settings(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        EvdevScanner(id="x", **kwargs)  # type: ignore[arg-type]


def test_missing_evdev_error_names_the_fix() -> None:
    try:
        import evdev  # noqa: F401
    except ImportError:
        with pytest.raises(EvdevMissing, match="pip install 'gatewayd\\[evdev\\]'"):
            EvdevEventSource("/dev/input/event0")
    else:
        with pytest.raises(FileNotFoundError):
            EvdevEventSource("/nonexistent/event0")


def test_key_constants_match_python_evdev() -> None:
    ecodes = pytest.importorskip(
        "evdev.ecodes", reason="python-evdev not installed: constants checked where it is")
    for name in dir(k):
        if name.startswith(("KEY_", "EV_", "SYN_")):
            assert getattr(ecodes, name) == getattr(k, name), name


# -- recording ----------------------------------------------------------------------------


async def test_open_raw_grabs_and_hands_over_every_event(root: Path) -> None:
    sys_input(root, "event3", name="Honeywell Imaging Scanner", vendor="0c2e", product="0b61")
    plug(root)
    events = wedge_events("A1", layout="us")
    source = ScriptedSource(events, then="end")
    scanner = make(root, Opener(source), path=BY_ID, layout="de")
    stream = await scanner.open_raw()
    assert source.grabbed
    assert [e async for e in stream.records()] == events
    await stream.aclose()
    assert source.closed
    header = stream.header
    assert (header.kind, header.usb, header.layout) == ("evdev", "0c2e:0b61", "de")
    assert header.device == f"Honeywell Imaging Scanner, {BY_ID}"
    assert dict(header.headers) == {"scanner": "dock-03-left"}


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (ScriptedSource([], grab_error=errno.EBUSY),
         f"{BY_ID} is grabbed by another process (EBUSY), most likely the running gateway: stop the gatewayd "
         "service first (sudo systemctl stop gatewayd), then record again"),
        (PermissionError(errno.EACCES, "Permission denied"), f"permission denied on {BY_ID}: install config/"),
        (EvdevMissing(EVDEV_MISSING), "python-evdev is not installed"),
    ],
)
async def test_open_raw_says_what_to_do(root: Path, failure: ScriptedSource | BaseException, message: str) -> None:
    plug(root)
    scanner = make(root, Opener(failure), path=BY_ID)
    with pytest.raises(DeviceUnavailable) as caught:
        await scanner.open_raw()
    assert str(caught.value).startswith(message)
    if isinstance(failure, ScriptedSource):
        assert failure.closed


async def test_open_raw_without_the_device(root: Path) -> None:
    scanner = make(root, Opener(ScriptedSource([])), path=BY_ID)
    with pytest.raises(DeviceUnavailable, match=f"no input device matches path={BY_ID}: is the scanner plugged in"):
        await scanner.open_raw()
