"""The print path through a real broker to a fake Zebra on a real socket.

Labels are checked by rendering the ZPL the printer received (zplkit) and decoding the
barcodes (zxing-cpp), not by comparing strings alone.
"""

from __future__ import annotations

import asyncio
import types
from pathlib import Path
from typing import Any

import pytest
import zxingcpp

from gatewayd.config import parse
from gatewayd.daemon import Gateway
from gatewayd.demo.local_broker import LocalBroker
from tests.fake_zebra import FakeZebra
from tests.mqtt_tools import Subscriber
from tests.test_label_render import raster

P = "gatewayd/print-gw"


def settings_for(broker: LocalBroker, tmp_path: Path, printer_url: str, **printer: Any) -> Any:
    return parse(
        {
            "gateway": {"id": "print-gw", "state_dir": str(tmp_path / "state")},
            "mqtt": {
                "brokers": [broker.url],
                "protocol": broker.protocol,
                "reconnect_min_s": 0.1,
                "reconnect_max_s": 0.5,
            },
            "labels": {"resolver": "https://id.example.com"},
            "stations": [{"id": "dock-03", "step": "receiving"}],
            "printers": [
                {
                    "id": "zebra",
                    "driver": "zpl",
                    "transport": printer_url,
                    "dpi": 203,
                    "status_interval_s": 0.2,
                    **printer,
                }
            ],
        }
    )


async def wait_for(predicate: Any, timeout: float = 15.0, what: str = "condition") -> Any:
    async def loop() -> Any:
        while not (value := predicate()):
            await asyncio.sleep(0.01)
        return value

    try:
        return await asyncio.wait_for(loop(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def decode_label(zpl: bytes, dpi: int = 203) -> list[str]:
    """Render one received label format and return the text of every barcode on it."""
    return [r.text for r in zxingcpp.read_barcodes(raster(zpl, dpi))]


@pytest.fixture
async def gateway(broker: LocalBroker, tmp_path: Path) -> Any:
    printer = FakeZebra()
    await printer.__aenter__()
    gw = Gateway(settings_for(broker, tmp_path, printer.url), scanners={})
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))
    await wait_for(lambda: gw.link is not None and gw.link.subscribed and gw.printing is not None, what="gateway up")
    sub = Subscriber(broker.port, [f"{P}/#"], protocol=broker.protocol).__enter__()
    yield gw, printer, sub
    sub.__exit__(None, None, None)
    stop.set()
    await task
    await printer.close()


async def request(sub: Subscriber, body: dict[str, Any], tx: str) -> dict[str, Any]:
    await sub.apublish(f"{P}/request/print", {"transaction": tx, **body})
    return await sub.await_for(f"{P}/response/print", lambda p: p.get("transaction") == tx)  # type: ignore[no-any-return]


async def test_lot_label_printed_once_and_decodes_to_digital_link(gateway: Any) -> None:
    _gw, printer, sub = gateway
    label = {
        "lot": "SUP1-20261127-0001",
        "gtin": "09506000134352",
        "expiry": "2027-12-31",
        "qty": 40,
        "supplier": "SUP1",
    }
    answer = await request(sub, {"job_id": "J-1", "printer": "zebra", "template": "lot", "labels": [label]}, "t1")
    assert answer["status"] == "ok", answer
    assert answer["data"]["job_id"] == "J-1" and answer["data"]["duplicate"] is False
    await sub.await_for(f"{P}/printers/zebra/jobs", lambda p: p["job_id"] == "J-1" and p["state"] == "done")
    assert len(printer.labels()) == 1
    texts = decode_label(printer.labels()[0])
    assert "https://id.example.com/01/09506000134352/10/SUP1-20261127-0001?17=271231" in texts
    states = [p["state"] for p in sub.payloads(f"{P}/printers/zebra/jobs") if p["job_id"] == "J-1"]
    assert states[0] == "queued" and states[-1] == "done" and "printing" in states
    ready = await sub.await_for(f"{P}/printers/zebra/state", lambda p: p["state"] == "ready")
    assert ready["schema"] == "gatewayd.printer/1"

    # The same job id again (a WMS retry, an MQTT redelivery): answered, never reprinted.
    again = await request(sub, {"job_id": "J-1", "printer": "zebra", "labels": [label]}, "t2")
    assert again["status"] == "ok" and again["data"]["duplicate"] is True and again["data"]["state"] == "done"
    await asyncio.sleep(0.5)  # give a wrong reprint the time to show up
    assert len(printer.labels()) == 1


async def test_batch_generates_consecutive_lots_never_repeated(gateway: Any) -> None:
    _gw, printer, sub = gateway
    batch = {"count": 500, "supplier": "SUP1", "date": "2026-11-27", "gtin": "09506000134352", "expiry": "2027-12-31"}
    answer = await request(sub, {"job_id": "B-1", "printer": "zebra", "batch": batch}, "b1")
    assert answer["status"] == "ok", answer
    lots = answer["data"]["lots"]
    assert lots[0] == "SUP1-20261127-0001" and lots[-1] == "SUP1-20261127-0500" and len(set(lots)) == 500
    done = await sub.await_for(
        f"{P}/printers/zebra/jobs", lambda p: p["job_id"] == "B-1" and p["state"] == "done", timeout=60
    )
    assert done["lots"] == lots and done["printed"] == done["total"] == 500
    assert len(printer.labels()) == 500
    # Spot-check first and last label through the renderer.
    assert any(t.endswith("/10/SUP1-20261127-0001?17=271231") for t in decode_label(printer.labels()[0]))
    assert any(t.endswith("/10/SUP1-20261127-0500?17=271231") for t in decode_label(printer.labels()[-1]))
    second = await request(sub, {"job_id": "B-2", "printer": "zebra", "batch": dict(batch, count=2)}, "b2")
    assert second["data"]["lots"] == ["SUP1-20261127-0501", "SUP1-20261127-0502"]


async def test_paper_out_holds_and_resumes_without_reprint(gateway: Any) -> None:
    _gw, printer, sub = gateway
    printer.state = "paper_out"
    labels = [{"lot": f"L-{i}"} for i in range(5)]
    await request(sub, {"job_id": "H-1", "printer": "zebra", "labels": labels}, "h1")
    held = await sub.await_for(f"{P}/printers/zebra/jobs", lambda p: p["job_id"] == "H-1" and p["state"] == "held")
    assert "paper" in held["reason"].lower()
    await sub.await_for(f"{P}/printers/zebra/state", lambda p: p["state"] == "paper_out")
    assert printer.labels() == []
    printer.state = "ready"
    await sub.await_for(f"{P}/printers/zebra/jobs", lambda p: p["job_id"] == "H-1" and p["state"] == "done")
    assert len(printer.labels()) == 5
    assert [decode_label(z)[0] for z in printer.labels()] == [f"L-{i}" for i in range(5)]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"printer": "zebra", "labels": [{"lot": "A"}]}, "job_id"),
        ({"job_id": "x", "printer": "nope", "labels": [{"lot": "A"}]}, "printer: expected one of zebra"),
        ({"job_id": "x", "printer": "zebra", "template": "nope", "labels": [{"lot": "A"}]}, "no template 'nope'"),
        ({"job_id": "x", "printer": "zebra"}, "exactly one of labels, batch or zpl"),
        ({"job_id": "x", "printer": "zebra", "labels": [{"gtin": "09506000134353"}]}, "labels[0]"),
        ({"job_id": "x", "printer": "zebra", "labels": [{"lot": "A"}], "copies": 0}, "copies"),
        ({"job_id": "x", "printer": "zebra", "batch": {"count": 100000, "supplier": "S"}}, "batch.count"),
        ({"job_id": "x", "printer": "zebra", "batch": {"count": 2, "supplier": "lower"}}, "batch.supplier"),
        ({"job_id": "x", "printer": "zebra", "zpl": "^XA^FDx^FS^XZ"}, "raw ZPL is not allowed"),
        ({"job_id": "x", "printer": "zebra", "labels": [{"lot": "A"}], "colour": "red"}, "unknown field"),
    ],
)
async def test_invalid_print_requests_get_errors(gateway: Any, body: dict[str, Any], expected: str) -> None:
    _gw, printer, sub = gateway
    answer = await request(sub, body, "bad")
    assert answer["status"] == "error" and expected in answer["error"], answer
    assert printer.labels() == []


@pytest.fixture
async def raw_gateway(broker: LocalBroker, tmp_path: Path) -> Any:
    printer = FakeZebra()
    await printer.__aenter__()
    gw = Gateway(settings_for(broker, tmp_path, printer.url, allow_raw=True), scanners={})
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))
    await wait_for(lambda: gw.link is not None and gw.link.subscribed and gw.printing is not None, what="gateway up")
    sub = Subscriber(broker.port, [f"{P}/#"], protocol=broker.protocol).__enter__()
    yield printer, sub
    sub.__exit__(None, None, None)
    stop.set()
    await task
    await printer.close()


async def test_raw_zpl_passes_the_filter_where_allowed(raw_gateway: Any) -> None:
    printer, sub = raw_gateway
    zpl = "^XA^FO20,20^BQN,2,5^FDQA,RAW-LOT-1^FS^XZ"
    answer = await request(sub, {"job_id": "R-1", "printer": "zebra", "zpl": zpl}, "r1")
    assert answer["status"] == "ok", answer
    await sub.await_for(f"{P}/printers/zebra/jobs", lambda p: p["job_id"] == "R-1" and p["state"] == "done")
    assert printer.labels() == [zpl.encode()]
    assert decode_label(printer.labels()[0]) == ["RAW-LOT-1"]
    # A format that would reset the printer's network settings is refused, by name.
    refused = await request(sub, {"job_id": "R-2", "printer": "zebra", "zpl": "^XA^NS^FS^XZ\x10JR"}, "r2")
    assert refused["status"] == "error" and "^NS" in refused["error"], refused
    assert len(printer.labels()) == 1


async def test_escpos_printer_on_a_file_transport(broker: LocalBroker, tmp_path: Path) -> None:
    from gatewayd.printing.escpos_render import render_escpos
    from gatewayd.printing.labels import LabelData, TemplateLibrary

    out = tmp_path / "escpos.bin"
    settings = parse({
        "gateway": {"id": "print-gw", "state_dir": str(tmp_path / "state")},
        "mqtt": {"brokers": [broker.url], "protocol": broker.protocol},
        "stations": [{"id": "dock-03", "step": "receiving"}],
        "printers": [{"id": "receipt", "driver": "escpos", "transport": f"file://{out}", "status_interval_s": 0.2}],
    })  # fmt: skip
    gw = Gateway(settings, scanners={})
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))
    try:
        await wait_for(lambda: gw.link is not None and gw.link.subscribed and gw.printing is not None, what="up")
        with Subscriber(broker.port, [f"{P}/#"], protocol=broker.protocol) as sub:
            label = {"lot": "SUP1-20261127-0007", "gtin": "09506000134352", "expiry": "2027-12-31"}
            answer = await request(sub, {"job_id": "E-1", "printer": "receipt", "labels": [label]}, "e1")
            assert answer["status"] == "ok", answer
            await sub.await_for(f"{P}/printers/receipt/jobs", lambda p: p["job_id"] == "E-1" and p["state"] == "done")
        expected = render_escpos(
            TemplateLibrary.load().get("lot"), LabelData.from_request(label), resolver=settings.labels.resolver
        )
        assert out.read_bytes() == expected
    finally:
        stop.set()
        await task


async def test_a_job_that_completes_during_a_broker_outage_is_reported_after_it(
    broker: LocalBroker, tmp_path: Path
) -> None:
    """Formerly the WMS saw queued, held and never done: job events were published only
    while connected. Now they go out from the job store, in order, once the link is back."""
    from tests.tcp_proxy import TcpProxy

    with TcpProxy(broker.port) as proxy:
        async with FakeZebra(state="paper_out") as printer:
            via_proxy = types.SimpleNamespace(url=f"mqtt://127.0.0.1:{proxy.port}", protocol=broker.protocol)
            gw = Gateway(settings_for(via_proxy, tmp_path, printer.url), scanners={})
            stop = asyncio.Event()
            task = asyncio.create_task(gw.run(stop))
            with Subscriber(broker.port, [f"{P}/printers/#", f"{P}/response/#"], protocol=broker.protocol) as sub:
                await wait_for(lambda: gw.link is not None and gw.link.subscribed and gw.printing is not None)
                batch = {"count": 3, "supplier": "SUP1", "date": "2026-11-27"}
                answer = await request(sub, {"job_id": "J-out", "printer": "zebra", "batch": batch}, "t-out")
                lots = answer["data"]["lots"]
                await sub.await_for(f"{P}/printers/zebra/jobs", lambda p: p["state"] == "held")
                proxy.cut()  # the broker is unreachable for the gateway; the WMS stays subscribed
                await wait_for(lambda: not gw.link.connected, what="gateway offline")  # type: ignore[union-attr]
                printer.state = "ready"
                await wait_for(lambda: len(printer.labels()) == 3, what="the job printed")
                await asyncio.sleep(0.3)  # the done event is recorded now, with nobody to take it
                assert not any(p["state"] == "done" for p in sub.payloads(f"{P}/printers/zebra/jobs"))
                proxy.restore()
                done = await sub.await_for(f"{P}/printers/zebra/jobs", lambda p: p["state"] == "done")
                assert done["lots"] == lots == ["SUP1-20261127-0001", "SUP1-20261127-0002", "SUP1-20261127-0003"]
                events = [p for p in sub.payloads(f"{P}/printers/zebra/jobs") if p["job_id"] == "J-out"]
                # At least once (a PUBACK lost in the cut means a resend): dedupe on event_seq.
                by_seq: dict[int, dict[str, Any]] = {}
                for p in events:
                    assert by_seq.setdefault(p["event_seq"], p) == p, "a redelivery differs"
                assert list(by_seq) == list(range(1, len(by_seq) + 1))  # in order, none missing
                events = list(by_seq.values())
                states = [p["state"] for p in events]
                assert states[0] == "queued" and "held" in states and states[-1] == "done"
                assert "printing" in states[states.index("held") :]
                # Every event was acknowledged and marked: nothing is left to send.
                assert gw.printing is not None
                async with asyncio.timeout(10):
                    while await gw.printing.pending_events(0, 100):
                        await asyncio.sleep(0.02)
            stop.set()
            await task
