"""The real daemon against what goes wrong at a site: a duplicate gateway id, hostile
requests. Brokers are real (mosquitto); the gateway is the ``gatewayd run`` process."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gatewayd.demo.local_broker import LocalBroker, find_mosquitto
from tests.mqtt_tools import DaemonProcess, Subscriber, gateway_config, start_daemon, wait_online, wait_until
from tests.pty_scanner import PtyScanner

GW = "site-gw"
P = f"gatewayd/{GW}"

pytestmark = pytest.mark.skipif(find_mosquitto() is None, reason="needs mosquitto (MQTT 5)")


def statuses(sub: Subscriber) -> list[dict[str, Any]]:
    return sub.payloads(f"{P}/status")


def take_session(port: int, client_id: str, *, protocol: int) -> None:
    """Connect with the gateway's client id (the broker drops the gateway), then leave."""
    c = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5 if protocol == 5 else MQTTProtocolVersion.MQTTv311,
        reconnect_on_failure=False,
    )
    connected = threading.Event()
    c.on_connect = lambda *a: connected.set()
    c.connect("127.0.0.1", port, keepalive=10)
    c.loop_start()
    try:
        assert connected.wait(10), "the second client got no CONNACK"
    finally:
        c.disconnect()
        c.loop_stop()


@pytest.mark.parametrize("protocol", [5, 3])
def test_a_duplicate_gateway_id_raises_an_alarm_on_status(
    tmp_path: Path, broker: LocalBroker, scanner: PtyScanner, daemons: list[DaemonProcess], protocol: int
) -> None:
    cfg = gateway_config(tmp_path, [broker.url], scanner, gateway_id=GW, protocol=protocol)
    with Subscriber(broker.port, [f"{P}/status"]) as sub:
        d = start_daemon(daemons, cfg, tmp_path)
        wait_online(sub, d, root=P)

        def takeover_alarm() -> dict[str, Any] | None:
            alarms = (a for s in statuses(sub) for a in s.get("alarms", []) if a["alarm"] == "session_takeover")
            return next(alarms, None)

        # Three short connections in a row make the suspicion; the first connection may
        # have lasted (a slow start), so up to five kicks.
        for kick in range(5):
            seen = len(statuses(sub))
            take_session(broker.port, f"gatewayd-{GW}", protocol=protocol)
            # Back online after each kick: the gateway keeps retrying.
            wait_online(sub, d, root=P, since=seen)
            if kick >= 2 and takeover_alarm():
                break
        alarm = wait_until(takeover_alarm, what="a session_takeover alarm on the status topic")
        assert "another client with id 'gatewayd-site-gw' likely takes over the session" in alarm["detail"]
        assert "is gateway.id unique?" in alarm["detail"]
        assert "ALARM session_takeover" in d.log()


def test_a_request_cannot_answer_into_the_scan_stream(
    tmp_path: Path, broker: LocalBroker, scanner: PtyScanner, daemons: list[DaemonProcess]
) -> None:
    cfg = gateway_config(tmp_path, [broker.url], scanner, gateway_id=GW, protocol=5)
    with Subscriber(broker.port, [f"{P}/#"]) as sub:
        d = start_daemon(daemons, cfg, tmp_path)
        wait_online(sub, d, root=P)
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ResponseTopic = f"{P}/scans/dock-03"
        props.CorrelationData = b"evil-1"
        sub.publish(f"{P}/request/health", {"transaction": "inject"}, properties=props)
        answer = sub.wait_for(f"{P}/response/health", lambda p: p.get("transaction") == "inject")
        assert answer["status"] == "error"
        assert answer["error"] == (
            f"response topic '{P}/scans/dock-03' refused: inside gatewayd/ only {P}/response/... may be used"
        )
        # A read afterwards is the first and only message on the scan stream.
        scanner.write(b"SUP1-20261127-000001\r")
        sub.wait_for(f"{P}/scans/")
        stream = sub.payloads(f"{P}/scans/")
        assert [(p["schema"], p["seq"]) for p in stream] == [("gatewayd.scan/1", 1)], stream


def test_two_gateways_with_one_id_both_say_so_and_both_keep_capturing(
    tmp_path: Path, broker: LocalBroker, daemons: list[DaemonProcess]
) -> None:
    gateways = []
    for name in ("a", "b"):
        work = tmp_path / name
        work.mkdir()
        pty = PtyScanner(work)
        cfg = gateway_config(work, [broker.url], pty, gateway_id=GW)  # the same gateway.id
        gateways.append((pty, work, start_daemon(daemons, cfg, work)))
    try:
        with Subscriber(broker.port, [f"{P}/#"]) as sub:
            for _, _, d in gateways:
                wait_until(
                    lambda d=d: "ALARM session_takeover" in d.log() or not d.alive(),
                    timeout=30,
                    what="the session_takeover alarm in each gateway's log",
                )
                assert d.alive(), d.log()
                assert "likely takes over the session: is gateway.id unique?" in d.log()
            # Each still captures and, in its turns on the broker, delivers.
            for i, (pty, _, _) in enumerate(gateways):
                pty.write(f"GW{i}-READ\r".encode())
            wait_until(
                lambda: {p["raw"] for p in sub.payloads(f"{P}/scans/")} >= {"GW0-READ", "GW1-READ"},
                timeout=30,
                what="a read from each gateway",
            )
            alarms = [a for s in statuses(sub) for a in s.get("alarms", []) if a["alarm"] == "session_takeover"]
            assert alarms, "no session_takeover alarm on the status topic"
    finally:
        for pty, _, _ in gateways:
            pty.close()
