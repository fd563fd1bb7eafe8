"""The dock operator's loop in-process: a read, a WMS verdict over MQTT, the tower light's
bytes on a real pty, the station page's state over HTTP, /metrics and /healthz."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gatewayd.config import parse
from gatewayd.daemon import Gateway
from gatewayd.demo.local_broker import LocalBroker
from tests.mqtt_tools import Subscriber
from tests.test_gateway import QueueScanner
from tests.tower_pty import PtyTowerLight

ROOT = "gatewayd/gw-fb"
LOT = b"]C1010950600013435210LOT-A\x1d17270331"
LOT_B = b"]C1010950600013435210LOT-B\x1d17270331"


def settings_for(broker: LocalBroker, tmp_path: Path, tower: PtyTowerLight, *, accept_ms: int = 60_000) -> Any:
    return parse(
        {
            "gateway": {"id": "gw-fb", "state_dir": str(tmp_path / "state")},
            "mqtt": {"brokers": [broker.url], "reconnect_min_s": 0.1, "reconnect_max_s": 0.3},
            "stations": [
                {"id": "dock-03", "step": "receiving", "dedupe_ms": 0},
                {"id": "dock-04", "step": "dispatch", "dedupe_ms": 0},
            ],
            "scanners": [
                {"id": "dock-03-left", "station": "dock-03", "driver": "tcp", "mode": "server", "port": 1},
            ],
            "indicators": [
                {"id": "dock-03-light", "station": "dock-03", "driver": "tower-serial", "port": str(tower.path)}
            ],
            "feedback": {"accept_ms": accept_ms, "buzz_ms": 50},
            "http": {"listen": "127.0.0.1:0"},
        }
    )


class Running:
    def __init__(self, gw: Gateway, scanner: QueueScanner, sub: Subscriber, tower: PtyTowerLight) -> None:
        self.gw, self.scanner, self.sub, self.tower = gw, scanner, sub, tower

    def get(self, path: str) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.gw.http_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    async def aget(self, path: str) -> tuple[int, str]:
        return await asyncio.to_thread(self.get, path)

    async def state(self, station: str = "dock-03") -> dict[str, Any]:
        status, body = await self.aget(f"/stations/{station}/state.json")
        assert status == 200, body
        return dict(json.loads(body))

    async def scan(self, data: bytes) -> dict[str, Any]:
        n = len(self.sub.on(f"{ROOT}/scans/"))
        await self.scanner.queue.put(data)
        await self.sub.await_for(f"{ROOT}/scans/", lambda p: len(self.sub.on(f"{ROOT}/scans/")) > n)
        return dict(self.sub.payloads(f"{ROOT}/scans/")[-1])

    async def request(self, body: dict[str, Any]) -> dict[str, Any]:
        tx = f"tx-{id(body)}-{len(self.sub.on(f'{ROOT}/response/'))}"
        await self.sub.apublish(f"{ROOT}/request/feedback", {**body, "transaction": tx})
        return dict(await self.sub.await_for(f"{ROOT}/response/feedback", lambda p: p.get("transaction") == tx))

    async def wait_verdict(self, verdict: str, station: str = "dock-03") -> dict[str, Any]:
        async with asyncio.timeout(10):
            while (st := await self.state(station))["verdict"]["verdict"] != verdict:
                await asyncio.sleep(0.02)
        return st


@pytest.fixture
async def running(broker: LocalBroker, tmp_path: Path) -> AsyncIterator[Running]:
    tower = PtyTowerLight(tmp_path)
    scanner = QueueScanner("dock-03-left")
    gw = Gateway(settings_for(broker, tmp_path, tower), scanners={"dock-03-left": scanner})
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))
    with Subscriber(broker.port, [f"{ROOT}/#"]) as sub:
        await sub.await_for(f"{ROOT}/status", lambda p: p["state"] == "online")
        await sub.await_for(f"{ROOT}/devices/dock-03-light/state", lambda p: p["state"] == "connected")
        yield Running(gw, scanner, sub, tower)
        stop.set()
        async with asyncio.timeout(15):
            await task
    tower.close()


async def test_a_scan_then_a_wms_reject_puts_red_and_the_buzzer_on_the_light_and_the_message_on_the_page(
    running: Running,
) -> None:
    scan = await running.scan(LOT)
    st = await running.wait_verdict("sent")  # the gateway's own answer at once: captured and sent
    assert st["reads"][0]["lot"] == "LOT-A" and st["reads"][0]["gtin"] == "09506000134352"
    assert st["reads"][0]["expiry"] == "2027-03-31"
    mark = len(running.tower.read())
    answer = await running.request(
        {"station": "dock-03", "verdict": "reject", "message": "lot on hold", "event_id": scan["event_id"]}
    )
    assert answer["status"] == "ok", answer
    assert answer["data"]["shown"] == "current" and answer["data"]["seq"] == scan["seq"]
    assert answer["data"]["indicators"] == ["dock-03-light"]
    await running.tower.await_for(bytes([0x22, 0x24, 0x11, 0x18]), since=mark)  # red on, buzzer on
    await running.tower.await_for(bytes([0x28]), since=mark)  # and the buzzer stops by itself
    st = await running.wait_verdict("reject")
    assert st["verdict"]["message"] == "lot on hold" and st["verdict"]["lot"] == "LOT-A"
    assert st["reads"][0]["verdict"] == "reject"

    mark = len(running.tower.read())
    answer = await running.request({"station": "dock-03", "verdict": "accept", "seq": scan["seq"]})
    assert answer["status"] == "ok", answer
    await running.tower.await_for(bytes([0x21, 0x22, 0x14]), since=mark)  # green
    await running.wait_verdict("accept")


async def test_a_verdict_for_an_earlier_read_is_never_shown_as_the_answer_to_the_newer_one(running: Running) -> None:
    first = await running.scan(LOT)
    second = await running.scan(LOT_B)
    await running.wait_verdict("sent")
    mark = len(running.tower.read())
    answer = await running.request(
        {"station": "dock-03", "verdict": "reject", "message": "wrong lot", "seq": first["seq"]}
    )
    assert answer["data"]["shown"] == "earlier", answer
    # Red blinks (0x41), never the steady red of an answer to the pallet now in front of the scanner.
    written = await running.tower.await_for(bytes([0x41]), since=mark)
    assert 0x11 not in written
    st = await running.wait_verdict("reject")
    assert st["verdict"]["earlier"] is True and st["verdict"]["lot"] == "LOT-A"
    rows = {r["seq"]: r for r in st["reads"]}
    assert rows[first["seq"]]["verdict"] == "reject"
    assert rows[second["seq"]]["verdict"] == "sent"
    # A late accept for the earlier read changes no lamp and no current verdict.
    mark = len(running.tower.read())
    answer = await running.request({"station": "dock-03", "verdict": "accept", "event_id": first["event_id"]})
    assert answer["data"]["shown"] == "earlier"
    st = await running.state()
    assert st["verdict"]["verdict"] == "reject"
    assert {r["seq"]: r["verdict"] for r in st["reads"]}[first["seq"]] == "accept"
    assert 0x14 not in running.tower.read()[mark:]


async def test_an_unreadable_read_is_warned_at_once(running: Running) -> None:
    mark = len(running.tower.read())
    await running.scan(b"\x01\x02garbage")
    st = await running.wait_verdict("warn")
    assert st["verdict"]["message"] == "unreadable: scan again"
    assert st["verdict"]["source"] == "gateway"
    await running.tower.await_for(bytes([0x21, 0x24, 0x12]), since=mark)  # yellow


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"station": "dock-99", "verdict": "accept"}, "station must be one of dock-03, dock-04, got 'dock-99'"),
        ({"station": "dock-03", "verdict": "maybe"}, "verdict must be one of accept, reject, warn, got 'maybe'"),
        ({"station": "dock-03", "verdict": "accept", "seq": "7"}, "seq must be the seq of a scan"),
        ({"station": "dock-03", "verdict": "accept", "ttl_ms": -1}, "ttl_ms must be an integer from 1 to"),
        ({"station": "dock-03", "verdict": "accept", "colour": "red"}, "unknown field(s) 'colour'"),
        ({"station": "dock-03", "verdict": "accept", "message": 5}, "message must be a string, got 5"),
    ],
)
async def test_bad_requests_get_an_error_naming_the_field(
    running: Running, body: dict[str, Any], error: str
) -> None:
    answer = await running.request(body)
    assert answer["status"] == "error", answer
    assert error in answer["error"]


async def test_accept_returns_to_idle_after_its_ttl(running: Running) -> None:
    await running.scan(LOT)
    mark = len(running.tower.read())
    answer = await running.request({"station": "dock-03", "verdict": "accept", "ttl_ms": 200})
    assert answer["status"] == "ok"
    await running.tower.await_for(bytes([0x14]), since=mark)
    await running.wait_verdict("idle")
    await running.tower.await_for(bytes([0x21, 0x22, 0x24]), since=mark)


async def test_metrics_count_the_read_by_station_and_healthz_answers(running: Running, broker: LocalBroker) -> None:
    await running.scan(LOT)
    await running.request({"station": "dock-03", "verdict": "reject"})
    status, text = await running.aget("/metrics")
    assert status == 200
    assert 'gatewayd_reads_total{scanner="dock-03-left",station="dock-03"} 1.0' in text
    assert 'gatewayd_captured_total{station="dock-03"} 1.0' in text
    assert 'gatewayd_feedback_verdicts_total{station="dock-03",verdict="reject"} 1.0' in text
    assert "gatewayd_broker_connected 1.0" in text
    assert "gatewayd_delivery_latency_seconds_count 1.0" in text
    assert 'gatewayd_device_connected{device="dock-03-light",kind="indicator"} 1.0' in text
    status, body = await running.aget("/healthz")
    assert status == 200 and json.loads(body) == {"status": "ok", "gateway": "gw-fb", "reasons": []}
    broker.stop()
    async with asyncio.timeout(15):
        while (await running.aget("/healthz"))[0] != 503:
            await asyncio.sleep(0.05)
    status, body = await running.aget("/healthz")
    health = json.loads(body)
    assert health["status"] == "unhealthy"
    assert any(r.startswith("broker not connected") for r in health["reasons"]), health


async def test_the_server_serves_nothing_but_its_own_pages(running: Running) -> None:
    for path in ("/stations/../../etc/passwd", "/stations/dock-99", "/static/station.html", "/etc/passwd",
                 "/stations/dock-03/../../../gatewayd.toml"):
        status, _ = await running.aget(path)
        assert status == 404, path
    status, body = await running.aget("/")
    assert status == 200 and '/stations/dock-03"' in body and '/stations/dock-04"' in body
    status, body = await running.aget("/stations/dock-03")
    assert status == 200 and "<!doctype html>" in body
    assert "http://" not in body.replace("http://www.w3.org/2000/svg", "")  # nothing from the internet
    assert "https://" not in body


async def test_the_grafana_dashboard_uses_only_metrics_the_gateway_exports(running: Running) -> None:
    import re

    await running.scan(LOT)
    _, text = await running.aget("/metrics")
    exported = set(re.findall(r"(?m)^(gatewayd_[a-z_]+)", text))
    # Families without samples here (no printer in this config) are still declared.
    for name, kind in re.findall(r"(?m)^# TYPE (gatewayd_[a-z_]+) (\w+)", text):
        exported |= {name, f"{name}_total"} if kind == "counter" else {name}
    dashboard = json.loads((Path(__file__).resolve().parent.parent / "config" / "grafana-dashboard.json").read_text())
    used = {m for p in dashboard["panels"] for t in p["targets"] for m in re.findall(r"gatewayd_[a-z_]+", t["expr"])}
    assert used and used <= exported, used - exported


class EventStream:
    """A station page's server-sent events, read raw over a socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, station: str = "dock-03") -> EventStream:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET /stations/{station}/events HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert b" 200 " in head.split(b"\r\n")[0] and b"text/event-stream" in head, head
        return cls(reader, writer)

    async def next(self, kind: str) -> tuple[int | None, dict[str, Any]]:
        """The next event of ``kind`` (others are skipped): its id and data."""
        async with asyncio.timeout(10):
            while True:
                block = await self._block()
                fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
                if fields.get("event") == kind:
                    return (int(fields["id"]) if "id" in fields else None), json.loads(fields["data"])

    async def _block(self) -> str:
        # Chunked transfer: read until a blank line ends one event, dropping chunk sizes.
        text = ""
        while "\n\n" not in text:
            line = (await self.reader.readline()).decode()
            if not line:
                raise EOFError("stream closed")
            if line.strip() and all(c in "0123456789abcdef" for c in line.strip()):
                continue
            text += line.replace("\r\n", "")
        return text

    def close(self) -> None:
        self.writer.close()


async def test_the_event_stream_starts_with_a_snapshot_then_sends_each_change_in_order(running: Running) -> None:
    stream = await EventStream.open(running.gw.http_port or 0)
    try:
        rev, snap = await stream.next("snapshot")
        assert snap["station"] == "dock-03" and snap["verdict"]["verdict"] == "idle"
        kinds = {d["id"]: d["kind"] for d in snap["devices"]}
        assert kinds == {"dock-03-left": "scanner", "dock-03-light": "indicator"}
        await running.scan(LOT)
        read_rev, read = await stream.next("read")
        assert read["lot"] == "LOT-A" and read["verdict"] == "sent"
        await running.request({"station": "dock-03", "verdict": "warn", "message": "count the cartons"})
        verdict_rev, verdict = await stream.next("verdict")
        while verdict["verdict"] != "warn":
            verdict_rev, verdict = await stream.next("verdict")
        assert verdict["message"] == "count the cartons"
        assert rev is not None and read_rev is not None and verdict_rev is not None
        assert rev < read_rev < verdict_rev
        await running.sub.apublish(f"{ROOT}/request/station/step", {"station": "dock-03", "step": "dispatch"})
        _, step = await stream.next("step")
        assert step["step"] == "dispatch"
    finally:
        stream.close()


async def test_the_event_stream_of_an_unknown_station_is_404_and_head_holds_nothing_open(running: Running) -> None:
    assert (await running.aget("/stations/nope/events"))[0] == 404
    assert (await running.aget("/stations/nope/state.json"))[0] == 404

    def head() -> tuple[int, str]:
        url = f"http://127.0.0.1:{running.gw.http_port}/stations/dock-03/events"
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=5) as r:
            return int(r.status), r.headers["Content-Type"]

    status, kind = await asyncio.to_thread(head)
    assert status == 200 and kind.startswith("text/event-stream")
    assert running.gw.feedback is not None
    assert running.gw.feedback.boards["dock-03"]._subscribers == set()
