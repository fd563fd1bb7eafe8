"""A one-shot MQTT client that sends a request to a running gateway and waits for its answer."""

from __future__ import annotations

import json
import queue
import ssl
import uuid
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from gatewayd.config import Settings

__all__ = ["request"]


def request(settings: Settings, command: str, body: dict[str, Any], *, timeout: float = 10.0) -> dict[str, Any]:
    """Publish ``P/request/{command}`` and return the matching ``P/response/{command}``."""
    root = settings.topic_root
    transaction = f"cli-{uuid.uuid4().hex[:12]}"
    answers: queue.Queue[dict[str, Any]] = queue.Queue()
    subscribed: queue.Queue[bool] = queue.Queue()
    m = settings.mqtt
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"gatewayd-cli-{uuid.uuid4().hex[:8]}",
        protocol=MQTTProtocolVersion.MQTTv5 if m.protocol == 5 else MQTTProtocolVersion.MQTTv311,
    )
    if m.username:
        password = m.password_file.read_text().rstrip("\r\n") if m.password_file else None
        client.username_pw_set(m.username, password)

    def on_message(c: paho.Client, u: Any, msg: paho.MQTTMessage) -> None:
        try:
            answer = json.loads(msg.payload)
        except ValueError:
            return
        if isinstance(answer, dict) and answer.get("transaction") == transaction:
            answers.put(answer)

    client.on_message = on_message
    client.on_subscribe = lambda *a: subscribed.put(True)
    last_error: Exception | None = None
    for broker in m.brokers:
        try:
            if broker.tls:
                ctx = ssl.create_default_context(cafile=str(m.ca_file) if m.ca_file else None)
                if m.cert_file and m.key_file:
                    ctx.load_cert_chain(str(m.cert_file), str(m.key_file))
                client.tls_set_context(ctx)
            client.connect(broker.host, broker.port, keepalive=30)
            break
        except OSError as exc:
            last_error = exc
    else:
        raise TimeoutError(f"cannot reach any broker ({last_error})")
    client.loop_start()
    try:
        client.subscribe(f"{root}/response/{command}", qos=1)
        subscribed.get(timeout=timeout)
        payload = dict(body, transaction=transaction)
        client.publish(f"{root}/request/{command}", json.dumps(payload), qos=1)
        try:
            return answers.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(
                f"no answer from gateway {settings.gateway.id} on {root}/response/{command} within {timeout:g} s "
                "(is gatewayd running and connected?)"
            ) from None
    finally:
        client.disconnect()
        client.loop_stop()
