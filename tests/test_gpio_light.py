"""The GPIO stack light on gpiozero's mock pins (this machine has no GPIO chip)."""

from __future__ import annotations

import asyncio

import pytest

from gatewayd_drivers.base import DeviceState
from gatewayd_drivers.gpio_light import GpioLight
from gatewayd_drivers.indicator import IDLE, Lamp, Signal

mock = pytest.importorskip("gpiozero.pins.mock", reason="gpiozero is in the test extra")

PINS = {"red": 17, "yellow": 27, "green": 22, "buzzer": 23}


@pytest.fixture
def factory() -> object:
    f = mock.MockFactory()
    yield f
    f.reset()


def levels(factory: object, *, active_high: bool = True) -> dict[str, bool]:
    return {name: factory.pin(pin).state == (1 if active_high else 0) for name, pin in PINS.items()}  # type: ignore[attr-defined]


async def until(predicate: object, what: str) -> None:
    async with asyncio.timeout(5):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.01)


async def test_verdict_signals_drive_exactly_one_lamp_and_the_buzzer(factory: object) -> None:
    states: list[DeviceState] = []
    light = GpioLight(
        id="dock-04-stack", pins=PINS, pin_factory=factory, on_state=lambda d, s, detail: states.append(s)
    )
    async with light:
        await until(lambda: DeviceState.CONNECTED in states, "connected")
        await light.show(Signal(Lamp.RED, buzz_s=0.05))
        assert levels(factory) == {"red": True, "yellow": False, "green": False, "buzzer": True}
        await until(lambda: not levels(factory)["buzzer"], "the buzzer off by itself")
        await light.show(Signal(Lamp.GREEN))
        assert levels(factory) == {"red": False, "yellow": False, "green": True, "buzzer": False}
        await light.show(IDLE)
        assert not any(levels(factory).values())
        await light.show(Signal(Lamp.YELLOW))
    # Closed: every line released and dark.
    assert not any(levels(factory).values())


async def test_active_low_relay_boards_invert_the_level(factory: object) -> None:
    light = GpioLight(id="relays", pins={"red": 5}, active_high=False, pin_factory=factory)
    async with light:
        await until(lambda: light.connected, "open")
        await light.show(Signal(Lamp.RED))
        assert factory.pin(5).state == 0  # type: ignore[attr-defined]
        await light.show(IDLE)
        assert factory.pin(5).state == 1  # type: ignore[attr-defined]


async def test_a_line_that_cannot_be_claimed_is_reported_and_retried(factory: object) -> None:
    from gpiozero import DigitalOutputDevice

    busy = DigitalOutputDevice(17, pin_factory=factory)  # another program holds the red line
    details: list[tuple[DeviceState, str]] = []
    light = GpioLight(
        id="dock-04-stack",
        pins={"red": 17},
        pin_factory=factory,
        on_state=lambda d, s, detail: details.append((s, detail)),
    )
    async with light:
        await until(lambda: details, "a state")
        assert details[0][0] is DeviceState.DISCONNECTED
        assert "cannot claim GPIO lines {'red': 17}" in details[0][1]
        busy.close()
        await until(lambda: light.connected, "open once the line is free")


def test_unknown_outputs_are_refused_naming_them() -> None:
    with pytest.raises(ValueError, match="unknown output\\(s\\) blue"):
        GpioLight(id="x", pins={"blue": 4})
