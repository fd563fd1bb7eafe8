"""End to end on the engines a site scales onto: a 3-node NATS JetStream cluster with MQTT
and RabbitMQ's MQTT plugin (Debian packages, run by the test; see tests/broker_engines.py).

Both speak MQTT 3.1.1 only, so these also prove ``protocol = "auto"`` (the default)
against real brokers. Select them with ``-m nats`` or ``-m rabbitmq``; RabbitMQ takes 10
to 25 s to start, so it gets one test.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import pytest

from gatewayd.demo.local_broker import LocalBroker, find_mosquitto
from tests.broker_engines import NatsCluster, RabbitMq, find_nats_server, find_rabbitmq_server
from tests.mqtt_tools import (
    DaemonProcess,
    Subscriber,
    gateway_config,
    last_seq_in,
    start_daemon,
    undelivered_in,
    wait_until,
)
from tests.pty_scanner import PtyScanner
from tests.test_mqtt_link import SUSPECTED_TAKEOVER, taken_over_three_times

GW = "engine-gw"
P = f"gatewayd/{GW}"


def seqs(sub: Subscriber) -> set[int]:
    return {p["seq"] for p in sub.payloads(f"{P}/scans/")}


def stream(pty: PtyScanner, start: int, count: int) -> threading.Thread:
    def run() -> None:
        for i in range(start, start + count):
            pty.write(f"SUP1-20261127-{i:06d}\r".encode())

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def auto_config(tmp_path: Path, brokers: list[str], scanner: PtyScanner) -> Path:
    cfg = gateway_config(tmp_path, brokers, scanner, gateway_id=GW)
    # The default protocol, "auto", is what a site gets: drop the helper's explicit one.
    cfg.write_text(re.sub(r"(?m)^protocol = .*\n", "", cfg.read_text()))
    return cfg


def connected_to(d: DaemonProcess) -> list[str]:
    return re.findall(r"mqtt: connected to (\S+) as ", d.log())


def online(sub: Subscriber, since: int = 0) -> bool:
    return any(m.json()["state"] == "online" for m in sub.on(f"{P}/status")[since:])


def went_offline(sub: Subscriber, since: int) -> bool:
    return any(m.json()["state"] == "offline" for m in sub.on(f"{P}/status")[since:])


@pytest.mark.nats
@pytest.mark.skipif(find_nats_server() is None, reason="needs nats-server (apt-get install nats-server)")
def test_nats_cluster_node_killed_mid_stream_every_read_arrives(
    tmp_path: Path, scanner: PtyScanner, daemons: list[DaemonProcess]
) -> None:
    with NatsCluster(tmp_path / "nats") as cluster:
        cfg = auto_config(tmp_path, cluster.urls, scanner)
        # The WMS reads from the third node; the gateway prefers the first.
        with Subscriber(cluster.mqtt_ports[2], [f"{P}/#"], protocol=3) as wms:
            d = start_daemon(daemons, cfg, tmp_path)
            wait_until(lambda: online(wms) or not d.alive(), timeout=30, what="gateway online")
            assert d.alive(), d.log()
            assert connected_to(d) == [cluster.urls[0]]
            log = d.log()
            assert log.count("does not speak MQTT 5") == 1, log
            assert "(MQTT 3.1.1)" in log

            writer = stream(scanner, 0, 600)
            wait_until(lambda: len(seqs(wms)) >= 200, timeout=30, what="stream under way")
            statuses = len(wms.on(f"{P}/status"))
            cluster.kill(0)  # the node the gateway is connected to, kill -9, mid-stream
            writer.join(60)
            wait_until(lambda: online(wms, statuses), timeout=60, what="gateway online on another node")
            wait_until(lambda: last_seq_in(tmp_path) >= 600, timeout=30, what="all 600 reads captured")
            wait_until(lambda: undelivered_in(tmp_path) == 0, timeout=60, what="outbox drained")
            wait_until(lambda: seqs(wms) >= set(range(1, 601)), timeout=30, what="every read at the WMS")
            by_seq: dict[int, dict[str, Any]] = {}
            for p in wms.payloads(f"{P}/scans/"):
                assert by_seq.setdefault(p["seq"], p) == p, f"redelivery of seq {p['seq']} differs"
            assert sorted(by_seq) == list(range(1, 601))
            assert connected_to(d)[-1] in cluster.urls[1:]
            assert "Traceback" not in d.log()
            # Last Will: the gateway dies without a word, the cluster says it is offline.
            before = len(wms.on(f"{P}/status"))
            d.kill9()
            wait_until(lambda: went_offline(wms, before), timeout=30, what="the Last Will (offline)")
            # Persistent session: a request sent while the gateway is down waits for it.
            wms.publish(f"{P}/request/health", {"transaction": "while-down"})
            d.start()
            answer = wms.wait_for(f"{P}/response/health", lambda p: p.get("transaction") == "while-down", timeout=30)
            assert answer["status"] == "ok"


@pytest.mark.rabbitmq
@pytest.mark.skipif(find_rabbitmq_server() is None, reason="needs rabbitmq-server (apt-get install rabbitmq-server)")
def test_rabbitmq_mqtt_plugin_carries_reads_requests_and_an_outage(
    tmp_path: Path, scanner: PtyScanner, daemons: list[DaemonProcess]
) -> None:
    with RabbitMq(tmp_path / "rabbitmq") as rabbit, Subscriber(rabbit.mqtt_port, [f"{P}/#"], protocol=3) as wms:
        cfg = auto_config(tmp_path, [rabbit.url], scanner)
        d = start_daemon(daemons, cfg, tmp_path)
        wait_until(lambda: online(wms) or not d.alive(), timeout=30, what="gateway online")
        assert d.alive(), d.log()
        log = d.log()
        assert log.count("does not speak MQTT 5") == 1, log
        assert f"connected to {rabbit.url} as gatewayd-{GW} (MQTT 3.1.1)" in log

        stream(scanner, 0, 300).join(30)
        wait_until(lambda: seqs(wms) >= set(range(1, 301)), timeout=30, what="300 reads at the WMS")
        # Requests work over 3.1.1: answered on P/response/{command}.
        wms.publish(f"{P}/request/replay", {"transaction": "r1", "from_seq": 1, "to_seq": 3})
        answer = wms.wait_for(f"{P}/response/replay", lambda p: p.get("transaction") == "r1")
        assert answer["status"] == "ok" and answer["data"]["count"] == 3
        # The retained status: a subscriber arriving now sees the gateway.
        with Subscriber(rabbit.mqtt_port, [f"{P}/status"], protocol=3) as late:
            status = late.wait_for(f"{P}/status")
            assert status["state"] == "online"
        assert "Traceback" not in d.log()
        before = len(wms.on(f"{P}/status"))
        d.kill9()  # Last Will: no goodbye, and the broker says offline
        wait_until(lambda: went_offline(wms, before), timeout=30, what="the Last Will (offline)")
        # Persistent session: a request sent while the gateway is down waits for it.
        wms.publish(f"{P}/request/health", {"transaction": "while-down"})
        d.start()
        answer = wms.wait_for(f"{P}/response/health", lambda p: p.get("transaction") == "while-down", timeout=30)
        assert answer["status"] == "ok"


@pytest.mark.nats
@pytest.mark.skipif(find_nats_server() is None, reason="needs nats-server (apt-get install nats-server)")
@pytest.mark.skipif(find_mosquitto() is None, reason="needs mosquitto (MQTT 5)")
def test_fails_over_mid_stream_from_mqtt5_mosquitto_to_mqtt311_nats(
    tmp_path: Path, scanner: PtyScanner, daemons: list[DaemonProcess]
) -> None:
    # One paho client for both: what is in flight on MQTT 5 is re-sent on 3.1.1.
    with (
        LocalBroker(workdir=tmp_path / "mosquitto") as mosquitto,
        NatsCluster(tmp_path / "nats") as cluster,
        Subscriber(mosquitto.port, [f"{P}/#"]) as wms5,
        Subscriber(cluster.mqtt_ports[1], [f"{P}/#"], protocol=3) as wms3,
    ):
        cfg = auto_config(tmp_path, [mosquitto.url, cluster.urls[0]], scanner)
        d = start_daemon(daemons, cfg, tmp_path)
        wait_until(lambda: online(wms5) or not d.alive(), timeout=30, what="gateway online")
        assert d.alive(), d.log()
        assert f"connected to {mosquitto.url} as gatewayd-{GW} (MQTT 5)" in d.log()
        writer = stream(scanner, 0, 600)
        wait_until(lambda: len(seqs(wms5)) >= 200, timeout=30, what="stream under way")
        mosquitto.kill()
        wait_until(lambda: online(wms3), timeout=60, what="gateway online on NATS")
        writer.join(60)
        wait_until(lambda: last_seq_in(tmp_path) >= 600, timeout=30, what="all 600 reads captured")
        wait_until(lambda: undelivered_in(tmp_path) == 0, timeout=60, what="outbox drained")
        assert f"connected to {cluster.urls[0]} as gatewayd-{GW} (MQTT 3.1.1)" in d.log()
        wms3.publish(f"{P}/request/health", {"transaction": "h"})
        health = wms3.wait_for(f"{P}/response/health", lambda p: p.get("transaction") == "h")["data"]["mqtt"]
        assert (health["broker"], health["protocol"]) == (cluster.urls[0], "3.1.1")
        # What mosquitto acknowledged and died with is the WMS's to ask for (README:
        # "Consuming events"); everything else arrived live.
        missing = sorted(set(range(1, 601)) - seqs(wms5) - seqs(wms3))
        if missing:
            wms3.publish(f"{P}/request/replay", {"transaction": "gap", "from_seq": missing[0], "to_seq": missing[-1]})
            assert wms3.wait_for(f"{P}/response/replay", lambda p: p.get("transaction") == "gap")["status"] == "ok"
        wait_until(lambda: seqs(wms5) | seqs(wms3) >= set(range(1, 601)), timeout=30, what="every read")
        assert seqs(wms3), "nothing went through NATS: the failover came after the stream"
        assert "Traceback" not in d.log()


@pytest.mark.nats
@pytest.mark.skipif(find_nats_server() is None, reason="needs nats-server (apt-get install nats-server)")
async def test_a_session_takeover_on_nats_is_named(tmp_path: Path) -> None:
    # NATS closes the connection of a client taken over, without a word (MQTT 3.1.1).
    with NatsCluster(tmp_path / "nats", nodes=1) as nats:
        assert await taken_over_three_times(nats.mqtt_ports[0], 3) == [("session_takeover", SUSPECTED_TAKEOVER)]
