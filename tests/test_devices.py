"""``gatewayd devices`` over a fake /sys and /dev tree built in tmp_path."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import pytest

from gatewayd.cli import devices
from gatewayd_drivers.device_discovery import DeviceDiscovery, has_usage_page

HONEYWELL_BY_ID = "/dev/input/by-id/usb-Honeywell_Imaging___Mobility_1950g_19001A0B45-event-kbd"
KEYS_64 = "1000000000007 ff9f207ac14057ff febeffdfffefffff fffffffffffffffe"
POS_DESCRIPTOR = bytes.fromhex("068c000902a101850209fe150026ff007508953f8102c0")
KEYBOARD_DESCRIPTOR = bytes.fromhex("05010906a101050719e029e7c0")


def write(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)


def link(root: Path, path: str, target: str) -> None:
    p = root / path.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.symlink_to(target)


def event(root: Path, n: int, name: str, vendor: str, product: str, *, keys: str = KEYS_64,
          ev: str = "120013") -> None:
    dev = root / f"sys/class/input/event{n}/device"
    write(dev / "name", name + "\n")
    write(dev / "id/vendor", vendor + "\n")
    write(dev / "id/product", product + "\n")
    write(dev / "capabilities/ev", ev + "\n")
    write(dev / "capabilities/key", keys + "\n")
    write(root / f"dev/input/event{n}", "")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path
    # A Honeywell wedge (keyboard node + a non-keyboard node), a plain keyboard, a mouse.
    event(r, 3, "Honeywell Imaging & Mobility 1950g", "0c2e", "0b61")
    event(r, 4, "Honeywell Imaging & Mobility 1950g", "0c2e", "0b61", keys="0", ev="3")
    event(r, 5, "Logitech USB Keyboard", "046d", "c31c",
          keys="fffffffe")  # 32-bit kernel long: one word
    event(r, 6, "PixArt USB Optical Mouse", "093a", "2510", keys="1f0000 0 0 0 0", ev="17")
    link(r, HONEYWELL_BY_ID, "../event3")
    link(r, "/dev/input/by-path/platform-xhci-hcd.0-usb-0:1.2:1.0-event-kbd", "../event3")
    link(r, "/dev/input/by-id/usb-Logitech_USB_Keyboard-event-kbd", "../event5")
    # HID-POS Zebra on hidraw1; hidraw0 is a keyboard interface.
    for n, desc in ((0, KEYBOARD_DESCRIPTOR), (1, POS_DESCRIPTOR)):
        dev = r / f"sys/class/hidraw/hidraw{n}/device"
        write(dev / "uevent", "HID_ID=0003:000005E0:00001300\nHID_NAME=Symbol Bar Code Scanner"
              "\nHID_UNIQ=S19283\n")
        write(dev / "report_descriptor", desc)
        write(r / f"dev/hidraw{n}", "")
    # A serial scanner and a Zebra label printer on usblp.
    link(r, "/dev/serial/by-id/usb-Honeywell_Imaging_Mobility_1902-if00", "../../ttyACM0")
    usb = r / "sys/bus/usb/devices"
    write(usb / "1-1.3/idVendor", "0a5f\n")
    write(usb / "1-1.3/idProduct", "0164\n")
    write(usb / "1-1.3/manufacturer", "Zebra Technologies\n")
    write(usb / "1-1.3/product", "ZTC ZD421-203dpi ZPL\n")
    write(usb / "1-1.3:1.0/bInterfaceClass", "07\n")
    (usb / "1-1.3:1.0/usbmisc/lp0").mkdir(parents=True)
    write(r / "dev/usb/lp0", "")
    # An ESC/POS printer with no usblp node (pyusb)
    write(usb / "1-1.4/idVendor", "0416\n")
    write(usb / "1-1.4/idProduct", "5011\n")
    write(usb / "1-1.4/product", "POS58 Printer\n")
    write(usb / "1-1.4:1.0/bInterfaceClass", "07\n")
    write(usb / "1-1.4:1.1/bInterfaceClass", "03\n")
    return r


def test_scan(root: Path) -> None:
    report = DeviceDiscovery(root=root).scan()
    by_node = {d.node: d for d in report.inputs}
    assert by_node["/dev/input/event3"].keyboard
    assert by_node["/dev/input/event3"].stable_path == HONEYWELL_BY_ID
    assert by_node["/dev/input/event3"].scanner_vendor == "Honeywell (Metrologic)"
    assert not by_node["/dev/input/event4"].keyboard
    assert by_node["/dev/input/event5"].keyboard  # 32-bit bitmap format
    assert not by_node["/dev/input/event6"].keyboard
    assert [(h.node, h.hid_pos, h.usb, h.serial) for h in report.hidraw] == [
        ("/dev/hidraw0", False, "05e0:1300", "S19283"),
        ("/dev/hidraw1", True, "05e0:1300", "S19283"),
    ]
    assert [(p.name, p.transport) for p in report.printers] == [
        ("Zebra Technologies ZTC ZD421-203dpi ZPL", "file:///dev/usb/lp0"),
        ("POS58 Printer", "usb://0416:5011"),
    ]
    assert report.problems == ()


def test_text_output_has_pasteable_toml(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert devices.main(["--root", str(root)]) == 0
    out = capsys.readouterr().out
    toml_only = "\n".join(
        line for line in out.splitlines()
        if not line.startswith(("#", "Other", "  "))
    )
    config = tomllib.loads(toml_only)
    assert config["scanners"] == [
        {"id": "honeywell-imaging-mobility-1950g", "station": "CHANGE-ME", "driver": "evdev",
         "path": HONEYWELL_BY_ID, "layout": "us"},
        {"id": "symbol-bar-code-scanner", "station": "CHANGE-ME", "driver": "hidpos",
         "usb": "05e0:1300", "serial_number": "S19283"},
        {"id": "usb-honeywell-imaging-mobility-1902-if00", "station": "CHANGE-ME",
         "driver": "serial", "port": "/dev/serial/by-id/usb-Honeywell_Imaging_Mobility_1902-if00",
         "baudrate": 9600},
    ]
    assert config["printers"] == [
        {"id": "zebra-technologies-ztc-zd421-203dpi-zpl", "driver": "zpl",
         "transport": "file:///dev/usb/lp0"},
        {"id": "pos58-printer", "driver": "escpos", "transport": "usb://0416:5011"},
    ]
    assert "/dev/input/event5  Logitech USB Keyboard (046d:c31c)" in out


def test_json_output(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert devices.main(["--root", str(root), "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert len(body["snippets"]) == 5
    assert body["hidraw"][1]["hid_pos"] is True


def test_empty_machine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert devices.main(["--root", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("No scanner or printer candidates found (looked at input devices")


def test_unreadable_files_are_listed(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    descriptor = root / "sys/class/hidraw/hidraw1/device/report_descriptor"
    descriptor.unlink()
    descriptor.mkdir()  # reading it fails with EISDIR
    report = DeviceDiscovery(root=root).scan()
    assert report.problems == (
        "cannot read /sys/class/hidraw/hidraw1/device/report_descriptor: Is a directory",)
    assert report.hidraw[1].hid_pos is None
    # A known scanner vendor is still offered, flagged as unconfirmed.
    devices.main(["--root", str(root)])
    assert "HID-POS not confirmed" in capsys.readouterr().out


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_permission_denied_is_reported(root: Path) -> None:
    descriptor = root / "sys/class/hidraw/hidraw1/device/report_descriptor"
    descriptor.chmod(0)
    report = DeviceDiscovery(root=root).scan()
    assert report.problems == (
        "permission denied on /sys/class/hidraw/hidraw1/device/report_descriptor",)


def test_find_input_and_hidraw(root: Path) -> None:
    d = DeviceDiscovery(root=root)
    assert d.find_input(usb="0c2e:0b61") == HONEYWELL_BY_ID
    assert d.find_input(name="Logitech USB Keyboard") == "/dev/input/by-id/usb-Logitech_USB_Keyboard-event-kbd"
    assert d.find_input(path="/dev/input/by-id/missing") is None
    assert d.find_input(usb="ffff:0001") is None
    assert d.find_hidraw(usb="05E0:1300") == "/dev/hidraw1"
    assert d.find_hidraw(usb="05e0:1300", serial_number="nope") is None


@pytest.mark.parametrize(
    ("descriptor", "expected"),
    [
        (POS_DESCRIPTOR, True),
        (bytes.fromhex("058c0902"), True),  # 1-byte Usage Page
        (KEYBOARD_DESCRIPTOR, False),
        (bytes.fromhex("fe0201aabb058c"), True),  # long item skipped
        (bytes.fromhex("0a8c00"), False),  # Local Usage 0x8C is not a Usage Page
        (b"", False),
        (b"\xfe", False),
    ],
)
def test_has_usage_page(descriptor: bytes, expected: bool) -> None:
    assert has_usage_page(descriptor, 0x8C) is expected


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        devices.main(["--help"])
    assert info.value.code == 0
    assert "--json" in capsys.readouterr().out
