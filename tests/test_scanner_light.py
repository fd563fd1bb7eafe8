"""The station's own scanner as its indicator: Zebra SSI host commands on the link its reads come from."""

from __future__ import annotations

import asyncio
import os
import select
from pathlib import Path

import pytest

from gatewayd.demo.local_broker import LocalBroker
from gatewayd_drivers.base import DeviceState
from gatewayd_drivers.indicator import IDLE, Lamp, Signal
from gatewayd_drivers.scanner_light import ScannerLight
from gatewayd_drivers.serial_scanner import SerialScanner
from gatewayd_drivers.zebra_ssi import BEEP, LED_OFF, LED_ON, ssi_packet
from tests.pty_scanner import PtyScanner


@pytest.mark.parametrize(
    ("opcode", "data", "packet"),
    [
        # The guide's own example: BEEP, one short high tone.
        (BEEP, b"\x00", bytes.fromhex("05 E6 04 00 00 FF 11")),
        (BEEP, b"\x18", bytes.fromhex("05 E6 04 00 18 FE F9")),
        (LED_ON, b"\x01", bytes.fromhex("05 E7 04 00 01 FF 0F")),
        (LED_OFF, b"\x03", bytes.fromhex("05 E8 04 00 03 FF 0C")),
    ],
)
def test_ssi_packets_carry_length_source_and_checksum(opcode: int, data: bytes, packet: bytes) -> None:
    assert ssi_packet(opcode, data) == packet
    assert sum(packet[:-2]) + int.from_bytes(packet[-2:], "big") == 0x10000  # two's complement


def read_master(pty: PtyScanner) -> bytes:
    out = b""
    while select.select([pty.master], [], [], 0)[0]:
        out += os.read(pty.master, 4096)
    return out


async def collect(pty: PtyScanner, wanted: bytes, got: bytearray) -> bytes:
    async with asyncio.timeout(5):
        while wanted not in got:
            got += read_master(pty)
            await asyncio.sleep(0.005)
    return bytes(got)


async def test_a_reject_beeps_and_lights_red_on_the_scanner_while_its_reads_go_on(tmp_path: Path) -> None:
    pty = PtyScanner(tmp_path)
    scanner = SerialScanner(id="dock-03-left", port=str(pty.path), char_timeout=None)
    states: list[DeviceState] = []
    light = ScannerLight(
        id="dock-03-beeper", scanner="dock-03-left", link=lambda: scanner, on_state=lambda d, s, x: states.append(s)
    )
    try:
        async with scanner, light:
            async with asyncio.timeout(10):
                while DeviceState.CONNECTED not in states:
                    await asyncio.sleep(0.01)
            got = bytearray()
            await collect(pty, ssi_packet(LED_OFF, b"\x03"), got)  # dark on open
            got.clear()
            await light.show(Signal(Lamp.RED, buzz_s=0.05))
            red = ssi_packet(LED_OFF, b"\x01") + ssi_packet(LED_ON, b"\x02") + ssi_packet(BEEP, b"\x18")
            assert await collect(pty, red, got) == red
            got.clear()
            await light.show(Signal(Lamp.GREEN))
            await collect(pty, ssi_packet(LED_OFF, b"\x02") + ssi_packet(LED_ON, b"\x01"), got)
            got.clear()
            await light.show(IDLE)
            await collect(pty, ssi_packet(LED_OFF, b"\x03"), got)
            # The same link still delivers the scanner's reads (raw decode data, CR suffix).
            pty.write(b"]C1LOT42\r")
            async with asyncio.timeout(5):
                read = await anext(scanner.reads())
            assert read.data == b"]C1LOT42"
    finally:
        pty.close()


async def test_the_beeper_follows_its_scanners_connection(tmp_path: Path) -> None:
    pty = PtyScanner(tmp_path)
    scanner = SerialScanner(id="s", port=str(pty.path), char_timeout=None)
    states: list[tuple[DeviceState, str]] = []
    light = ScannerLight(id="b", scanner="s", link=lambda: scanner, on_state=lambda d, s, x: states.append((s, x)))
    try:
        async with scanner, light:
            async with asyncio.timeout(10):
                while not light.connected:
                    await asyncio.sleep(0.01)
            pty.unplug()
            async with asyncio.timeout(10):
                while not states or states[-1][0] is not DeviceState.DISCONNECTED:
                    await asyncio.sleep(0.01)
            assert "scanner s is not connected" in states[-1][1]
            pty.plug()
            async with asyncio.timeout(15):
                while not light.connected:
                    await asyncio.sleep(0.01)
    finally:
        pty.close()


async def test_a_scanner_without_host_commands_is_reported() -> None:
    states: list[tuple[DeviceState, str]] = []
    light = ScannerLight(id="b", scanner="r", link=object, on_state=lambda d, s, x: states.append((s, x)))
    async with light:
        async with asyncio.timeout(5):
            while not states:
                await asyncio.sleep(0.01)
    assert states[0] == (DeviceState.DISCONNECTED, "cannot open (scanner r takes no host commands)")


async def test_the_daemon_sends_a_wms_reject_to_the_scanner_the_read_came_from(
    tmp_path: Path, broker: LocalBroker
) -> None:
    from gatewayd.config import parse
    from gatewayd.daemon import Gateway
    from tests.mqtt_tools import Subscriber

    pty = PtyScanner(tmp_path)
    settings = parse(
        {
            "gateway": {"id": "gw-ssi", "state_dir": str(tmp_path / "state")},
            "mqtt": {"brokers": [broker.url], "reconnect_min_s": 0.1, "reconnect_max_s": 0.3},
            "stations": [{"id": "dock-03", "step": "receiving", "dedupe_ms": 0}],
            "scanners": [
                {"id": "dock-03-left", "station": "dock-03", "driver": "serial", "port": str(pty.path),
                 "char_timeout_ms": 0},
            ],
            "indicators": [
                {"id": "dock-03-beeper", "station": "dock-03", "driver": "scanner", "scanner": "dock-03-left"}
            ],
        }
    )  # fmt: skip
    gw = Gateway(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))
    try:
        with Subscriber(broker.port, ["gatewayd/gw-ssi/#"]) as sub:
            await sub.await_for("gatewayd/gw-ssi/devices/dock-03-beeper/state", lambda p: p["state"] == "connected")
            pty.write(b"]C1LOT42\r")
            scan = await sub.await_for("gatewayd/gw-ssi/scans/dock-03")
            got = bytearray(read_master(pty))
            await sub.apublish(
                "gatewayd/gw-ssi/request/feedback",
                {"station": "dock-03", "verdict": "reject", "seq": scan["seq"], "message": "lot on hold"},
            )
            await collect(pty, ssi_packet(LED_ON, b"\x02") + ssi_packet(BEEP, b"\x18"), got)
    finally:
        stop.set()
        async with asyncio.timeout(15):
            await task
        pty.close()
