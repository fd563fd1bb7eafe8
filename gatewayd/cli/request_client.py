"""A one-shot MQTT client that sends a request to a running gateway and waits for its answer.

Every wait is bounded (the TCP/TLS connect, CONNACK, SUBACK, the answer) and every
failure is a :class:`RequestFailed` that names the broker and what did not happen, which
the CLI prints as one ``gatewayd: error:`` line.
"""

from __future__ import annotations

import json
import queue
import ssl
import uuid
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from gatewayd.config import BrokerUrl, Settings
from gatewayd.errors import RequestFailed

__all__ = ["request"]

UNSUPPORTED_PROTOCOL = 0x84  # MQTT 5 section 3.2.2.2: CONNACK "Unsupported Protocol Version"


def request(settings: Settings, command: str, body: dict[str, Any], *, timeout: float = 10.0) -> dict[str, Any]:
    """Publish ``P/request/{command}`` and return the matching ``P/response/{command}``.

    Brokers are tried in configured order; the first that accepts the connection and the
    subscription carries the request.
    """
    transaction = f"cli-{uuid.uuid4().hex[:12]}"
    failures: list[str] = []
    # "auto": MQTT 5 first, 3.1.1 when the broker refuses 5, as the daemon's link does.
    versions = [5, 3] if settings.mqtt.protocol == "auto" else [settings.mqtt.protocol]
    for broker in settings.mqtt.brokers:
        answers: queue.Queue[dict[str, Any]] = queue.Queue()
        client = None
        for version in versions:
            client, older = _connect(
                settings,
                broker=broker,
                version=version,
                answers=answers,
                transaction=transaction,
                timeout=timeout,
                failures=failures,
            )
            if client is not None or not older:
                break
        if client is None:
            continue
        try:
            payload = dict(body, transaction=transaction)
            return _ask(
                client, settings, broker=broker, command=command, payload=payload, answers=answers, timeout=timeout
            )
        finally:
            client.disconnect()
            client.loop_stop()
    raise RequestFailed(f"cannot reach any broker: {'; '.join(failures)}")


def _connect(
    settings: Settings,
    *,
    broker: BrokerUrl,
    version: int,
    answers: queue.Queue[dict[str, Any]],
    transaction: str,
    timeout: float,
    failures: list[str],
) -> tuple[paho.Client | None, bool]:
    """A connected client (CONNACK accepted) with its network loop running, or ``None``
    and whether the broker refused this protocol version (so an older one may do)."""
    m = settings.mqtt
    # One client per broker: paho refuses a second TLS setup on the same client, and a
    # plain mqtt:// broker after an mqtts:// one must not inherit its TLS.
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"gatewayd-cli-{uuid.uuid4().hex[:8]}",
        protocol=MQTTProtocolVersion.MQTTv5 if version == 5 else MQTTProtocolVersion.MQTTv311,
    )
    client.connect_timeout = timeout
    if m.username:
        password = m.password_file.read_text().rstrip("\r\n") if m.password_file else None
        client.username_pw_set(m.username, password)
    connacks: queue.Queue[tuple[str | None, bool]] = queue.Queue()  # (problem, protocol refused)

    def on_connect(c: paho.Client, u: Any, flags: Any, reason: Any, props: Any = None) -> None:
        if reason.is_failure:
            connacks.put((f"refused the connection ({reason})", reason.value == UNSUPPORTED_PROTOCOL))
        else:
            connacks.put((None, False))

    def on_disconnect(c: paho.Client, u: Any, flags: Any, reason: Any, props: Any = None) -> None:
        # Before any CONNACK: a 3.1.1-only broker (RabbitMQ 3.x) closes on an MQTT 5 CONNECT.
        connacks.put(("closed the connection before CONNACK", version == 5))

    def on_message(c: paho.Client, u: Any, msg: paho.MQTTMessage) -> None:
        try:
            answer = json.loads(msg.payload)
        except ValueError:
            return
        if isinstance(answer, dict) and answer.get("transaction") == transaction:
            answers.put(answer)

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.on_message = on_message
    try:
        if broker.tls:
            ctx = ssl.create_default_context(cafile=str(m.ca_file) if m.ca_file else None)
            if m.cert_file and m.key_file:
                ctx.load_cert_chain(str(m.cert_file), str(m.key_file))
            client.tls_set_context(ctx)
        client.connect(broker.host, broker.port, keepalive=30)
    except (OSError, ValueError) as exc:  # refused, unreachable, TLS handshake, bad files
        failures.append(f"{broker}: {exc}")
        return None, False
    client.loop_start()
    try:
        problem, older = connacks.get(timeout=timeout)
    except queue.Empty:
        problem, older = f"no CONNACK within {timeout:g} s", False
    if problem is not None:
        client.on_disconnect = None
        client.disconnect()
        client.loop_stop()
        failures.append(f"{broker} (MQTT {'5' if version == 5 else '3.1.1'}): {problem}")
        return None, older
    client.on_disconnect = None
    return client, False


def _ask(
    client: paho.Client,
    settings: Settings,
    *,
    broker: BrokerUrl,
    command: str,
    payload: dict[str, Any],
    answers: queue.Queue[dict[str, Any]],
    timeout: float,
) -> dict[str, Any]:
    root = settings.topic_root
    subacks: queue.Queue[str | None] = queue.Queue()

    def on_subscribe(c: paho.Client, u: Any, mid: int, reasons: list[Any], props: Any = None) -> None:
        refused = [str(r) for r in reasons if r.is_failure]
        subacks.put(f"refused the subscription ({', '.join(refused)})" if refused else None)

    client.on_subscribe = on_subscribe
    client.subscribe(f"{root}/response/{command}", qos=1)
    try:
        problem = subacks.get(timeout=timeout)
    except queue.Empty:
        problem = f"no SUBACK for {root}/response/{command} within {timeout:g} s"
    if problem is not None:
        raise RequestFailed(f"broker {broker}: {problem}")
    client.publish(f"{root}/request/{command}", json.dumps(payload), qos=1)
    try:
        return answers.get(timeout=timeout)
    except queue.Empty:
        raise RequestFailed(
            f"no answer from gateway {settings.gateway.id} on {root}/response/{command} within {timeout:g} s "
            f"(is gatewayd running and connected to {broker}?)"
        ) from None
