"""``gatewayd devices``: which /dev node is which scanner or printer, with config to paste.

Lists keyboard-wedge input devices (flagging known scanner vendors), HID-POS scanners
(hidraw nodes whose report descriptor has the bar code scanner usage page 0x8C), serial
ports by id and USB printers, each with a ready-to-paste ``[[scanners]]`` or
``[[printers]]`` block that uses the stable path. Needs no root; what it could not read
is listed at the end.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import asdict
from typing import Any

from gatewayd_drivers.device_discovery import DeviceDiscovery, DeviceReport, PrinterDevice

__all__ = ["main", "render_json", "render_text", "snippets"]

PERMISSION_FIX = (
    "install config/99-gatewayd.rules and add the gatewayd user to group gatewayd "
    "(printers: group lp)"
)


def _toml(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return (slug or "device")[:40]


def snippets(report: DeviceReport) -> list[tuple[str, str]]:
    """(heading, TOML block) per candidate device, in the order they are listed."""
    out: list[tuple[str, str]] = []
    for dev in report.inputs:
        if not dev.keyboard or (dev.scanner_vendor is None and dev.stable_path is None):
            continue
        if dev.scanner_vendor is None and "scan" not in dev.name.lower():
            continue  # an ordinary keyboard: not offered as a scanner
        match = f"path = {_toml(dev.stable_path)}" if dev.stable_path else (
            f"usb = {_toml(dev.usb)}" if dev.usb else f"name = {_toml(dev.name)}")
        heading = f"keyboard wedge: {dev.name} ({dev.usb or 'no USB id'}) at {dev.node}"
        if dev.scanner_vendor:
            heading += f" - {dev.scanner_vendor}"
        if not dev.readable:
            heading += f"\n  (not readable by this user: {PERMISSION_FIX})"
        out.append((heading, "\n".join([
            "[[scanners]]",
            f"id = {_toml(_slug(dev.name))}",
            'station = "CHANGE-ME"',
            'driver = "evdev"',
            match,
            'layout = "us"                     # the keyboard country set in the scanner',
        ])))
    for hid in report.hidraw:
        if hid.hid_pos is False or (hid.hid_pos is None and hid.scanner_vendor is None):
            continue
        heading = f"HID-POS scanner: {hid.name} ({hid.usb}) at {hid.node}"
        if hid.hid_pos is None:
            heading += "\n  (report descriptor unreadable: HID-POS not confirmed)"
        if not hid.readable:
            heading += f"\n  (not readable by this user: {PERMISSION_FIX})"
        lines = ["[[scanners]]", f"id = {_toml(_slug(hid.name))}", 'station = "CHANGE-ME"',
                 'driver = "hidpos"', f"usb = {_toml(hid.usb or 'VID:PID')}"]
        if hid.serial:
            lines.append(f"serial_number = {_toml(hid.serial)}")
        out.append((heading, "\n".join(lines)))
    for port in report.serial_ports:
        out.append((f"serial port: {port.path} -> {port.node}", "\n".join([
            "[[scanners]]", f"id = {_toml(_slug(port.path.rsplit('/', 1)[-1]))}",
            'station = "CHANGE-ME"', 'driver = "serial"', f"port = {_toml(port.path)}",
            "baudrate = 9600",
        ])))
    for printer in report.printers:
        out.append(_printer_snippet(printer))
    return out


def _printer_snippet(printer: PrinterDevice) -> tuple[str, str]:
    zebra = printer.vendor == "0a5f" or "zebra" in printer.name.lower()
    heading = f"USB printer: {printer.name} ({printer.usb or 'no USB id'})"
    if printer.node:
        heading += f" at {printer.node}"
        if not printer.writable:
            heading += f"\n  (not writable by this user: {PERMISSION_FIX})"
    return heading, "\n".join([
        "[[printers]]", f"id = {_toml(_slug(printer.name))}",
        f"driver = {_toml('zpl' if zebra else 'escpos')}",
        f"transport = {_toml(printer.transport)}",
    ])


def render_text(report: DeviceReport) -> str:
    blocks = snippets(report)
    lines: list[str] = []
    if not blocks:
        lines.append(
            "No scanner or printer candidates found (looked at input devices, hidraw, "
            "/dev/serial/by-id, /dev/usb/lp* and USB printer interfaces). Plug the device "
            "in and run this again; a scanner in keyboard mode shows up as an input device."
        )
    for heading, toml in blocks:
        lines += [f"# {heading}".replace("\n", "\n# "), toml, ""]
    others = [d for d in report.inputs if d.keyboard and d.scanner_vendor is None
              and "scan" not in d.name.lower()]
    if others:
        lines.append("Other keyboards (a scanner from an unlisted vendor may be one of them):")
        lines += [f"  {d.node}  {d.name} ({d.usb or 'no USB id'})"
                  f"{'  ' + d.stable_path if d.stable_path else ''}" for d in others]
        lines.append("")
    if report.problems:
        lines.append("Could not read (run as root or fix permissions to see more):")
        lines += [f"  {p}" for p in report.problems]
    return "\n".join(lines).rstrip("\n") + "\n"


def render_json(report: DeviceReport) -> str:
    body: dict[str, Any] = asdict(report)
    body["snippets"] = [{"device": h, "toml": t} for h, t in snippets(report)]
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="gatewayd devices",
        description="List candidate scanners and printers on this machine, with config "
        "snippets that use stable /dev paths.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--root", default="/", help="filesystem root to inspect (default /)")
    args = parser.parse_args(argv)
    report = DeviceDiscovery(root=args.root).scan()
    print(render_json(report) if args.json else render_text(report), end="")
    return 0
