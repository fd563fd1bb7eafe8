"""gatewayd.reads.scan_event: one read → one scan payload (or a step command), as a table."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from gatewayd.config import parse
from gatewayd.reads.scan_event import ScanEvent, StepCommandRead, scan_event
from gatewayd.reads.stations import Stations
from gatewayd_drivers.base import RawRead

SETTINGS = parse({
    "gateway": {"id": "gw-test", "site": "ams1"},
    "decode": {"lot_pattern": r"^[A-Z0-9]{2,8}-\d{8}-\d{4}$", "max_read_bytes": 40},
    "stations": [{"id": "dock-03", "step": "receiving", "location": "urn:epc:id:sgln:9506000134352.0.3"}],
})  # fmt: skip
STATIONS = Stations(SETTINGS)
AT = 1_795_774_502.123  # 2026-11-27T10:15:02.123Z


def event(data: bytes, *, errors: tuple[str, ...] = (), settings: Any = SETTINGS) -> ScanEvent | StepCommandRead:
    return scan_event(
        RawRead(data, device="dock-03-left", at=AT, errors=errors),
        settings=settings,
        station=STATIONS["dock-03"],
        scanner="dock-03-left",
        clock_synced=True,
        step_command=STATIONS.step_command,
    )


def test_body_is_the_scan_event_of_the_readme() -> None:
    result = event(b"]C1010950600013435210ABC123\x1d17271231")
    assert isinstance(result, ScanEvent)
    body = result.body(1042, "01936f9e-7c1d-7d4e-9a61-3f0c2b8e4a10")
    assert list(body.items()) == [
        ("schema", "gatewayd.scan/1"),
        ("event_id", "01936f9e-7c1d-7d4e-9a61-3f0c2b8e4a10"),
        ("seq", 1042),
        ("gateway", "gw-test"),
        ("site", "ams1"),
        ("station", "dock-03"),
        ("step", "receiving"),
        ("biz_step", "urn:epcglobal:cbv:bizstep:receiving"),
        ("read_point", "urn:epc:id:sgln:9506000134352.0.3"),
        ("scanner", "dock-03-left"),
        ("scanned_at", "2026-11-27T10:15:02.123Z"),
        ("clock_synced", True),
        ("symbology", "]C1"),
        ("raw", "]C1010950600013435210ABC123\x1d17271231"),
        ("kind", "gs1"),
        ("gtin", "09506000134352"),
        ("lot", "ABC123"),
        ("expiry", "2027-12-31"),
        ("serial", None),
        ("sscc", None),
        ("count", None),
        ("ai", {"01": "09506000134352", "10": "ABC123", "17": "271231"}),
        ("errors", []),
    ]
    assert result.dedupe_key == b"]C1010950600013435210ABC123\x1d17271231"


def test_site_and_read_point_only_when_configured() -> None:
    bare = dataclasses.replace(SETTINGS, gateway=dataclasses.replace(SETTINGS.gateway, site=None))
    result = scan_event(
        RawRead(b"SUP1-20261127-0001", device="x", at=AT),
        settings=bare,
        station=dataclasses.replace(STATIONS["dock-03"], location=None),
        scanner="x",
        clock_synced=False,
        step_command=STATIONS.step_command,
    )
    assert isinstance(result, ScanEvent)
    body = result.body(None, None)
    assert "site" not in body and "read_point" not in body
    assert (body["kind"], body["lot"], body["seq"], body["event_id"]) == ("lot", "SUP1-20261127-0001", None, None)


@pytest.mark.parametrize(
    ("data", "step"),
    [(b"STEP:dispatch", "dispatch"), (b"]C0STEP:transfer\r\n", "transfer"), (b"  step:PICKING ", None)],
)
def test_step_commands_are_no_scans(data: bytes, step: Any) -> None:
    result = event(data)
    if step is None:  # the prefix is case-sensitive: just a read
        assert isinstance(result, ScanEvent)
    else:
        assert result == StepCommandRead("dock-03", step)


@pytest.mark.parametrize(
    ("data", "driver_errors", "errors", "raw", "dedupe_key"),
    [
        pytest.param(
            b"STEP:flying", (),
            ["step command b'STEP:flying': expected one of receiving, transfer, picking, dispatch after 'STEP:'"],
            "STEP:flying", None, id="unknown step: published with the error, never deduplicated",
        ),
        pytest.param(
            b"SUP1-20261127-0001", ("read truncated at 4096 bytes",), ["read truncated at 4096 bytes"],
            "SUP1-20261127-0001", None, id="driver errors first, never deduplicated",
        ),
        pytest.param(
            b"SUP1-20261127-0001" + b"X" * 30, (), ["read of 48 bytes cut to the first 40"],
            "SUP1-20261127-0001" + "X" * 22, b"SUP1-20261127-0001" + b"X" * 30,
            id="cut to max_read_bytes; deduplicated on the whole read",
        ),
    ],
)  # fmt: skip
def test_errors_before_decoding(
    data: bytes, driver_errors: tuple[str, ...], errors: list[str], raw: str, dedupe_key: bytes | None
) -> None:
    result = event(data, errors=driver_errors)
    assert isinstance(result, ScanEvent)
    assert list(result.scan.errors[: len(errors)]) == errors
    assert result.scan.raw == raw
    assert result.dedupe_key == dedupe_key



def test_a_repeat_is_found_on_the_raw_bytes_before_any_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    import gatewayd.reads.scan_event as module

    decoded: list[bytes] = []
    real = module.decode

    def counting(data: bytes, **kwargs: Any) -> Any:
        decoded.append(data)
        return real(data, **kwargs)

    monkeypatch.setattr(module, "decode", counting)
    asked: list[bytes] = []

    def is_repeat(key: bytes) -> bool:
        asked.append(key)
        return len(asked) > 1

    def read(data: bytes, errors: tuple[str, ...] = ()) -> ScanEvent | StepCommandRead | None:
        return scan_event(
            RawRead(data, device="dock-03-left", at=AT, errors=errors),
            settings=SETTINGS,
            station=STATIONS["dock-03"],
            scanner="dock-03-left",
            clock_synced=True,
            step_command=STATIONS.step_command,
            is_repeat=is_repeat,
        )

    data = b"]C1010950600013435210ABC123\x1d17271231"
    first = read(data)
    assert isinstance(first, ScanEvent) and first.dedupe_key == data
    assert read(data) is None
    assert (asked, decoded) == ([data, data], [data])  # the repeat was never decoded
    # A read with a driver error is never suppressed, so never even asked about.
    faulty = read(data, errors=("framing: parity error",))
    assert isinstance(faulty, ScanEvent) and len(asked) == 2
