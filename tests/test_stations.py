"""Stations: steps, CBV business steps, step commands, the sliding dedupe window."""

from __future__ import annotations

from pathlib import Path

import pytest

from gatewayd.config import OutboxSettings, parse
from gatewayd.delivery.outbox import Outbox
from gatewayd.payloads import station_payload
from gatewayd.reads.stations import BIZ_STEPS, Stations

SETTINGS = parse({
    "gateway": {"id": "gw"},
    "stations": [
        {"id": "dock-03", "step": "receiving", "dedupe_ms": 1500, "location": "urn:epc:id:sgln:9506000134352.0.3"},
        {"id": "zone-a", "step": "transfer", "dedupe_ms": 0},
    ],
})  # fmt: skip


@pytest.mark.parametrize(("step", "biz_step"), [
    ("receiving", "urn:epcglobal:cbv:bizstep:receiving"),
    ("transfer", "urn:epcglobal:cbv:bizstep:storing"),
    ("picking", "urn:epcglobal:cbv:bizstep:picking"),
    ("dispatch", "urn:epcglobal:cbv:bizstep:shipping"),
])  # fmt: skip
def test_cbv_mapping(step: str, biz_step: str) -> None:
    assert BIZ_STEPS[step] == biz_step


@pytest.mark.parametrize(("data", "step", "error"), [
    (b"STEP:dispatch", "dispatch", None),
    (b"  STEP:Picking\r", "picking", None),
    (b"STEP:flying", None, "expected one of receiving, transfer, picking, dispatch"),
    (b"SUP1-20261127-0001", None, None),
    (b"]C0STEP:dispatch", "dispatch", None),  # with the scanner's AIM identifier
    (b"]Q1STEP:receiving", "receiving", None),
    (b"]C1010950600013435210STEP", None, None),
])  # fmt: skip
def test_step_commands(data: bytes, step: str | None, error: str | None) -> None:
    command = Stations(SETTINGS).step_command(data)
    if step is None and error is None:
        assert command is None
    else:
        assert command is not None and command.step == step
        assert (command.error is None) if error is None else (error in (command.error or ""))


def test_dedupe_window_slides_and_is_per_station() -> None:
    stations = Stations(SETTINGS)
    assert not stations.is_repeat("dock-03", b"A", 10.0)
    assert stations.is_repeat("dock-03", b"A", 11.0)  # within 1.5 s
    assert stations.is_repeat("dock-03", b"A", 12.4)  # still: the window slides with each read
    assert not stations.is_repeat("dock-03", b"A", 14.0)  # 1.6 s after the last read
    assert not stations.is_repeat("dock-03", b"B", 14.1)  # another payload
    assert not stations.is_repeat("zone-a", b"A", 14.2)  # dedupe_ms = 0: off
    assert not stations.is_repeat("zone-a", b"A", 14.3)
    assert stations.suppressed == {"dock-03": 2, "zone-a": 0}


def test_step_survives_a_restart(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "o.sqlite3", OutboxSettings()) as box:
        stations = Stations(SETTINGS, load=box.get_meta, save=box.set_meta)
        stations.set_step("dock-03", "dispatch", at=1_800_000_000.0)
    with Outbox.open(tmp_path / "o.sqlite3", OutboxSettings()) as box:
        again = Stations(SETTINGS, load=box.get_meta, save=box.set_meta)
        state = again["dock-03"]
        assert (state.step, state.since) == ("dispatch", 1_800_000_000.0)
        assert again["zone-a"].step == "transfer"
        assert station_payload(state.id, state.step, state.biz_step, state.since) == {
            "schema": "gatewayd.station/1",
            "station": "dock-03",
            "step": "dispatch",
            "biz_step": "urn:epcglobal:cbv:bizstep:shipping",
            "since": "2027-01-15T08:00:00.000Z",
        }
