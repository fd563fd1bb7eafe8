"""The gateway in-process against a real broker: payloads, seq, requests, status."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from gatewayd.config import parse
from gatewayd.daemon import Gateway
from gatewayd.demo.local_broker import LocalBroker
from gatewayd_drivers.base import RawRead
from tests.mqtt_tools import Subscriber


class QueueScanner:
    """A scanner fed by the test through an asyncio queue."""

    def __init__(self, id: str) -> None:
        self.id = id
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    async def __aenter__(self) -> QueueScanner:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def reads(self) -> Any:
        while True:
            data = await self.queue.get()
            yield RawRead(data=data, device=self.id)

    async def deliver(self, handle: Any) -> None:
        async for read in self.reads():
            handle(read)


def settings_for(broker: LocalBroker, tmp_path: Path, **outbox: Any) -> Any:
    return parse(
        {
            "gateway": {"id": "gw-test", "site": "ams1", "state_dir": str(tmp_path / "state")},
            "mqtt": {
                "brokers": [broker.url],
                "protocol": broker.protocol,
                "reconnect_min_s": 0.1,
                "reconnect_max_s": 0.5,
            },
            "outbox": outbox,
            "decode": {"lot_pattern": r"^[A-Z0-9]{2,8}-\d{8}-\d{4}$"},
            "stations": [
                {
                    "id": "dock-03",
                    "step": "receiving",
                    "location": "urn:epc:id:sgln:9506000134352.0.3",
                    "dedupe_ms": 1500,
                },
                {"id": "zone-a", "step": "transfer", "dedupe_ms": 0},
            ],
            "scanners": [
                {
                    "id": "dock-03-left",
                    "station": "dock-03",
                    "driver": "tcp",
                    "mode": "server",
                    "host": "127.0.0.1",
                    "port": 1,
                },
                {
                    "id": "zone-a-1",
                    "station": "zone-a",
                    "driver": "tcp",
                    "mode": "server",
                    "host": "127.0.0.1",
                    "port": 1,
                },
            ],
        }
    )


async def wait_for(predicate: Any, timeout: float = 10.0, what: str = "condition") -> Any:
    async def loop() -> Any:
        while True:
            value = predicate()
            if value:
                return value
            await asyncio.sleep(0.01)

    try:
        return await asyncio.wait_for(loop(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


@pytest.fixture
def running(broker: LocalBroker, tmp_path: Path) -> Any:
    async def start(**outbox: Any) -> tuple[Gateway, dict[str, QueueScanner], asyncio.Event, asyncio.Task[None]]:
        scanners = {"dock-03-left": QueueScanner("dock-03-left"), "zone-a-1": QueueScanner("zone-a-1")}
        gw = Gateway(settings_for(broker, tmp_path, **outbox), scanners=scanners)
        stop = asyncio.Event()
        task = asyncio.create_task(gw.run(stop))
        await wait_for(lambda: gw.link is not None and gw.link.subscribed, what="gateway connected and subscribed")
        return gw, scanners, stop, task

    return start


async def test_scan_payload_matches_design(running: Any, broker: LocalBroker) -> None:
    with Subscriber(broker.port, ["gatewayd/gw-test/#"], protocol=broker.protocol) as sub:
        _gw, scanners, stop, task = await running()
        await scanners["dock-03-left"].queue.put(b"]C1010950600013435210ABC123\x1d17271200")
        msg = await wait_for(lambda: sub.payloads("gatewayd/gw-test/scans/dock-03"), what="scan")
        scan = msg[0]
        assert scan["schema"] == "gatewayd.scan/1"
        assert scan["seq"] == 1
        assert scan["gateway"] == "gw-test"
        assert scan["station"] == "dock-03"
        assert scan["step"] == "receiving"
        assert scan["biz_step"] == "urn:epcglobal:cbv:bizstep:receiving"
        assert scan["read_point"] == "urn:epc:id:sgln:9506000134352.0.3"
        assert scan["scanner"] == "dock-03-left"
        assert scan["symbology"] == "]C1"
        assert scan["raw"] == "]C1010950600013435210ABC123\x1d17271200"
        assert scan["kind"] == "gs1"
        assert (scan["gtin"], scan["lot"], scan["expiry"]) == ("09506000134352", "ABC123", "2027-12-31")
        assert scan["ai"] == {"01": "09506000134352", "10": "ABC123", "17": "271200"}
        assert scan["errors"] == []
        assert scan["scanned_at"].endswith("Z") and len(scan["scanned_at"]) == 24
        assert isinstance(scan["clock_synced"], bool)
        assert len(scan["event_id"]) == 36 and scan["event_id"][14] == "7"
        stop.set()
        await task
        status = list(sub.on("gatewayd/gw-test/status"))
        assert status[-1].json()["state"] == "offline"


async def test_dedupe_step_commands_and_garbled(running: Any, broker: LocalBroker) -> None:
    with Subscriber(broker.port, ["gatewayd/gw-test/#"], protocol=broker.protocol) as sub:
        gw, scanners, stop, task = await running()
        q = scanners["dock-03-left"].queue
        for data in (
            b"SUP1-20261127-0001",
            b"SUP1-20261127-0001",
            b"STEP:dispatch",
            b"SUP1-20261127-0001",
            b"\xff\x00garbled",
        ):
            await q.put(data)
        await wait_for(lambda: len(sub.payloads("gatewayd/gw-test/scans/")) >= 2, what="two scans")
        state = await wait_for(
            lambda: [p for p in sub.payloads("gatewayd/gw-test/stations/dock-03/state") if p["step"] == "dispatch"],
            what="station state dispatch",
        )
        assert state[0]["biz_step"] == "urn:epcglobal:cbv:bizstep:shipping"
        scans = sub.payloads("gatewayd/gw-test/scans/")
        # The repeat within the window was counted, not published; the step command was
        # recorded, not published; the garbled read is published as unknown, with errors.
        assert [s["seq"] for s in scans] == [1, 2]
        assert scans[0]["kind"] == "lot" and scans[0]["lot"] == "SUP1-20261127-0001"
        assert scans[1]["kind"] == "unknown" and scans[1]["errors"]
        assert scans[1]["step"] == "dispatch"
        assert gw.counters.suppressed == 2
        stop.set()
        await task


async def test_requests_answered_and_bad_requests_refused(running: Any, broker: LocalBroker) -> None:
    with Subscriber(broker.port, ["gatewayd/gw-test/#"], protocol=broker.protocol) as sub:
        _gw, _scanners, stop, task = await running()
        await sub.apublish(
            "gatewayd/gw-test/request/station/step", {"transaction": "t1", "station": "zone-a", "step": "picking"}
        )
        ok = await sub.await_for("gatewayd/gw-test/response/station/step", lambda p: p.get("transaction") == "t1")
        assert ok["status"] == "ok" and ok["data"]["step"] == "picking"
        bad = [
            ("station/step", b"not json", "not valid UTF-8 JSON"),
            (
                "station/step",
                json.dumps({"transaction": "t2", "station": "nope", "step": "picking"}).encode(),
                "station must be one of",
            ),
            (
                "station/step",
                json.dumps({"transaction": "t3", "station": "zone-a", "step": "flying"}).encode(),
                "step must be one of",
            ),
            ("replay", json.dumps({"transaction": "t4", "from_seq": "x"}).encode(), "from_seq must be an integer"),
            ("nonsense", json.dumps({"transaction": "t5"}).encode(), "unknown command"),
            ("health", json.dumps([1, 2]).encode(), "must be a JSON object"),
            ("health", b"{" + b" " * 70000 + b"}", "larger than the limit"),
        ]
        for command, payload, _ in bad:
            await sub.apublish(f"gatewayd/gw-test/request/{command}", payload)
        for command, _, expected in bad:
            await sub.await_for(
                f"gatewayd/gw-test/response/{command}",
                lambda p, e=expected: p["status"] == "error" and e in p["error"],
            )
        await sub.apublish("gatewayd/gw-test/request/health", {"transaction": "h"})
        health = await sub.await_for("gatewayd/gw-test/response/health", lambda p: p.get("transaction") == "h")
        assert health["status"] == "ok" and health["data"]["state"] == "online"
        assert task.done() is False
        stop.set()
        await task


async def test_replay_republishes_range(running: Any, broker: LocalBroker) -> None:
    with Subscriber(broker.port, ["gatewayd/gw-test/#"], protocol=broker.protocol) as sub:
        _gw, scanners, stop, task = await running()
        for i in range(20):
            await scanners["zone-a-1"].queue.put(f"SUP1-20261127-{i:04d}".encode())
        await wait_for(lambda: len(sub.payloads("gatewayd/gw-test/scans/")) >= 20, what="20 scans")
        first = {p["seq"]: p for p in sub.payloads("gatewayd/gw-test/scans/")}
        await sub.apublish("gatewayd/gw-test/request/replay", {"transaction": "r", "from_seq": 5, "to_seq": 9})
        answer = await sub.await_for("gatewayd/gw-test/response/replay", lambda p: p.get("transaction") == "r")
        assert answer["data"]["count"] == 5
        await wait_for(lambda: len(sub.payloads("gatewayd/gw-test/scans/")) >= 25, what="replayed scans")
        replayed = sub.payloads("gatewayd/gw-test/scans/")[20:]
        assert [p["seq"] for p in replayed] == [5, 6, 7, 8, 9]
        assert all(p == first[p["seq"]] for p in replayed)
        stop.set()
        await task


async def test_outbox_full_refuses_loudly_and_keeps_everything(broker: LocalBroker, tmp_path: Path) -> None:
    scanners = {"dock-03-left": QueueScanner("dock-03-left"), "zone-a-1": QueueScanner("zone-a-1")}
    settings = settings_for(broker, tmp_path, max_events=5)
    broker.kill()  # nothing can be delivered: the backlog grows to the limit
    gw = Gateway(settings, scanners=scanners)
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))
    await wait_for(lambda: gw.outbox is not None, what="outbox open")
    for i in range(8):
        await scanners["zone-a-1"].queue.put(f"SUP1-20261127-{i:04d}".encode())
    await wait_for(lambda: gw.counters.refused == 3, what="three refused reads")
    assert gw.counters.captured == 5
    assert "outbox_full" in gw.alarms
    broker.start()
    with Subscriber(broker.port, ["gatewayd/gw-test/#"], protocol=broker.protocol) as sub:
        await wait_for(lambda: len(sub.payloads("gatewayd/gw-test/scans/")) >= 5, timeout=20, what="backlog")
        assert sorted({p["seq"] for p in sub.payloads("gatewayd/gw-test/scans/")}) == [1, 2, 3, 4, 5]
        await wait_for(lambda: "outbox_full" not in gw.alarms, what="alarm cleared")
    stop.set()
    await task


def disk_full(gw: Any) -> None:
    """SQLite's own "database or disk is full", from a page limit at the outbox's size."""
    pages = gw.outbox.db.execute("PRAGMA page_count").fetchone()[0]
    gw.outbox.db.execute(f"PRAGMA max_page_count={pages}")


def disk_free(gw: Any) -> None:
    gw.outbox.db.execute("PRAGMA max_page_count=1073741823")


async def test_a_full_disk_refuses_reads_loudly_and_recovers(
    running: Any, broker: LocalBroker, caplog: pytest.LogCaptureFixture
) -> None:
    with Subscriber(broker.port, ["gatewayd/gw-test/#"], protocol=broker.protocol) as sub:
        gw, scanners, stop, task = await running()
        q = scanners["zone-a-1"].queue
        await q.put(b"SUP1-20261127-0001")
        await sub.await_for("gatewayd/gw-test/scans/zone-a")
        disk_full(gw)
        for i in range(2, 200):
            await q.put(f"SUP1-20261127-{i:04d}-{'x' * 200}".encode())
        await wait_for(lambda: "outbox_error" in gw.alarms, what="outbox_error alarm")
        alarm = await sub.await_for(
            "gatewayd/gw-test/status", lambda p: any(a["alarm"] == "outbox_error" for a in p.get("alarms", []))
        )
        assert "full" in str(alarm["alarms"])
        assert gw.counters.refused > 0
        assert "REFUSED read from zone-a-1" in caplog.text and "SUP1-20261127-" in caplog.text
        disk_free(gw)
        await q.put(b"SUP1-20261127-9999")
        await wait_for(lambda: "outbox_error" not in gw.alarms, what="alarm cleared")
        last = await sub.await_for("gatewayd/gw-test/scans/zone-a", lambda p: p["lot"] == "SUP1-20261127-9999")
        seqs = [p["seq"] for p in sub.payloads("gatewayd/gw-test/scans/")]
        assert seqs == list(range(1, last["seq"] + 1)), "seq stays gap-free across refused reads"
        stop.set()
        await task


async def test_a_read_published_live_whose_commit_fails_is_kept_and_written_first(
    running: Any, broker: LocalBroker, caplog: pytest.LogCaptureFixture
) -> None:
    with Subscriber(broker.port, ["gatewayd/gw-test/#"], protocol=broker.protocol) as sub:
        gw, scanners, stop, task = await running()
        q = scanners["zone-a-1"].queue
        await q.put(b"SUP1-20261127-0001")
        await sub.await_for("gatewayd/gw-test/scans/zone-a")
        disk_full(gw)
        big = f"SUP1-20261127-0002-{'x' * 3000}"
        await q.put(big.encode())  # live: it goes out before its commit, which fails
        await wait_for(lambda: "outbox_error" in gw.alarms, what="outbox_error alarm")
        published = await sub.await_for("gatewayd/gw-test/scans/zone-a", lambda p: p["raw"] == big)
        assert "already published, is kept until it can be written" in caplog.text
        assert gw.outbox.history(from_seq=published["seq"], to_seq=published["seq"], limit=1) == []
        disk_free(gw)
        await q.put(b"SUP1-20261127-0003")
        after = await sub.await_for("gatewayd/gw-test/scans/zone-a", lambda p: p["lot"] == "SUP1-20261127-0003")
        assert after["seq"] == published["seq"] + 1
        (row,) = gw.outbox.history(from_seq=published["seq"], to_seq=published["seq"], limit=1)
        assert json.loads(row.payload) == published  # written first, exactly what went out
        await wait_for(lambda: "outbox_error" not in gw.alarms, what="alarm cleared")
        stop.set()
        await task


async def test_health_counts_the_keys_a_wedge_typed_outside_a_read(broker: LocalBroker, tmp_path: Path) -> None:
    # A real EvdevScanner on a recorded-style stream (Enter then Down Arrow after each read):
    # the Down Arrows are no scans, and health shows how many there were.
    from gatewayd_drivers.capture import parse_capture
    from gatewayd_drivers.device_discovery import DeviceDiscovery
    from gatewayd_drivers.evdev_scanner import EvdevScanner
    from gatewayd_drivers.keymaps import wedge_events
    from tests.openers import Opener

    capture = parse_capture((Path(__file__).parent / "data/captures/wedge_boot_enter_down.capture").read_text())
    events = [e for _, e in capture.records if isinstance(e, tuple)] + wedge_events("SUP1-20261127-0005", layout="us")

    class Source:
        def grab(self) -> None: ...

        def close(self) -> None: ...

        async def events(self) -> Any:
            for event in events:
                yield event
            await asyncio.Event().wait()

    (tmp_path / "dev/input").mkdir(parents=True)
    (tmp_path / "dev/input/event3").touch()
    wedge = EvdevScanner(id="dock-03-left", path="/dev/input/event3", discovery=DeviceDiscovery(root=tmp_path),
                         opener=Opener(Source()))
    gw = Gateway(settings_for(broker, tmp_path), scanners={"dock-03-left": wedge, "zone-a-1": QueueScanner("zone-a-1")})
    stop = asyncio.Event()
    with Subscriber(broker.port, ["gatewayd/gw-test/#"], protocol=broker.protocol) as sub:
        task = asyncio.create_task(gw.run(stop))
        scans = await wait_for(lambda: len(sub.payloads("gatewayd/gw-test/scans/dock-03")) == 3 and
                               sub.payloads("gatewayd/gw-test/scans/dock-03"), what="three scans")
        assert [s["raw"] for s in scans] == ["https://example.com/l/A-1*2+3?q=Z_9", "SUP1-20261127-0003",
                                             "SUP1-20261127-0005"]
        await sub.apublish("gatewayd/gw-test/request/health", {"transaction": "h"})
        health = await sub.await_for("gatewayd/gw-test/response/health", lambda p: p.get("transaction") == "h")
        stop.set()
        await task
    assert health["data"]["counters"]["ignored_keys"] == {"dock-03-left": 2}
    assert health["data"]["counters"]["reads"]["dock-03-left"] == 3
