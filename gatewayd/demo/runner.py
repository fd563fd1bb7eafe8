"""``gatewayd demo``: the whole gateway on one machine with no hardware.

A private broker (mosquitto when installed, else amqtt), the real daemon on the demo
config (``config/demo``), four replay scanners playing a dock day (receiving, transfer,
picking, dispatch), a virtual Zebra writing each label as ZPL and PNG, and a WMS view
that prints what a subscriber sees, sends a few print requests, and answers every read
with a verdict (:func:`wms_verdict`) that the station pages show live.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from gatewayd.config import load
from gatewayd.daemon import Gateway
from gatewayd.demo.local_broker import LocalBroker
from gatewayd.demo.virtual_printer import VirtualZebra
from gatewayd.errors import ConfigError
from gatewayd.logging_setup import setup_logging

__all__ = ["demo_dir", "run_demo"]

log = logging.getLogger("gatewayd.demo")


def demo_dir() -> Path:
    here = Path(__file__).resolve().parents[2] / "config" / "demo"
    if not (here / "gatewayd.demo.toml").exists():
        raise ConfigError([f"demo: {here} not found; run `gatewayd demo` from a source checkout (./scripts/demo)"])
    return here


def scale_replay(text: str, speed: float) -> str:
    """The replay file with every ``@delay`` divided by ``speed``."""

    def scale(match: re.Match[str]) -> str:
        return f"@delay {float(match.group(1)) / speed:.4f}"

    return re.sub(r"^@delay\s+([0-9.]+)\s*$", scale, text, flags=re.MULTILINE)


def wms_verdict(scan: dict[str, Any], nth: int, today: str) -> tuple[str, str] | None:
    """The simulated WMS's answer to the ``nth`` scan: ``(verdict, message)``, or ``None``
    for a read the gateway could not decode (it has already told the operator)."""
    if scan.get("kind") == "unknown":
        return None
    if scan.get("expiry") and scan["expiry"] < today:
        return "reject", f"expired on {scan['expiry']}: set the pallet aside"
    if scan.get("errors"):
        return "warn", f"check the label: {scan['errors'][0]}"
    if scan.get("lot") and nth % 4 == 3:
        return "reject", f"wrong lot for this order: {scan['lot']} is on hold"
    where = {"receiving": "booked in", "transfer": "moved", "picking": "picked", "dispatch": "loaded"}
    return "accept", f"{where.get(scan.get('step', ''), 'OK')}: {scan.get('lot') or scan.get('sscc') or 'OK'}"


def count_reads(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip() and not line.startswith(("#", "@")))


class WmsView:
    """What a WMS subscriber sees, printed one line per event; also sends print requests."""

    def __init__(self, *, port: int, protocol: int, root: str, out: Any = sys.stdout) -> None:
        self.root = root
        self.out = out
        self.scans = 0
        self.verdicts = 0  # verdicts sent for reads
        self.answered = 0  # responses to them
        self.done_jobs: set[str] = set()
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.offline = threading.Event()  # the gateway's goodbye reached the view
        self.out_closed = threading.Event()  # the view's output pipe was closed
        self.on_out_closed: Callable[[], object] = lambda: None
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"gatewayd-demo-wms-{port}",
            protocol=MQTTProtocolVersion.MQTTv5 if protocol == 5 else MQTTProtocolVersion.MQTTv311,
        )
        self.client.on_connect = lambda c, u, f, rc, p=None: c.subscribe(f"{root}/#", qos=1)
        self.client.on_subscribe = lambda *a: self.ready.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def request(self, command: str, body: dict[str, Any]) -> None:
        self.client.publish(f"{self.root}/request/{command}", json.dumps(body), qos=1)

    def say(self, tag: str, text: str) -> None:
        with self.lock:
            if self.out_closed.is_set():
                return
            try:
                print(f"{time.strftime('%H:%M:%S')}  {tag:<8} {text}", file=self.out, flush=True)
            except BrokenPipeError:
                # Nobody reads the view any more (`gatewayd demo | head`): end the demo.
                self.out_closed.set()
                self.on_out_closed()

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        try:
            p = json.loads(msg.payload)
        except ValueError:
            return
        topic = msg.topic[len(self.root) + 1 :]
        if p.get("schema") == "gatewayd.gap/1":
            self.say("gap", f"#{p['seq']:<4} seq {p['from_seq']}..{p['to_seq']} will never come: {p['reason']}")
        elif topic.startswith("scans/"):
            self.scans += 1
            fields = [f"{k.upper()} {p[k]}" for k in ("gtin", "sscc", "lot", "expiry", "count") if p.get(k)]
            errors = f"  errors: {'; '.join(p['errors'])}" if p["errors"] else ""
            self.say(
                "scan",
                f"#{p['seq']:<4} {p['station']:<8} {p['step']:<10} {p['kind']:<12} {'  '.join(fields)}{errors}",
            )
            answer = wms_verdict(p, self.scans, time.strftime("%Y-%m-%d"))
            if answer is not None:
                verdict, message = answer
                self.verdicts += 1
                self.say("verdict", f"#{p['seq']:<4} {p['station']:<8} {verdict}: {message}")
                self.request(
                    "feedback",
                    {"station": p["station"], "verdict": verdict, "message": message, "event_id": p["event_id"]},
                )
        elif topic.startswith("epcis/"):
            for event in p["epcisBody"]["eventList"]:
                self.say("epcis", f"{topic[6:]:<8} {_epcis_line(event)}")
        elif topic.startswith("stations/"):
            context = p.get("context")
            if context:
                pallet = f"pallet {context['sscc']}" if context.get("sscc") else "no pallet"
                self.say("station", f"{p['station']} context: {pallet}, {context['items']} item(s) bound")
            else:
                self.say("station", f"{p['station']} is now {p['step']} ({p['biz_step']})")
        elif topic.startswith("devices/"):
            self.say("device", f"{p['device']}: {p['state']} {p.get('detail', '')}")
        elif topic.endswith("/jobs"):
            lots = f"  lots {', '.join(p['lots'])}" if p.get("lots") else ""
            reason = f"  ({p['reason']})" if p.get("reason") else ""
            self.say("print", f"job {p['job_id']}: {p['state']} {p['printed']}/{p['total']}{reason}{lots}")
            if p["state"] == "done":
                self.done_jobs.add(p["job_id"])
        elif topic.startswith("printers/"):
            self.say("printer", f"{p['printer']}: {p['state']} ({p['detail']})")
        elif topic == "status":
            outbox = p.get("outbox", {})
            self.say(
                "status",
                f"gateway {p['gateway']} {p['state']}, last seq {outbox.get('last_seq', '-')}, "
                f"{outbox.get('depth', 0)} undelivered",
            )
            if p["state"] == "offline":
                self.offline.set()
        elif topic.startswith("response/"):
            if topic == "response/feedback":
                self.answered += 1
            detail = p.get("error") or json.dumps(p.get("data"))[:160]
            self.say("response", f"{topic[9:]} {p['status']}: {detail}")


def _epcis_line(event: dict[str, Any]) -> str:
    """One EPCIS event in a line: type, action, bizStep, and what it is about."""
    what = [*event.get("epcList", []), *(q["epcClass"] for q in event.get("quantityList", []))]
    if "parentID" in event:
        children = [*event.get("childEPCs", []), *(q["epcClass"] for q in event.get("childQuantityList", []))]
        what = [f"{event['parentID']} <- {', '.join(children)}"]
    return f"{event['type']:<16} {event['action']:<7} {event['bizStep']:<10} {'  '.join(what)}"


def run_demo(args: argparse.Namespace) -> int:
    if args.speed <= 0:
        raise ConfigError([f"--speed: expected a positive number, got {args.speed}"])
    out: Path = args.out.resolve()
    if out.exists() and (out / "state").exists():
        shutil.rmtree(out / "state")  # each demo starts a fresh dock day
    out.mkdir(parents=True, exist_ok=True)
    setup_logging("warning")
    file_log = logging.FileHandler(out / "gatewayd.log")
    file_log.setLevel(logging.INFO)
    file_log.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(file_log)
    logging.getLogger().setLevel(logging.INFO)
    for handler in logging.getLogger().handlers:
        if handler is not file_log:
            handler.setLevel(logging.WARNING)
    with LocalBroker(workdir=out / "broker", port=args.port or None, prefer=args.broker) as broker:
        print(
            f"gatewayd demo: {broker.kind} broker on {broker.url} (MQTT {'5' if broker.protocol == 5 else '3.1.1'}); "
            f"labels and logs in {out}; Ctrl-C stops",
            flush=True,
        )
        return asyncio.run(_demo(args, out, broker))


async def _demo(args: argparse.Namespace, out: Path, broker: LocalBroker) -> int:
    source = demo_dir()
    replay_dir = out / "replay"
    replay_dir.mkdir(exist_ok=True)
    expected_reads = 0
    for path in sorted(source.glob("*.replay")):
        text = path.read_text()
        expected_reads += count_reads(text)
        (replay_dir / path.name).write_text(scale_replay(text, args.speed))
    view: WmsView | None = None

    def label_written(path: Path) -> None:
        if view is not None:
            view.say("label", f"{path.name} and {path.with_suffix('.png').name} written")

    try:
        async with VirtualZebra(out_dir=out / "labels", on_label=label_written) as printer:
            template = (args.config or source / "gatewayd.demo.toml").read_text()
            values = {
                "state_dir": out / "state",
                "broker_url": broker.url,
                "protocol": broker.protocol,
                "replay_dir": replay_dir,
                "loop": "false" if args.once else "true",
                "printer_url": printer.url,
                "http_listen": f"127.0.0.1:{args.http_port}",
            }
            config_text = template
            for key, value in values.items():
                config_text = config_text.replace("{" + key + "}", str(value))
            config_path = out / "gatewayd.toml"
            config_path.write_text(config_text)
            settings = load(config_path)
            view = WmsView(port=broker.port, protocol=broker.protocol, root=settings.topic_root)
            gw = Gateway(settings)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            view.on_out_closed = lambda: loop.call_soon_threadsafe(stop.set)
            runner = asyncio.create_task(gw.run(stop), name="gatewayd[demo].gateway")
            await _until(lambda: view.ready.is_set() and gw.link is not None and gw.link.subscribed, runner)
            if gw.http_port is not None:
                base = f"http://127.0.0.1:{gw.http_port}"
                try:
                    print(
                        f"gatewayd demo: station page {base}/stations/dock-03 (all stations: {base}/ ; "
                        f"metrics: {base}/metrics)",
                        flush=True,
                    )
                except BrokenPipeError:
                    # Nobody reads any more (`gatewayd demo | head`): stop in order, like the
                    # view does, rather than cancel the gateway mid-start.
                    stop.set()
            view.request(
                "print",
                {
                    "transaction": "demo-1",
                    "job_id": "DEMO-LOT-1",
                    "printer": "dock-03-zebra",
                    "template": "lot",
                    "labels": [
                        {
                            "lot": "SUP1-20261127-0001",
                            "gtin": "09506000134352",
                            "expiry": "2027-12-31",
                            "qty": 40,
                            "supplier": "SUP1",
                        }
                    ],
                },
            )
            view.request(
                "print",
                {
                    "transaction": "demo-2",
                    "job_id": "DEMO-BATCH-1",
                    "printer": "dock-03-zebra",
                    "template": "lot",
                    "batch": {
                        "count": 3,
                        "supplier": "SUP3",
                        "date": time.strftime("%Y-%m-%d"),
                        "gtin": "09506000134383",
                        "expiry": "2027-06-30",
                    },
                },
            )
            if args.once:

                def finished() -> bool:
                    assert gw.outbox is not None
                    captured = gw.counters.captured + gw.counters.suppressed + gw.counters.step_commands
                    return (
                        captured >= expected_reads
                        and gw.outbox.depth == 0
                        and {"DEMO-LOT-1", "DEMO-BATCH-1"} <= view.done_jobs
                        and view.scans >= gw.counters.captured
                        and view.answered >= view.verdicts  # the gateway took every verdict
                    )

                waiter = asyncio.create_task(_until(finished, runner))
                stopper = asyncio.create_task(stop.wait())
                await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
                stop.set()
            await runner
            # The gateway waited for the broker's ack of "offline"; let the view show it too.
            await asyncio.to_thread(view.offline.wait, 5.0)
            print(
                f"gatewayd demo: {view.scans} scan event(s) seen by the WMS view, {view.verdicts} answered with a "
                f"verdict, {printer.count} label(s) printed "
                f"to {out / 'labels'}; config in {config_path}",
                flush=True,
            )
    finally:
        if view is not None:
            view.close()
    return 0


async def _until(predicate: Any, runner: asyncio.Task[None], timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if runner.done():
            runner.result()  # raise what stopped the gateway
            raise RuntimeError("the gateway stopped early")
        if time.monotonic() > deadline:
            raise TimeoutError("demo: timed out waiting for the gateway")
        await asyncio.sleep(0.05)
