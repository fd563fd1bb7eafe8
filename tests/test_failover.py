"""The real daemon's MQTT session under failover, outages and both protocol versions.

A TCP proxy between gateway and broker cuts the gateway's connection while the broker
keeps running, so the broker keeps the gateway's MQTT 5 session (subscriptions and the
requests queued for it) and the test can see what survives a cut.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gatewayd.demo.local_broker import LocalBroker, find_mosquitto, free_port
from tests.mqtt_tools import (
    DaemonProcess,
    Subscriber,
    gateway_config,
    last_seq_in,
    start_daemon,
    undelivered_in,
    wait_online,
    wait_until,
)
from tests.pty_scanner import PtyScanner
from tests.tcp_proxy import TcpProxy

GW = "fo-gw"
P = f"gatewayd/{GW}"

pytestmark = pytest.mark.skipif(find_mosquitto() is None, reason="needs mosquitto (MQTT 5)")


def config(tmp_path: Path, brokers: list[str], pty: PtyScanner, **kwargs: Any) -> Path:
    return gateway_config(tmp_path, brokers, pty, gateway_id=GW, **kwargs)


def scans(sub: Subscriber) -> list[dict[str, Any]]:
    return sub.payloads(f"{P}/scans/")


def seqs(*subs: Subscriber) -> set[int]:
    return {p["seq"] for sub in subs for p in scans(sub)}


def stream(pty: PtyScanner, start: int, count: int) -> threading.Thread:
    def run() -> None:
        for i in range(start, start + count):
            pty.write(f"SUP1-20261127-{i:06d}\r".encode())

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def request(sub: Subscriber, command: str, tx: str, body: dict[str, Any] | None = None, **kwargs: Any) -> None:
    sub.publish(f"{P}/request/{command}", {"transaction": tx, **(body or {})}, **kwargs)


def response(sub: Subscriber, command: str, tx: str, *, timeout: float = 10.0) -> dict[str, Any]:
    found = sub.wait_for(f"{P}/response/{command}", lambda p: p.get("transaction") == tx, timeout=timeout)
    assert isinstance(found, dict)
    return found


def went_offline(sub: Subscriber, since: int) -> bool:
    return any(m.json()["state"] == "offline" for m in sub.on(f"{P}/status")[since:])


def answered_health(sub: Subscriber, tx: str) -> dict[str, Any]:
    request(sub, "health", tx)
    answer = response(sub, "health", tx)
    assert answer["status"] == "ok", answer
    return answer


# -- failover ------------------------------------------------------------------------------


def test_failover_between_two_brokers_loses_nothing(
    tmp_path: Path, scanner: PtyScanner, daemons: list[DaemonProcess]
) -> None:
    first = LocalBroker(workdir=tmp_path / "first", port=free_port())  # down at start
    with LocalBroker(workdir=tmp_path / "second") as second, Subscriber(second.port, [f"{P}/#"]) as sub2:
        cfg = config(tmp_path, [first.url, second.url], scanner)
        d = start_daemon(daemons, cfg, tmp_path)
        wait_online(sub2, d, root=P)
        health = answered_health(sub2, "h1")["data"]["mqtt"]
        assert (health["broker"], health["protocol"]) == (second.url, "5")
        sub2.wait_for(f"{P}/devices/dock-03-left/state", lambda p: p["state"] == "connected")
        stream(scanner, 0, 300).join(30)
        wait_until(lambda: seqs(sub2) >= set(range(1, 301)), timeout=20, what="first 300 at the second broker")

        # The preferred broker comes back, the one in use dies mid-stream (kill -9).
        with first, Subscriber(first.port, [f"{P}/#"]) as sub1:
            writer = stream(scanner, 1000, 700)
            wait_until(lambda: len(scans(sub2)) >= 500, timeout=20, what="stream under way")
            second.kill()
            wait_online(sub1, d, root=P)
            writer.join(30)
            wait_until(lambda: last_seq_in(tmp_path) >= 1000, timeout=20, what="all 1000 reads captured")
            wait_until(lambda: undelivered_in(tmp_path) == 0, timeout=20, what="outbox drained")
            assert answered_health(sub1, "h2")["data"]["mqtt"]["broker"] == first.url
            # Events the dying broker acknowledged but never forwarded are the WMS's to
            # ask for again; everything else arrived live, in order, across both brokers.
            missing = sorted(set(range(1, 1001)) - seqs(sub1, sub2))
            if missing:
                request(sub1, "replay", "gap", {"from_seq": missing[0], "to_seq": missing[-1]})
                assert response(sub1, "replay", "gap")["status"] == "ok"
                wait_until(lambda: seqs(sub1, sub2) >= set(range(1, 1001)), timeout=20, what="gaps replayed")
            by_seq: dict[int, dict[str, Any]] = {}
            for p in scans(sub2) + scans(sub1):
                assert by_seq.setdefault(p["seq"], p) == p, f"redelivery of seq {p['seq']} differs"
            assert sorted(by_seq) == list(range(1, 1001))
            assert len({p["event_id"] for p in by_seq.values()}) == 1000
            assert scans(sub1), "the second broker died after the stream ended: nothing failed over"
            live1 = [p["seq"] for p in scans(sub1) if p["seq"] not in missing]
            assert live1 == sorted(live1), "events at the first broker arrived out of seq order"
            log = d.log()
            assert f"connected to {second.url}" in log and f"connected to {first.url}" in log
            assert "Traceback" not in log



def test_fails_back_to_the_preferred_broker_when_it_returns(
    tmp_path: Path, scanner: PtyScanner, daemons: list[DaemonProcess]
) -> None:
    first = LocalBroker(workdir=tmp_path / "first", port=free_port())  # down at start
    with LocalBroker(workdir=tmp_path / "second") as second, Subscriber(second.port, [f"{P}/#"]) as sub2:
        cfg = config(tmp_path, [first.url, second.url], scanner, mqtt="failback_s = 0.5")
        d = start_daemon(daemons, cfg, tmp_path)
        wait_online(sub2, d, root=P)
        sub2.wait_for(f"{P}/devices/dock-03-left/state", lambda p: p["state"] == "connected")
        with first, Subscriber(first.port, [f"{P}/#"]) as sub1:
            wait_online(sub1, d, root=P)
            assert answered_health(sub1, "fb")["data"]["mqtt"]["broker"] == first.url
            stream(scanner, 0, 200).join(30)
            wait_until(lambda: seqs(sub1) >= set(range(1, 201)), timeout=20, what="reads at the preferred broker")
            assert "preferred broker" in d.log() and "moving back to it" in d.log()
            # The fallback broker keeps running: the gateway stays where it belongs.
            assert not scans(sub2)

# -- both protocol versions ------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [3, 5])
def test_end_to_end_with_protocol(
    tmp_path: Path, scanner: PtyScanner, daemons: list[DaemonProcess], protocol: int
) -> None:
    with LocalBroker(workdir=tmp_path / "broker") as broker, \
            Subscriber(broker.port, [f"{P}/#"], protocol=protocol) as sub:
        cfg = config(tmp_path, [broker.url], scanner, protocol=protocol)
        d = start_daemon(daemons, cfg, tmp_path)
        wait_online(sub, d, root=P)
        sub.wait_for(f"{P}/devices/dock-03-left/state", lambda p: p["state"] == "connected")
        scanner.write(b"]C1010950600013435210ABC123\x1d17271231\r")
        scan = sub.wait_for(f"{P}/scans/dock-03")
        assert (scan["kind"], scan["gtin"], scan["lot"], scan["seq"]) == ("gs1", "09506000134352", "ABC123", 1)
        answer = answered_health(sub, "h-1")
        assert answer["data"]["outbox"]["last_seq"] == 1
        request(sub, "station/step", "s-1", {"station": "dock-03", "step": "dispatch"})
        assert response(sub, "station/step", "s-1")["status"] == "ok"
        sub.wait_for(f"{P}/stations/dock-03/state", lambda p: p["step"] == "dispatch")
        request(sub, "nonsense", "bad-1")
        assert response(sub, "nonsense", "bad-1")["status"] == "error"
        expected = "MQTT 5" if protocol == 5 else "MQTT 3.1.1"
        assert expected in d.log()
        assert d.terminate() == 0
        assert sub.on(f"{P}/status")[-1].json()["state"] == "offline"
        assert "Traceback" not in d.log()


def test_mqtt5_response_topic_and_correlation_data_are_honoured(
    tmp_path: Path, scanner: PtyScanner, daemons: list[DaemonProcess]
) -> None:
    with LocalBroker(workdir=tmp_path / "broker") as broker, \
            Subscriber(broker.port, [f"{P}/#", "wms/replies/#"]) as sub:
        d = start_daemon(daemons, config(tmp_path, [broker.url], scanner), tmp_path)
        wait_online(sub, d, root=P)
        for i, correlation in enumerate([b"\x00\x01corr-\xff", b"second"]):
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.ResponseTopic = f"wms/replies/{i}"
            props.CorrelationData = correlation
            request(sub, "health", f"rr-{i}", properties=props)
            reply = wait_until(lambda t=f"wms/replies/{i}": sub.on(t), timeout=10, what="the reply")[0]
            assert reply.json()["transaction"] == f"rr-{i}"
            assert reply.json()["status"] == "ok"
            assert reply.properties.CorrelationData == correlation
        # Answered on the response topic only, not also on the default one.
        assert not sub.on(f"{P}/response/health")


# -- outages, with the broker running ----------------------------------------------------------


def cut_and_wait_offline(proxy: TcpProxy, sub: Subscriber) -> None:
    since = len(sub.on(f"{P}/status"))
    proxy.cut()
    # The broker publishes the Last Will when it sees the connection die.
    wait_until(lambda: went_offline(sub, since), timeout=15, what="the broker noticing the cut (LWT)")


def test_requests_sent_while_disconnected_are_answered_after_reconnect(
    tmp_path: Path, scanner: PtyScanner, daemons: list[DaemonProcess]
) -> None:
    with LocalBroker(workdir=tmp_path / "broker") as broker, TcpProxy(broker.port) as proxy, \
            Subscriber(broker.port, [f"{P}/#"]) as sub:
        d = start_daemon(daemons, config(tmp_path, [f"mqtt://127.0.0.1:{proxy.port}"], scanner), tmp_path)
        wait_online(sub, d, root=P)
        answered_health(sub, "before")  # subscribed: the broker's session holds request/#
        cut_and_wait_offline(proxy, sub)
        request(sub, "health", "while-cut")
        request(sub, "station/step", "step-while-cut", {"station": "dock-03", "step": "picking"})
        wait_until(lambda: proxy.refused >= 2, timeout=10, what="reconnect attempts during the cut")
        assert not sub.find(f"{P}/response/", lambda p: p.get("transaction") in ("while-cut", "step-while-cut"))
        since = len(sub.on(f"{P}/status"))
        proxy.restore()
        wait_online(sub, d, since=since, root=P)
        assert response(sub, "health", "while-cut")["status"] == "ok"
        assert response(sub, "station/step", "step-while-cut")["status"] == "ok"
        sub.wait_for(f"{P}/stations/dock-03/state", lambda p: p["step"] == "picking")
        log = d.log()
        assert f"connection to mqtt://127.0.0.1:{proxy.port} lost" in log
        assert "Traceback" not in log


def test_backlog_drains_oldest_first_while_requests_are_answered(
    tmp_path: Path, scanner: PtyScanner, daemons: list[DaemonProcess]
) -> None:
    total = 3000
    with LocalBroker(workdir=tmp_path / "broker") as broker, TcpProxy(broker.port) as proxy, \
            Subscriber(broker.port, [f"{P}/#"]) as sub:
        cfg = config(tmp_path, [f"mqtt://127.0.0.1:{proxy.port}"], scanner,
                     outbox="drain_rate = 500\nsynchronous = \"normal\"")
        cfg.write_text(cfg.read_text().replace("drain_rate = 0\n", ""))
        d = start_daemon(daemons, cfg, tmp_path)
        wait_online(sub, d, root=P)
        sub.wait_for(f"{P}/devices/dock-03-left/state", lambda p: p["state"] == "connected")
        cut_and_wait_offline(proxy, sub)
        stream(scanner, 0, total).join(60)
        wait_until(lambda: last_seq_in(tmp_path) >= total, timeout=30, what="the reads captured during the outage")
        assert not scans(sub)
        since = len(sub.on(f"{P}/status"))
        proxy.restore()
        wait_online(sub, d, since=since, root=P)
        request(sub, "health", "after-outage")
        answer = response(sub, "health", "after-outage", timeout=5)
        seen_at_answer = seqs(sub)
        assert answer["data"]["outbox"]["depth"] > 0
        assert total not in seen_at_answer, "the health answer waited behind the whole backlog"
        assert len(seen_at_answer) < total // 2
        wait_until(lambda: len(seqs(sub)) >= total, timeout=30, what="the backlog drained")
        order = [p["seq"] for p in scans(sub)]
        assert order == list(range(1, total + 1)), "the backlog did not drain oldest first, once each"
        assert json.loads(sub.on(f"{P}/status")[-1].payload)["state"] == "online"
        assert "Traceback" not in d.log()
