"""The MQTT link alone, in this event loop, against misbehaving brokers on real sockets."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from gatewayd.config import BrokerUrl, MqttSettings
from gatewayd.delivery import mqtt_link
from gatewayd.delivery.mqtt_link import MqttLink
from gatewayd.demo.local_broker import LocalBroker, find_mosquitto
from tests.fake_broker import FakeBroker
from tests.mqtt_tools import Subscriber

needs_mosquitto = pytest.mark.skipif(find_mosquitto() is None, reason="needs mosquitto (MQTT 5)")


def settings(*ports: int, **kwargs: Any) -> MqttSettings:
    return MqttSettings(
        brokers=tuple(BrokerUrl("mqtt", "127.0.0.1", p) for p in ports),
        reconnect_min_s=0.05,
        reconnect_max_s=0.2,
        **kwargs,
    )


def link(s: MqttSettings, *, client_id: str = "gatewayd-link-test", **kwargs: Any) -> MqttLink:
    return MqttLink(
        settings=s,
        client_id=client_id,
        will_topic="gatewayd/link-test/status",
        will_payload=b'{"state":"offline"}',
        subscriptions=["gatewayd/link-test/request/#"],
        **kwargs,
    )


async def until(predicate: Callable[[], Any], *, timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.01)
    return value


@needs_mosquitto
@pytest.mark.parametrize("protocol", [5, 3])
async def test_keeps_reconnecting_when_the_broker_closes_right_after_connack(
    tmp_path: Path, protocol: int
) -> None:
    # A broker that accepts (CONNACK) and closes in the same breath used to leave the
    # link waiting forever for a loss it had already processed.
    with (
        LocalBroker(workdir=tmp_path / "broker") as real,
        FakeBroker(mode="connack_close", upstream_port=real.port) as fake,
    ):
        async with link(settings(fake.port, protocol=protocol)) as lk:
            # Messages waiting for their PUBACK make paho read every packet the
            # socket holds at once: the CONNACK and the close in one callback.
            for i in range(3):
                lk.publish("gatewayd/link-test/scans/x", f"{i}".encode())
            await until(lambda: len(fake.attempts) >= 5, what="five connection attempts at the fake broker")
            assert set(fake.attempts) == {5 if protocol == 5 else 4}
            # ... and never in a tight loop: each retry waits at least the jittered
            # reconnect_min_s (0.05 s, +-20 %).
            gaps = [b - a for a, b in zip(fake.attempt_times, fake.attempt_times[1:], strict=False)]
            assert min(gaps) >= 0.04, gaps
            fake.mode = "forward"  # the broker behaves again
            await until(lambda: lk.connected, what="a connection to the real broker")
            assert lk.broker == BrokerUrl("mqtt", "127.0.0.1", fake.port)


async def test_a_long_outage_before_does_not_slow_the_first_retry_of_a_dropped_connection() -> None:
    # The backoff of failed attempts has grown to its maximum (1 s) when the broker starts
    # accepting; the connection it accepts drops at once, and the retry comes after
    # reconnect_min_s, growing from there.
    with FakeBroker(mode="close") as fake:
        s = MqttSettings(
            brokers=(BrokerUrl("mqtt", "127.0.0.1", fake.port),),
            protocol=3,
            reconnect_min_s=0.05,
            reconnect_max_s=1.0,
        )
        async with link(s):
            await until(lambda: len(fake.attempts) >= 7, what="the failed attempts' backoff at its maximum")
            fake.mode = "connack_close"
            first = len(fake.attempts)
            await until(lambda: len(fake.attempts) >= first + 3, what="three accepted connections")
    t = fake.attempt_times
    # Delays 0.05, 0.1, 0.2, 0.4, 0.8, then 1 s, each +-20 %: the 7th attempt waited 1 s.
    assert t[first - 1] - t[first - 2] >= 0.75, t
    assert t[first + 1] - t[first] < 0.3, t[first:]


def same_id_client(port: int, client_id: str, *, protocol: int) -> paho.Client:
    """Another client with the link's id: connecting takes the session over."""
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
    assert connected.wait(10), "the second client got no CONNACK"
    return c


async def test_names_an_mqtt5_session_takeover_and_keeps_reconnecting(caplog: pytest.LogCaptureFixture) -> None:
    problems: list[tuple[str, str | None]] = []
    with FakeBroker(mode="takeover") as fake:
        async with link(settings(fake.port, protocol=5), on_problem=lambda *p: problems.append(p)):
            await until(lambda: len(fake.attempts) >= 4, what="four connection attempts at the fake broker")
    takeover = "another client with id 'gatewayd-link-test' took over the session: is gateway.id unique?"
    assert problems[0] == ("session_takeover", takeover)
    assert f"lost ({takeover})" in caplog.text


@needs_mosquitto
async def test_the_takeover_alarm_clears_once_a_connection_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mqtt_link, "TAKEOVER_CLEAR_AFTER_S", 1.0)  # 60 s in service
    problems: list[tuple[str, str | None]] = []
    with (
        LocalBroker(workdir=tmp_path / "broker") as real,
        FakeBroker(mode="takeover", upstream_port=real.port) as fake,
    ):
        async with link(settings(fake.port, protocol=5), on_problem=lambda *p: problems.append(p)) as lk:
            await until(lambda: problems, what="a session-takeover problem")
            fake.mode = "forward"  # the other client is gone
            await until(lambda: lk.connected, what="a connection that holds")
            assert problems[-1][1] is not None
            await until(lambda: problems[-1] == ("session_takeover", None), timeout=5, what="the problem cleared")
            assert lk.connected
            assert [p for p in problems if p[1] is None] == [("session_takeover", None)]


SUSPECTED_TAKEOVER = (
    "the broker closed 3 connections in a row soon after accepting them: another client with id "
    "'gatewayd-link-test' likely takes over the session: is gateway.id unique? "
    "(if it is, the broker's log says why it closes them)"
)


async def taken_over_three_times(port: int, protocol: int) -> list[tuple[str, str | None]]:
    """Let another client with the link's id take its session 3 times; the problems seen."""
    problems: list[tuple[str, str | None]] = []
    async with link(settings(port, protocol=protocol), on_problem=lambda *p: problems.append(p)) as lk:
        for kick in range(3):
            await until(lambda: lk.connected, what=f"the link connected before kick {kick + 1}")
            assert problems == []
            other = await asyncio.to_thread(same_id_client, port, lk.client_id, protocol=protocol)
            await until(lambda: not lk.connected, what=f"kick {kick + 1}")
            other.disconnect()
            other.loop_stop()
        await until(lambda: problems, what="a session-takeover problem")
        await until(lambda: lk.connected, what="the link connected again")
    return problems


@needs_mosquitto
@pytest.mark.parametrize("protocol", [5, 3])
async def test_suspects_a_session_takeover_after_repeated_short_connections(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, protocol: int
) -> None:
    # MQTT 3.1.1 has no DISCONNECT from the broker, and mosquitto 2.0 closes an MQTT 5
    # client taken over without one too: the link only sees closes soon after
    # connecting, again and again, while the broker itself is up.
    with LocalBroker(workdir=tmp_path / "broker") as broker:
        assert await taken_over_three_times(broker.port, protocol) == [("session_takeover", SUSPECTED_TAKEOVER)]
    assert "likely takes over the session" in caplog.text


@needs_mosquitto
@pytest.mark.parametrize("refuse", ["connack", "close"])
async def test_auto_falls_back_to_mqtt311_for_a_broker_that_refuses_5_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, refuse: Any
) -> None:
    acks: list[int] = []
    with (
        LocalBroker(workdir=tmp_path / "broker") as real,
        FakeBroker(mode="v311_only", upstream_port=real.port, refuse=refuse) as fake,
        Subscriber(real.port, ["gatewayd/link-test/scans/#"], protocol=3) as sub,
    ):
        async with link(settings(fake.port), on_ack=lambda mid, ok, reason: acks.append(mid)) as lk:
            # Handed over before any connection: they must survive the protocol switch.
            mids = [lk.publish("gatewayd/link-test/scans/x", f"read {i}".encode()) for i in range(3)]
            await until(lambda: lk.connected, what="a connection in MQTT 3.1.1")
            assert fake.attempts == [5, 4] and not lk.v5
            await until(lambda: sorted(acks) == sorted(mids), what="the PUBACKs of the early messages")
            await until(lambda: len(sub.on("gatewayd/link-test/scans/")) >= 3, what="the early messages")
            # A reconnect goes straight to 3.1.1 with this broker.
            lk.client.disconnect()
            await until(lambda: not lk.connected, what="the disconnect")
            await until(lambda: lk.connected, what="the reconnect")
            assert fake.attempts == [5, 4, 4]
    assert [m.payload for m in sub.on("gatewayd/link-test/scans/")] == [b"read 0", b"read 1", b"read 2"]
    said = [r.getMessage() for r in caplog.records if "does not speak MQTT 5" in r.getMessage()]
    assert len(said) == 1, said
    assert f"mqtt: mqtt://127.0.0.1:{fake.port} does not speak MQTT 5 (" in said[0]
    assert "trying MQTT 3.1.1 with it" in said[0]


async def test_explicit_mqtt5_against_a_311_broker_says_what_to_change(caplog: pytest.LogCaptureFixture) -> None:
    with FakeBroker(mode="v311_only") as fake:
        async with link(settings(fake.port, protocol=5)) as lk:
            await until(lambda: len(fake.attempts) >= 2, what="two attempts")
            assert not lk.connected and set(fake.attempts) == {5}
    assert (
        f"cannot connect to mqtt://127.0.0.1:{fake.port}: CONNACK: Unsupported protocol version: "
        'it does not seem to speak MQTT 5 (set mqtt.protocol = "auto" or 3)'
    ) in caplog.text
