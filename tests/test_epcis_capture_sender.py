"""CaptureSender against a capture endpoint on a real socket, in this process: how it splits
a refused batch, and how it holds everything while the credentials are wrong."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gatewayd.config import EpcisSettings, OutboxSettings
from gatewayd.delivery.epcis_capture import CAPTURE_CURSOR, CaptureSender
from gatewayd.delivery.outbox import Outbox
from gatewayd.epcis.mapping import epcis_document
from tests.capture_server import CaptureServer

CREATED = "2026-11-27T10:20:00.000Z"


def document(n: int) -> bytes:
    event = {
        "type": "ObjectEvent",
        "eventID": f"urn:uuid:01936f9e-7c1d-7d4e-9a61-{n:012x}",
        "eventTime": "2026-11-27T10:15:02.123Z",
        "eventTimeZoneOffset": "+01:00",
        "epcList": [f"https://id.gs1.org/01/09506000134352/21/S{n}"],
        "action": "OBSERVE",
        "bizStep": "receiving",
    }
    return json.dumps(epcis_document([event], created=CREATED)).encode()


@pytest.fixture
def server() -> Iterator[CaptureServer]:
    s = CaptureServer().up()
    yield s
    s.close()


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox.open(tmp_path / "epcis.sqlite3", OutboxSettings(synchronous="normal"))
    for n in (1, 2, 3):
        box.capture(topic="t", build=lambda _s, _e, n=n: document(n))
    yield box
    box.close()


async def until(predicate: object, what: str, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def test_a_refused_batch_is_split_and_only_the_refused_document_is_set_aside(
    server: CaptureServer, outbox: Outbox, tmp_path: Path
) -> None:
    server.script = ["400", "accept", "400", "accept"]  # the batch, then one document at a time
    alarms: list[tuple[str, str | None]] = []
    settings = EpcisSettings(capture_url=server.url, capture_batch=3, capture_retry_max_s=0.2)
    refused = tmp_path / "refused"
    async with CaptureSender(
        outbox=outbox, settings=settings, refused_dir=refused, alarm=lambda a, d: alarms.append((a, d))
    ) as sender:
        await until(lambda: outbox.get_meta(CAPTURE_CURSOR) == "3", "the cursor past all three")
    assert [e["eventID"][-1] for e in server.events()] == ["1", "3"]
    assert [len(json.loads(p.body)["epcisBody"]["eventList"]) for p in server.posts()] == [3, 1, 1, 1]
    assert sorted(p.name for p in refused.iterdir()) == ["2.json"]
    assert json.loads((refused / "2.json").read_bytes()) == json.loads(document(2))
    assert sender.refused == 1 and sender.captured == 2
    assert alarms == [("epcis_capture_refused", alarms[0][1])]
    assert "document seq 2 refused" in str(alarms[0][1]) and "HTTP 400 (scripted 400)" in str(alarms[0][1])


async def test_wrong_credentials_hold_everything_until_the_token_file_is_fixed(
    server: CaptureServer, outbox: Outbox, tmp_path: Path
) -> None:
    server.token = "right"
    token = tmp_path / "token"
    token.write_text("wrong\n")
    alarms: list[tuple[str, str | None]] = []
    settings = EpcisSettings(capture_url=server.url, capture_batch=10, capture_retry_max_s=0.2, token_file=token)
    async with CaptureSender(
        outbox=outbox, settings=settings, refused_dir=tmp_path / "refused", alarm=lambda a, d: alarms.append((a, d))
    ) as sender:
        await until(lambda: len(server.posts()) >= 2, "two refused attempts")
        assert outbox.get_meta(CAPTURE_CURSOR) is None  # nothing set aside, nothing skipped
        assert sender.last_error is not None and "HTTP 401 (bad credentials)" in sender.last_error
        assert alarms and alarms[0][0] == "epcis_capture_failing"
        token.write_text("right\n")  # read again on the next attempt: no restart needed
        await until(lambda: outbox.get_meta(CAPTURE_CURSOR) == "3", "delivery with the fixed token")
        assert sender.last_error is None
    assert alarms[-1] == ("epcis_capture_failing", None)  # cleared once it works again
    assert len(server.events()) == 3
    assert not (tmp_path / "refused").exists()
