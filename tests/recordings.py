"""Third-party scanner recordings, read in place and converted at test time.

The recordings live outside the repository, in ``shared/captures`` beside the checkout (or
beside one of its parent folders), or wherever ``$GATEWAYD_CAPTURES`` points; each keeps its
own licence there, so the repository holds no copy of them, converted or not. Tests that
need them skip, saying so, where the folder is absent.

The converters turn them into capture files (:mod:`gatewayd_drivers.capture`):

* :func:`itp_examples_to_captures`: the console output of Itp.HidBarcodeScanner's
  NativeHidDemo (a Windows device path per device, with its VID/PID, then one ``Raw <hex>``
  line per 64-byte input report) becomes one ``hidpos`` capture per device;
* :func:`boot_keyboard_to_events`: 8-byte HID boot keyboard reports (HID 1.11 Appendix B.1),
  one per line in hex, become the Linux input events the kernel's hid-input would emit.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from gatewayd_drivers.capture import Capture, EvdevEvent, Record

__all__ = [
    "HIDPOS_RECORDING",
    "LOREM",
    "WEDGE_RECORDING",
    "WEDGE_TEXTS",
    "boot_keyboard_to_events",
    "captures_dir",
    "itp_examples_to_captures",
    "recording",
]

HIDPOS_RECORDING = "hidpos_win_zebra-05e0-2100_and_honeywell-0c2e-1007_itp-examples.txt"
WEDGE_RECORDING = "hidkbd_boot-reports_sm-2d-hid-kbw_imyelo-{}.hex.txt"

# The 445-byte QR code both HID-POS devices read, and the texts the wedge recordings type
# (as their source repository's own tests expect them).
LOREM = (
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et "
    "dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex "
    "ea commodo consequat. Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat "
    "nulla pariatur. Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt mollit "
    "anim id est laborum."
)
WEDGE_TEXTS = {
    1: "https://mnzn.net/sod.ac/d/SD01234567",
    2: "https://github.com/imyelo?tab=overview&from=2018-12-01&to=2018-12-31",
    3: "1234567890-=\\`qwertyuiop[]asdfghjkl;'zxcvbnm,./ \t!@#$%^&*()_+|~QWERTYUIOP{}ASDFGHJKL:\"ZXCVBNM<>?",
}


def captures_dir() -> Path | None:
    """``$GATEWAYD_CAPTURES``, else the first ``shared/captures`` beside the checkout or a parent."""
    if "GATEWAYD_CAPTURES" in os.environ:
        return Path(os.environ["GATEWAYD_CAPTURES"])
    repo = Path(__file__).resolve().parents[1]
    for parent in repo.parents:
        candidate = parent / "shared" / "captures"
        if candidate.is_dir():
            return candidate
    return None


def recording(name: str) -> str:
    """The text of a shared recording; skips the test, saying why, when it cannot be found."""
    folder = captures_dir()
    if folder is None or not (folder / name).is_file():
        where = folder if folder is not None else "shared/captures beside the checkout or a parent folder"
        pytest.skip(f"third-party recording {name} not found in {where} (set GATEWAYD_CAPTURES to its folder)")
    return (folder / name).read_text(encoding="utf-8")


def itp_examples_to_captures(text: str) -> list[Capture]:
    """One ``hidpos`` capture per device section of NativeHidDemo's output."""
    captures: list[Capture] = []
    device: str | None = None
    vid = pid = None
    records: list[Record] = []

    def close() -> None:
        if device is not None:
            captures.append(Capture("hidpos", tuple(records), vid, pid, device=device))

    for number, line in enumerate(text.splitlines(), 1):
        path = re.search(r"vid_([0-9a-f]{4})&pid_([0-9a-f]{4})", line, re.IGNORECASE)
        if path:
            close()
            device, records = line.strip(), []
            vid, pid = int(path.group(1), 16), int(path.group(2), 16)
        elif line.startswith("Raw"):
            if device is None:
                raise ValueError(f"line {number}: Raw line before any device path line")
            records.append((None, bytes.fromhex(line[3:].strip())))
    close()
    return captures


# Linux drivers/hid/hid-input.c, hid_keyboard[]: Keyboard/Keypad page usage -> KEY_* code,
# 0x04-0x73 (letters through F24). 0x32 (Non-US #) shares KEY_BACKSLASH with 0x31, as there.
HID_KEY_CODES: dict[int, int] = dict(zip(range(0x04, 0x74), (
    30, 48, 46, 32, 18, 33, 34, 35, 23, 36, 37, 38, 50, 49, 24, 25, 16, 19, 31, 20, 22, 47, 17, 45,  # a-x
    21, 44, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 28, 1, 14, 15, 57, 12, 13, 26, 27, 43, 43, 39, 40, 41,  # y-`
    51, 52, 53, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 87, 88, 99, 70, 119, 110, 102, 104, 111,  # ,-Del
    107, 109, 106, 105, 108, 103, 69, 98, 55, 74, 78, 96, 79, 80, 81, 75, 76, 77, 71, 72, 73, 82, 83,  # End-KP.
    86, 127, 116, 117, 183, 184, 185, 186, 187, 188, 189, 190, 191, 192, 193, 194,  # 102nd-F24
), strict=True))  # fmt: skip
# Boot report byte 0, bit i = usage 0xE0 + i: LeftCtrl, LeftShift, LeftAlt, LeftGUI,
# RightCtrl, RightShift, RightAlt, RightGUI.
MODIFIER_KEY_CODES = (29, 42, 56, 125, 97, 54, 100, 126)
EV_SYN, EV_KEY, SYN_REPORT = 0, 1, 0


def boot_keyboard_to_events(text: str) -> list[EvdevEvent]:
    """Per report: modifier changes, key releases, key presses, then SYN_REPORT, as the
    kernel delivers them (it also sends EV_MSC scan codes, which translators ignore)."""
    events: list[EvdevEvent] = []
    modifiers, keys = 0, set[int]()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        report = bytes.fromhex(line.strip())
        if len(report) != 8:
            raise ValueError(f"line {number}: expected an 8-byte boot keyboard report, got {len(report)} bytes")
        slots = [usage for usage in report[2:] if usage]
        if 0x01 in slots:
            continue  # ErrorRollOver (HID 1.11 Appendix C): keep the previous state
        frame: list[EvdevEvent] = []
        for bit, code in enumerate(MODIFIER_KEY_CODES):
            was, now = modifiers >> bit & 1, report[0] >> bit & 1
            if was != now:
                frame.append((EV_KEY, code, now))
        frame += [(EV_KEY, HID_KEY_CODES[usage], 0) for usage in sorted(keys - set(slots))]
        frame += [(EV_KEY, HID_KEY_CODES[usage], 1) for usage in slots if usage not in keys]
        if frame:
            events += [*frame, (EV_SYN, SYN_REPORT, 0)]
        modifiers, keys = report[0], set(slots)
    return events
