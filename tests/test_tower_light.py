"""The serial tower light driver on a real pty: the Adafruit 5125 bytes, and reopening after an unplug."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gatewayd_drivers.backoff import Backoff
from gatewayd_drivers.base import DeviceState
from gatewayd_drivers.indicator import IDLE, Lamp, Signal
from gatewayd_drivers.tower_light import TowerLight, lamp_bytes
from tests.tower_pty import PtyTowerLight


@pytest.mark.parametrize(
    ("lamp", "blink", "expected"),
    [
        (Lamp.RED, False, bytes([0x22, 0x24, 0x11])),
        (Lamp.YELLOW, False, bytes([0x21, 0x24, 0x12])),
        (Lamp.GREEN, False, bytes([0x21, 0x22, 0x14])),
        (Lamp.RED, True, bytes([0x22, 0x24, 0x41])),
        (Lamp.YELLOW, True, bytes([0x21, 0x24, 0x42])),
        (Lamp.GREEN, True, bytes([0x21, 0x22, 0x44])),
        (None, False, bytes([0x21, 0x22, 0x24])),
    ],
)
def test_lamp_bytes_leave_exactly_one_lamp_lit(lamp: Lamp | None, blink: bool, expected: bytes) -> None:
    assert lamp_bytes(lamp, blink) == expected


def test_a_bad_baudrate_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="baudrate must be positive, got 0"):
        TowerLight(id="t", port="/dev/null", baudrate=0)


async def wait_state(states: list[tuple[DeviceState, str]], state: DeviceState, *, after: int = 0) -> None:
    async with asyncio.timeout(10):
        while not any(s == state for s, _ in states[after:]):
            await asyncio.sleep(0.01)


async def test_reject_then_accept_then_idle_bytes_on_the_line(tmp_path: Path) -> None:
    pty = PtyTowerLight(tmp_path)
    states: list[tuple[DeviceState, str]] = []
    light = TowerLight(id="dock-03-light", port=str(pty.path), on_state=lambda d, s, detail: states.append((s, detail)))
    try:
        async with light:
            await wait_state(states, DeviceState.CONNECTED)
            start = len(pty.read())
            await light.show(Signal(Lamp.RED, buzz_s=0.05))
            # red on (others off first), buzzer on, then the buzzer off by itself
            await pty.await_for(bytes([0x22, 0x24, 0x11, 0x18]), since=start)
            await pty.await_for(bytes([0x28]), since=start)
            mark = len(pty.read())
            await light.show(Signal(Lamp.GREEN))
            assert await pty.await_for(bytes([0x21, 0x22, 0x14]), since=mark) == bytes([0x21, 0x22, 0x14])
            mark = len(pty.read())
            await light.show(IDLE)
            await pty.await_for(bytes([0x21, 0x22, 0x24]), since=mark)
            mark = len(pty.read())
        # Leaving the context darkens the light: nothing stays lit that nobody decided.
        await pty.await_for(bytes([0x21, 0x22, 0x24, 0x28]), since=mark)
    finally:
        pty.close()


async def test_unplugged_light_reports_disconnected_and_shows_the_current_signal_after_replug(tmp_path: Path) -> None:
    pty = PtyTowerLight(tmp_path)
    states: list[tuple[DeviceState, str]] = []
    light = TowerLight(
        id="dock-03-light",
        port=str(pty.path),
        on_state=lambda d, s, detail: states.append((s, detail)),
        backoff=Backoff(initial=0.05, maximum=0.1),
    )
    try:
        async with light:
            await wait_state(states, DeviceState.CONNECTED)
            await light.show(Signal(Lamp.YELLOW))
            await pty.await_for(bytes([0x12]))
            n = len(states)
            pty.unplug()
            await wait_state(states, DeviceState.DISCONNECTED, after=n)
            assert "dock-03-light" not in states[-1][1]
            assert str(pty.path) in states[-1][1]
            # The verdict changes while the light is away: it shows the new one on return.
            await light.show(Signal(Lamp.GREEN))
            n = len(states)
            pty.received.clear()
            pty.plug()
            await wait_state(states, DeviceState.CONNECTED, after=n)
            await pty.await_for(bytes([0x21, 0x22, 0x14]))
    finally:
        pty.close()


async def test_an_unexpected_driver_error_is_reported_and_retried() -> None:
    class Flaky(TowerLight):
        opened = 0

        async def _open(self) -> None:
            self.opened += 1
            if self.opened == 1:
                raise RuntimeError("boom")
            raise OSError("still not there")

    states: list[tuple[DeviceState, str]] = []
    light = Flaky(
        id="t",
        port="/nonexistent",
        on_state=lambda d, s, x: states.append((s, x)),
        backoff=Backoff(initial=0.01, maximum=0.02),
    )
    async with light:
        async with asyncio.timeout(5):
            while len(states) < 2:
                await asyncio.sleep(0.01)
    assert states[0] == (DeviceState.ERROR, "internal error: RuntimeError('boom')")
    assert states[1] == (DeviceState.DISCONNECTED, "cannot open (still not there)")


async def test_signals_are_shown_in_order_and_a_cut_short_buzz_is_switched_off(tmp_path: Path) -> None:
    pty = PtyTowerLight(tmp_path)
    states: list[tuple[DeviceState, str]] = []
    light = TowerLight(id="l", port=str(pty.path), on_state=lambda d, s, detail: states.append((s, detail)))
    try:
        async with light:
            await wait_state(states, DeviceState.CONNECTED)
            mark = len(pty.read())
            # Asked at once, as the feedback service does: the last one is what the light shows.
            await asyncio.gather(
                light.show(Signal(Lamp.RED, buzz_s=5)), light.show(Signal(Lamp.YELLOW)), light.show(Signal(Lamp.GREEN))
            )
            written = await pty.await_for(bytes([0x14]), since=mark)
            assert written.endswith(bytes([0x21, 0x22, 0x14])), written.hex()
            assert written.index(0x11) < written.index(0x12) < written.index(0x14)  # in the order asked
            # The reject's buzz, cut short by the green: the buzzer is off again, not left on.
            assert written.index(0x18) < written.index(0x28) < written.index(0x14), written.hex()
    finally:
        pty.close()
