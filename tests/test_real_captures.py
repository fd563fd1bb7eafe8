"""Real scanners' bytes, recorded by third parties, through `gatewayd decode --capture`.

The recordings are read in place from the shared captures folder (tests/recordings.py) and
converted into capture files in tmp_path at test time; the repository keeps no copy. Each
runs through the real command, as a support engineer would run it, and must give exactly
what the device read, with the symbology the device sent:

* HID-POS, Zebra 05e0:2100 and Honeywell 0c2e:1007, each scanning the UPC-A 306030209223 and
  a 445-character QR code sent in 8 continued reports. The Honeywell sends the UPC-A under
  "]E0", the Zebra under "]Xg"; "]Xg" is passed on as the device sent it, not rewritten to
  "]E0" (README, "Scanner settings", says why). Both send the QR code under "]Q1".
* A keyboard wedge (SM-2D PRODUCT HID KBW) typing two URLs and every printable US-ASCII key,
  each followed by Enter and a Down Arrow: one read per recording, no junk read.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gatewayd_drivers.capture import Capture, format_capture
from gatewayd_drivers.replay_scanner import ReplayScanner
from tests.hidpos_descriptors import HONEYWELL_DESCRIPTOR, ZEBRA_DESCRIPTOR
from tests.recordings import (
    HIDPOS_RECORDING,
    LOREM,
    WEDGE_RECORDING,
    WEDGE_TEXTS,
    boot_keyboard_to_events,
    itp_examples_to_captures,
    recording,
)

UPC_A = "306030209223"
EXPECTED = {  # what each device read, and the symbology it sent
    0x05E0: [(UPC_A, "]Xg"), (LOREM, "]Q1")],
    0x0C2E: [(UPC_A, "]E0"), (LOREM, "]Q1")],
}
DESCRIPTORS = {0x05E0: ZEBRA_DESCRIPTOR, 0x0C2E: HONEYWELL_DESCRIPTOR}


def decode(*args: str, cwd: Path) -> tuple[list[dict[str, Any]], str]:
    env = {k: v for k, v in os.environ.items() if k != "GATEWAYD_CONFIG"}
    env["GATEWAYD_CONFIG"] = str(cwd / "no-such-config.toml")
    result = subprocess.run(
        [sys.executable, "-m", "gatewayd", "decode", *args],
        capture_output=True, text=True, timeout=60, cwd=cwd, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()], result.stderr


def hidpos_captures() -> dict[int, Capture]:
    captures = {c.usb_vid: c for c in itp_examples_to_captures(recording(HIDPOS_RECORDING))}
    assert set(captures) == {0x05E0, 0x0C2E}
    return {vid: c for vid, c in captures.items() if vid is not None}


def test_lorem_is_445_characters() -> None:
    assert len(LOREM) == 445


@pytest.mark.parametrize("vid", [0x05E0, 0x0C2E], ids=["zebra", "honeywell"])
@pytest.mark.parametrize("descriptor", [False, True], ids=["vendor-table", "descriptor"])
def test_hidpos_recordings_decode_exactly(tmp_path: Path, vid: int, descriptor: bool) -> None:
    capture = hidpos_captures()[vid]
    assert len(capture.records) == 9  # 1 UPC-A report + 8 QR reports
    if descriptor:  # as `gatewayd capture` records it: with the device's descriptor
        capture = dataclasses.replace(capture, descriptor=DESCRIPTORS[vid])
    path = tmp_path / "device.capture"
    path.write_text(format_capture(capture))
    scans, stderr = decode("--capture", str(path), cwd=tmp_path)
    assert [(s["raw"], s["symbology"]) for s in scans] == EXPECTED[vid]
    assert all(s["scanner"] == "cli" and s["schema"] == "gatewayd.scan/1" for s in scans)
    # The driver noticed nothing wrong (what the decoder thinks of the data is its own business).
    assert not [e for s in scans for e in s["errors"] if "report" in e or "symbology bytes" in e]
    layout = "descriptor (the device's report descriptor)" if descriptor else {
        0x05E0: "zebra (recorded: Zebra 05e0:2100)", 0x0C2E: "honeywell (recorded: Honeywell 0c2e:1007)"}[vid]
    assert f"hidpos capture of {capture.usb}, report layout {layout}: 2 read(s)" in stderr


def test_the_data_equals_what_windows_read_with_the_devices_own_descriptors() -> None:
    # An oracle inside the recording: NativeHidDemo's "Data" lines come from
    # HidP_GetUsageValueArray on each device's real descriptor, one running text per device.
    text = recording(HIDPOS_RECORDING)
    windows: list[str] = []
    for line in text.splitlines():
        if line.startswith("\\\\?\\"):
            windows.append("")
        elif line.startswith("Data "):
            windows[-1] += line[5:]
    assert windows == [UPC_A + LOREM, UPC_A + LOREM]


def test_the_documented_generic_layout_misreads_the_zebra(tmp_path: Path) -> None:
    # Why the layout must come from the device: the documented layout on the Zebra's reports.
    path = tmp_path / "zebra.capture"
    path.write_text(format_capture(hidpos_captures()[0x05E0]))
    scans, _ = decode("--capture", str(path), "--layout", "generic", cwd=tmp_path)
    assert scans[0]["raw"] == "g30603020922" and scans[0]["symbology"] is None
    assert "symbology bytes 00 5d 58: expected ']' and two characters (AIM) or zeros" in scans[0]["errors"]


async def test_the_replay_driver_plays_a_real_recording(tmp_path: Path) -> None:
    path = tmp_path / "honeywell.capture"
    path.write_text(format_capture(hidpos_captures()[0x0C2E]))
    async with ReplayScanner(id="dock-03-pos", path=path, pace="fast") as scanner:
        reads = scanner.reads()
        got = [await asyncio.wait_for(anext(reads), 5) for _ in range(2)]
    assert [(r.data.decode(), r.symbology, r.errors) for r in got] == [(UPC_A, "]E0", ()), (LOREM, "]Q1", ())]


def wedge_capture(tmp_path: Path, number: int) -> Path:
    events = boot_keyboard_to_events(recording(WEDGE_RECORDING.format(number)))
    path = tmp_path / f"wedge-{number}.capture"
    path.write_text(format_capture(Capture("evdev", tuple((None, e) for e in events), layout="us",
                                           device="SM-2D PRODUCT HID KBW")))
    return path


@pytest.mark.parametrize("number", [1, 2, 3])
def test_each_wedge_recording_is_exactly_its_one_read(tmp_path: Path, number: int) -> None:
    scans, stderr = decode("--capture", str(wedge_capture(tmp_path, number)), cwd=tmp_path)
    assert [s["raw"] for s in scans] == [WEDGE_TEXTS[number]]
    assert scans[0]["symbology"] is None
    # The Down Arrow after Enter typed nothing: counted, never a read.
    assert stderr.endswith("1 read(s); 1 key(s) typed nothing outside a read (ignored)\n")


def test_a_wedge_recording_with_the_down_arrow_in_the_suffix(tmp_path: Path) -> None:
    config = tmp_path / "gatewayd.toml"
    config.write_text(
        '[gateway]\nid = "dock-pi-03"\nstate_dir = "state"\n'
        '[[stations]]\nid = "dock-03"\nstep = "receiving"\n'
        '[[scanners]]\nid = "dock-03-wedge"\nstation = "dock-03"\ndriver = "evdev"\nusb = "0483:0011"\n'
        'suffix = ["enter", "down"]\n'
    )
    scans, stderr = decode("--config", str(config), "--capture", str(wedge_capture(tmp_path, 1)),
                           "--scanner", "dock-03-wedge", cwd=tmp_path)
    assert [(s["raw"], s["scanner"], s["station"]) for s in scans] == [(WEDGE_TEXTS[1], "dock-03-wedge", "dock-03")]
    assert "suffix enter, down: 1 read(s); 0 key(s) typed nothing" in stderr
