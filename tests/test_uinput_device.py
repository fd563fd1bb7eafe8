"""A real kernel input device: a uinput keyboard types a GS1 read into EvdevScanner.

Runs where /dev/uinput is writable and python-evdev is installed (a Pi or PC with the
uinput module loaded, as root or with a udev rule for /dev/uinput); skips elsewhere and
says why. The events travel the whole real path: uinput -> kernel -> /dev/input/eventN ->
EVIOCGRAB -> python-evdev -> KeyTranslator -> RawRead.
"""

from __future__ import annotations

import asyncio
import importlib
import os
from typing import Any

import pytest

from gatewayd_drivers import keymaps as k
from gatewayd_drivers.base import DeviceState
from gatewayd_drivers.evdev_scanner import EvdevScanner
from gatewayd_drivers.keymaps import wedge_events

pytestmark = pytest.mark.hardware

UINPUT = "/dev/uinput"
GS1_READ = "]C1010950600013435210ABC123\x1d17271231"


def _evdev() -> Any:
    if not os.path.exists(UINPUT):
        pytest.skip(f"no {UINPUT} on this machine: load the uinput kernel module "
                    "(modprobe uinput) on a host that has it")
    if not os.access(UINPUT, os.W_OK):
        pytest.skip(f"{UINPUT} is not writable by uid {os.getuid()}: run as root or grant "
                    "access with a udev rule")
    try:
        return importlib.import_module("evdev")
    except ImportError:
        pytest.skip("python-evdev is not installed: pip install 'gatewayd[evdev]'")


@pytest.mark.parametrize("layout", ["us", "de"])
async def test_virtual_keyboard_types_gs1_read_with_alt_keypad_gs(layout: str) -> None:
    evdev = _evdev()
    events = wedge_events(GS1_READ, layout=layout)
    keys = sorted({code for type_, code, _ in events if type_ == k.EV_KEY})
    ui = evdev.UInput({evdev.ecodes.EV_KEY: keys}, name=f"gatewayd test wedge {layout}")
    try:
        states: list[tuple[DeviceState, str]] = []
        connected = asyncio.Event()

        def on_state(device: str, state: DeviceState, detail: str) -> None:
            states.append((state, detail))
            if state is DeviceState.CONNECTED:
                connected.set()

        scanner = EvdevScanner(id="uinput", path=ui.device.path, layout=layout,
                               on_state=on_state)
        async with scanner:
            await asyncio.wait_for(connected.wait(), 5)
            for type_, code, value in events:
                if type_ == k.EV_SYN:
                    ui.syn()
                else:
                    ui.write(type_, code, value)
            reads = scanner.reads()
            read = await asyncio.wait_for(anext(reads), 5)
        assert read.data == GS1_READ.encode()
        assert read.errors == ()
        assert states[0] == (DeviceState.CONNECTED, ui.device.path)
    finally:
        ui.close()


async def test_virtual_keyboard_through_the_daemon_to_mqtt(broker: Any, tmp_path: Any) -> None:
    """The whole path: uinput keyboard → EvdevScanner → gateway → broker → subscriber."""
    evdev = _evdev()
    from gatewayd.config import parse
    from gatewayd.daemon import Gateway
    from tests.mqtt_tools import Subscriber

    events = wedge_events(GS1_READ, layout="us")
    keys = sorted({code for type_, code, _ in events if type_ == k.EV_KEY})
    ui = evdev.UInput({evdev.ecodes.EV_KEY: keys}, name="gatewayd test wedge daemon")
    settings = parse({
        "gateway": {"id": "uinput-gw", "state_dir": str(tmp_path / "state")},
        "mqtt": {"brokers": [broker.url], "protocol": broker.protocol},
        "stations": [{"id": "dock-03", "step": "receiving"}],
        "scanners": [{"id": "wedge", "station": "dock-03", "driver": "evdev", "path": ui.device.path}],
    })
    gw = Gateway(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))
    try:
        with Subscriber(broker.port, ["gatewayd/uinput-gw/#"], protocol=broker.protocol) as sub:
            await sub.await_for("gatewayd/uinput-gw/devices/wedge/state", lambda p: p["state"] == "connected")
            for type_, code, value in events:
                if type_ == k.EV_SYN:
                    ui.syn()
                else:
                    ui.write(type_, code, value)
            scan = await sub.await_for("gatewayd/uinput-gw/scans/dock-03")
        assert scan["raw"] == GS1_READ and scan["kind"] == "gs1" and scan["lot"] == "ABC123"
    finally:
        stop.set()
        await task
        ui.close()
