"""The MQTT connection: paho-mqtt driven by the asyncio loop, with broker failover.

paho's socket callbacks hand its socket to the event loop (the aiomqtt approach), so
every paho callback runs on the loop thread: no locks between MQTT and the outbox. Only
the blocking TCP/TLS connect runs in a worker thread.

Brokers are tried in configured order; after a failed round, or after a connection
that did not last, the link waits a capped, jittered delay. paho keeps QoS 1 messages
it was handed and re-sends them after a reconnect, to whichever broker it reaches, in
the order they were handed over.

Each connection attempt gets its own "lost" event, created before the CONNECT goes
out: paho may read the CONNACK and the close in one callback (it reads as many packets
as it has messages in flight), so a loss can be processed before the supervisor even
learns that the connection was accepted, and it must not be forgotten.

With ``protocol = "auto"`` each broker is first asked for MQTT 5; a broker that refuses
it (CONNACK "unsupported protocol version", or a close before any CONNACK) is spoken
to in MQTT 3.1.1 from then on, on the same paho client, so the messages in flight stay.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gatewayd.config import BrokerUrl, MqttSettings
from gatewayd.delivery.paho_adapter import PahoClient, inflight_count, set_protocol, use_tls
from gatewayd.errors import ConfigError
from gatewayd_drivers.backoff import Backoff

__all__ = ["Message", "MqttLink", "ProblemCallback", "check_credentials"]

log = logging.getLogger("gatewayd.mqtt")

SESSION_EXPIRY_S = 7 * 24 * 3600  # broker keeps our subscriptions and queued requests a week
STABLE_AFTER_S = 10.0  # a connection that lasted this long was healthy: reconnect at once
TAKEOVER_SUSPECT_AFTER = 3  # short connections in a row, each closed by the broker
TAKEOVER_CLEAR_AFTER_S = 60.0  # at least; a connection this long ends a takeover alarm
SESSION_TAKEN_OVER = 0x8E  # MQTT 5 section 3.14.2.1: DISCONNECT reason "Session taken over"
UNSUPPORTED_PROTOCOL = 0x84  # MQTT 5 section 3.2.2.2: CONNACK "Unsupported Protocol Version"

ProblemCallback = Callable[[str, str | None], None]
"""``(name, detail)``: a problem the link sees (``detail``), or that it is over (``None``)."""


class Message:
    """An incoming message, with MQTT 5 response topic and correlation data when sent."""

    __slots__ = ("correlation_data", "payload", "response_topic", "topic")

    def __init__(
        self, topic: str, payload: bytes, response_topic: str | None, correlation_data: bytes | None
    ) -> None:
        self.topic = topic
        self.payload = payload
        self.response_topic = response_topic
        self.correlation_data = correlation_data


class MqttLink:
    """One logical MQTT session over a list of brokers.

    ``on_connected`` runs on every (re)connect after CONNACK, ``on_ack(mid, ok, reason)``
    for every PUBACK, ``on_message`` for every message on the subscribed filters.
    ``on_problem(name, detail)`` reports a condition an operator must fix (another
    client taking the session over: ``"session_takeover"``), and ``detail=None`` once it
    is over; the daemon turns it into an alarm on the status topic.
    """

    def __init__(
        self,
        *,
        settings: MqttSettings,
        client_id: str,
        will_topic: str,
        will_payload: bytes,
        subscriptions: list[str],
        on_connected: Callable[[], None] = lambda: None,
        on_ack: Callable[[int, bool, str], None] = lambda mid, ok, reason: None,
        on_message: Callable[[Message], None] = lambda msg: None,
        on_problem: ProblemCallback = lambda name, detail: None,
        max_inflight: int = 200,
    ) -> None:
        self.settings = settings
        self.client_id = client_id
        self._subscriptions = subscriptions
        self._on_connected = on_connected
        self._on_ack = on_ack
        self._on_message = on_message
        self._on_problem = on_problem
        # The protocol of the current (or next) connection; with "auto", per broker.
        self.v5 = settings.protocol != 3
        self._v311_brokers: set[BrokerUrl] = set()  # brokers that refused MQTT 5 ("auto")
        self._told_v311: set[BrokerUrl] = set()  # the fallback is logged once per broker
        self.connected = False
        self.subscribed = False  # the request subscription is acknowledged
        self.broker: BrokerUrl | None = None  # of the current (or last) connection
        self._attempt: BrokerUrl | None = None  # the broker being connected to
        self.connected_since: float | None = None
        self.last_error: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._task: asyncio.Task[None] | None = None
        self._misc_task: asyncio.Task[None] | None = None
        self._connack: asyncio.Future[ReasonCode] | None = None
        self._lost = asyncio.Event()  # replaced, never cleared: one per connection attempt
        self._connected_at: float | None = None  # monotonic, of the current connection
        self._short_closes = 0  # connections in a row the broker closed soon after accepting
        self._takeover: str | None = None  # the session-takeover problem being reported
        self._closing = False
        self._sock: socket.socket | None = None
        self._flushing = False  # publish(flush=True) writes at once: no writer callback for it

        client = PahoClient(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if self.v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if self.v5 else False,
            reconnect_on_failure=False,
        )
        client.connect_timeout = 10.0
        client.max_inflight_messages_set(max_inflight)
        client.max_queued_messages_set(0)  # unbounded: the outbox window bounds what we hand in
        client.will_set(will_topic, will_payload, qos=1, retain=True)
        if settings.username:
            client.username_pw_set(settings.username, _read_password(settings.password_file))
        self._tls = any(b.tls for b in settings.brokers)
        if self._tls:
            client.tls_set_context(_tls_context(settings))
        if log.isEnabledFor(logging.DEBUG):
            client.enable_logger(logging.getLogger("gatewayd.mqtt.paho"))
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_publish = self._handle_publish
        client.on_message = self._handle_message
        client.on_subscribe = self._handle_subscribe
        client.on_socket_open = self._socket_open
        client.on_socket_close = self._socket_close
        client.on_socket_register_write = self._socket_register_write
        client.on_socket_unregister_write = self._socket_unregister_write
        self.client = client

    # -- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._task = asyncio.create_task(self._supervise(), name="gatewayd[mqtt].connect")
        self._misc_task = asyncio.create_task(self._misc(), name="gatewayd[mqtt].keepalive")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self, *, final: tuple[str, bytes] | None = None, timeout: float = 3.0) -> None:
        """Publish ``final`` (the offline status) if connected, wait for its ack, disconnect."""
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if final is not None and self.connected:
            info = self.client.publish(final[0], final[1], qos=1, retain=True)
            deadline = time.monotonic() + timeout
            while self.connected and not info.is_published() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        if self.connected or self._sock is not None:
            self.client.disconnect()
            deadline = time.monotonic() + 1.0
            while self._sock is not None and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        if self._misc_task is not None:
            self._misc_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._misc_task
            self._misc_task = None
        if self._sock is not None:
            self._socket_close(self.client, None, self._sock)

    # -- publishing ------------------------------------------------------------------

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        retain: bool = False,
        correlation_data: bytes | None = None,
        user_properties: list[tuple[str, str]] | None = None,
        flush: bool = False,
    ) -> int:
        """Hand a QoS 1 message to paho; returns its message id (acked via ``on_ack``).

        ``flush`` writes it to the socket now rather than on the loop's next turn: for a
        single live event, where that turn is latency the WMS would see.
        """
        props = None
        if self.v5 and (correlation_data is not None or user_properties):
            props = _properties(PacketTypes.PUBLISH)
            if correlation_data is not None:
                props.CorrelationData = correlation_data
            if user_properties:
                props.UserProperty = user_properties
        flush = flush and self._sock is not None and self.connected
        self._flushing = flush
        try:
            info = self.client.publish(topic, payload, qos=1, retain=retain, properties=props)
        finally:
            self._flushing = False
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise RuntimeError(f"MQTT publish to {topic} failed: {paho.error_string(info.rc)}")
        if flush:
            self.client.loop_write()
            if self.client.want_write() and self._sock is not None:
                # The socket took part of it: the rest goes when it is writable.
                self._register_writer(self._sock)
        return int(info.mid)

    def inflight(self) -> int:
        return inflight_count(self.client)

    # -- connection supervision ------------------------------------------------------

    async def _supervise(self) -> None:
        s = self.settings
        backoff = Backoff(initial=s.reconnect_min_s, maximum=s.reconnect_max_s)  # no broker reachable
        # Connections accepted and dropped again at once, in a row: their own backoff, so
        # a long outage before them does not make the first retry wait the maximum.
        flapping = Backoff(initial=s.reconnect_min_s, maximum=s.reconnect_max_s)
        brokers = s.brokers
        while not self._closing:
            for broker in brokers:
                if await self._try(broker):
                    backoff.reset()
                    lost = self._lost  # this connection's: made before its CONNECT went out
                    if broker == brokers[0] or not self.settings.failback_s:
                        await self._watch(lost)
                    else:
                        await self._fail_back(brokers[0], lost)
                    if self._lasted(STABLE_AFTER_S):
                        flapping.reset()
                        break  # after a loss start again from the first (preferred) broker
                    # Accepted, then dropped at once: a session takeover, a broker that
                    # closes the door, a proxy. Retry, but never in a tight loop.
                    delay = flapping.next_delay()
                    log.info("mqtt: the connection did not last; next attempt in %.1f s", delay)
                    await asyncio.sleep(delay)
                    break
                self._short_closes = 0  # a failed connect breaks a run of takeovers
            else:
                delay = backoff.next_delay()
                log.info("mqtt: no broker reachable; next attempt in %.1f s", delay)
                await asyncio.sleep(delay)

    def _lasted(self, seconds: float) -> bool:
        return self._connected_at is not None and time.monotonic() - self._connected_at >= seconds

    async def _watch(self, lost: asyncio.Event) -> None:
        """Wait for the loss of this connection; clear a takeover alarm once it held long."""
        if self._takeover is not None:
            # Two clients with one id take turns, each holding the session until the
            # other's backoff expires: only a connection outlasting that clears the alarm.
            hold = max(TAKEOVER_CLEAR_AFTER_S, 3 * self.settings.reconnect_max_s)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(hold):
                    await lost.wait()
                return
            log.info("mqtt: the connection held for %.0f s: no other client takes the session over now", hold)
            self._takeover = None
            self._short_closes = 0
            self._report("session_takeover", None)
        await lost.wait()

    async def _fail_back(self, preferred: BrokerUrl, lost: asyncio.Event) -> None:
        """While on a fallback broker, look every ``failback_s`` whether the preferred one
        accepts connections again, and move back to it (paho re-sends what is in flight)."""
        interval = self.settings.failback_s
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await lost.wait()
                return
            if await _reachable(preferred):
                log.info("mqtt: preferred broker %s is reachable again; moving back to it", preferred)
                self.client.disconnect()
                await lost.wait()
                return

    async def _try(self, broker: BrokerUrl) -> bool:
        """Connect to ``broker``; with protocol "auto", fall back to 3.1.1 if it refuses 5."""
        v5 = self.settings.protocol == 5 or (self.settings.protocol == "auto" and broker not in self._v311_brokers)
        outcome = await self._connect(broker, v5=v5)
        if outcome is True:
            return True
        if v5 and self.settings.protocol == "auto" and outcome is not False:
            if broker not in self._told_v311:
                self._told_v311.add(broker)
                log.warning(
                    "mqtt: %s does not speak MQTT 5 (%s); trying MQTT 3.1.1 with it "
                    "(set mqtt.protocol = 3 to skip this)",
                    broker,
                    outcome,
                )
            if await self._connect(broker, v5=False) is True:
                # Remembered only once 3.1.1 works: a close for another reason must not
                # cost a broker that speaks 5 its MQTT 5 features for good.
                self._v311_brokers.add(broker)
                return True
            return False
        if v5 and outcome is not False:
            self._note_failure(
                broker, f"{outcome}: it does not seem to speak MQTT 5 (set mqtt.protocol = \"auto\" or 3)"
            )
        return False

    async def _connect(self, broker: BrokerUrl, *, v5: bool) -> bool | str:
        """One attempt: True when connected, False when failed (and said so), or a
        description when the broker refused MQTT 5 (left to the caller to report)."""
        loop = asyncio.get_running_loop()
        connack = self._connack = loop.create_future()
        # Before the CONNECT: whenever paho reports this connection's loss, it is kept.
        self._lost = asyncio.Event()
        self._attempt = broker
        self.client.socket_error = None
        if v5 != self.v5 or self.settings.protocol == "auto":
            set_protocol(self.client, v5=v5)
            self.v5 = v5
        kwargs: dict[str, Any] = {}
        if self.v5:
            props = _properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = SESSION_EXPIRY_S
            kwargs = {"clean_start": False, "properties": props}
        if self._tls:
            # One client serves the whole broker list; paho has no per-connect TLS switch,
            # so a list mixing mqtt:// and mqtts:// flips its flag before each attempt.
            use_tls(self.client, broker.tls)
        log.debug("mqtt: connecting to %s (MQTT %s)", broker, "5" if v5 else "3.1.1")
        sent = False
        try:
            rc = await asyncio.to_thread(
                self.client.connect,
                broker.host,
                broker.port,
                keepalive=self.settings.keepalive,
                **kwargs,
            )
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                raise self.client.socket_error or ConnectionError(paho.error_string(rc))
            sent = True
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            # that coincides with the CONNACK, and shutdown would then hang here.
            async with asyncio.timeout(15):
                reason = await connack
        except (OSError, ssl.SSLError, TimeoutError, ValueError) as exc:
            self._drop_socket()
            closed = isinstance(exc, ConnectionResetError | BrokenPipeError) and not isinstance(exc, ssl.SSLError)
            if v5 and sent and closed:
                # MQTT 3.1.1 section 3.1.2.2 wants CONNACK 0x01 for a protocol level the
                # server does not support (NATS sends it); RabbitMQ 3.10 just closes.
                return f"it closed the connection after the MQTT 5 CONNECT, without a CONNACK ({_describe(exc)})"
            self._note_failure(broker, _describe(exc))
            return False
        finally:
            # Cancelled (shutdown) or failed: nobody will await this CONNACK any more.
            if not connack.done():
                connack.cancel()
        if reason.is_failure:
            self._drop_socket()
            if v5 and reason.value == UNSUPPORTED_PROTOCOL:
                return f"CONNACK: {reason}"
            self._note_failure(broker, self._refusal(reason))
            return False
        return True

    def _refusal(self, reason: ReasonCode) -> str:
        text = f"the broker refused the connection: {reason}"
        name = str(reason).lower()
        if "user name or password" in name or "not authori" in name:
            if self.settings.username:
                account = self.settings.username
                return f"{text} (check mqtt.username and mqtt.password_file, and the broker's account for {account!r})"
            return f"{text} (the broker wants credentials: set mqtt.username and mqtt.password_file, or a certificate)"
        if "identifier" in name:
            return f"{text} (client id {self.client_id!r}; set mqtt.client_id)"
        return text

    def _note_failure(self, broker: BrokerUrl, detail: str) -> None:
        message = f"cannot connect to {broker}: {detail}"
        if message != self.last_error:
            log.warning("mqtt: %s", message)
        self.last_error = message

    def _drop_socket(self) -> None:
        # The attempt is over: nobody awaits its CONNACK any more.
        connack, self._connack = self._connack, None
        if connack is not None and not connack.done():
            connack.cancel()
        with contextlib.suppress(Exception):
            self.client.disconnect()
        if self._sock is not None:
            self._socket_close(self.client, None, self._sock)

    async def _misc(self) -> None:
        # Keepalive pings and ack timeouts: paho needs loop_misc() about once a second.
        while True:
            await asyncio.sleep(1.0)
            if self._sock is not None:
                self.client.loop_misc()

    # -- paho callbacks (loop thread) ------------------------------------------------

    def _handle_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: Any,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(reason)
        if reason.is_failure:
            return
        self.connected = True
        self.connected_since = time.time()
        self._connected_at = time.monotonic()
        self.last_error = None
        self.broker = self._attempt  # before on_connected: its callbacks name the broker
        broker = str(self.broker) if self.broker else f"{client.host}:{client.port}"
        log.info("mqtt: connected to %s as %s (MQTT %s)", broker, self.client_id, "5" if self.v5 else "3.1.1")
        for topic in self._subscriptions:
            client.subscribe(topic, qos=1)
        self._on_connected()

    def _handle_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: Any,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        was = self.connected
        self.connected = False
        self.subscribed = False
        self._lost.set()  # first: nothing below may keep the supervisor from hearing of it
        error = self.client.socket_error
        if self._connack is not None and not self._connack.done():
            # Dropped before CONNACK: a TLS alert about our certificate, or a broker that
            # closes the door. Fail the attempt now instead of waiting for a timeout.
            self._connack.set_exception(error or ConnectionResetError(0, "the broker closed the connection"))
        if was:
            if self._closing:
                log.info("mqtt: disconnected")
            else:
                broker = str(self.broker) if self.broker else f"{client.host}:{client.port}"
                detail = _describe(error) if error is not None else str(reason)
                takeover = self._takeover_seen(reason, error)
                log.warning("mqtt: connection to %s lost (%s)", broker, takeover or detail)
                if takeover is not None and takeover != self._takeover:
                    self._takeover = takeover
                    self._report("session_takeover", takeover)

    def _report(self, name: str, detail: str | None) -> None:
        try:
            self._on_problem(name, detail)
        except Exception:
            log.exception("mqtt: error reporting %s", name)

    def _takeover_seen(self, reason: ReasonCode, error: OSError | None) -> str | None:
        """Whether this loss shows another client with our id taking the session over."""
        if reason.value == SESSION_TAKEN_OVER:
            return f"another client with id {self.client_id!r} took over the session: is gateway.id unique?"
        # MQTT 3.1.1 section 3.1.4: the server disconnects the existing client, without a
        # word. Seen from here: accepted, then closed by the broker, soon, again. A close
        # with our bytes still unread in the broker's socket arrives as a reset, or as a
        # broken pipe when we write next; a timeout is the network, not the broker.
        by_broker = isinstance(error, ConnectionResetError | BrokenPipeError)
        if not by_broker or self._lasted(STABLE_AFTER_S):
            self._short_closes = 0
            return None
        self._short_closes += 1
        if self._short_closes < TAKEOVER_SUSPECT_AFTER:
            return None
        return (
            f"the broker closed {self._short_closes} connections in a row soon after accepting them: "
            f"another client with id {self.client_id!r} likely takes over the session: is gateway.id unique? "
            "(if it is, the broker's log says why it closes them)"
        )

    def _handle_subscribe(
        self, client: paho.Client, userdata: Any, mid: int, reasons: list[ReasonCode], properties: Properties | None
    ) -> None:
        failed = [str(r) for r in reasons if r.is_failure]
        if failed:
            log.error("mqtt: broker refused the request subscription: %s", ", ".join(failed))
        else:
            self.subscribed = True

    def _handle_publish(
        self, client: paho.Client, userdata: Any, mid: int, reason: ReasonCode, properties: Properties
    ) -> None:
        self._on_ack(mid, not reason.is_failure, str(reason))

    def _handle_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        response_topic = None
        correlation = None
        props = getattr(msg, "properties", None)
        if props is not None:
            response_topic = getattr(props, "ResponseTopic", None)
            correlation = getattr(props, "CorrelationData", None)
        try:
            self._on_message(Message(msg.topic, bytes(msg.payload), response_topic, correlation))
        except Exception:
            log.exception("mqtt: error handling message on %s", msg.topic)

    # -- socket plumbing -------------------------------------------------------------

    def _in_loop(self, fn: Callable[[], None]) -> None:
        assert self._loop is not None
        if threading.get_ident() == self._loop_thread:
            fn()
        else:
            self._loop.call_soon_threadsafe(fn)

    def _socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        def attach() -> None:
            assert self._loop is not None
            self._sock = sock
            with contextlib.suppress(OSError, ValueError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._loop.add_reader(sock, self._readable, sock)

        self._in_loop(attach)

    def _readable(self, sock: Any) -> None:
        if sock is not self._sock:
            return
        self.client.loop_read()
        # TLS may hold decrypted bytes the selector cannot see.
        while self._sock is sock and isinstance(sock, ssl.SSLSocket) and sock.pending():
            self.client.loop_read()

    def _socket_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        def detach() -> None:
            assert self._loop is not None
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(sock)
                self._loop.remove_writer(sock)
            if self._sock is sock:
                self._sock = None

        self._in_loop(detach)

    def _socket_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        if self._flushing:
            # publish(flush=True) writes it at once and registers the rest only if the
            # socket would not take it all: two epoll changes fewer per live event.
            return
        self._in_loop(functools.partial(self._register_writer, sock))

    def _register_writer(self, sock: Any) -> None:
        assert self._loop is not None
        with contextlib.suppress(ValueError, OSError):
            self._loop.add_writer(sock, self._writable, sock)

    def _writable(self, sock: Any) -> None:
        if sock is self._sock or self._sock is None:
            self.client.loop_write()

    def _socket_unregister_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        def unregister() -> None:
            assert self._loop is not None
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_writer(sock)

        self._in_loop(unregister)


async def _reachable(broker: BrokerUrl, timeout: float = 5.0) -> bool:
    """Whether a TCP connection to the broker succeeds (no MQTT session is opened)."""
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(broker.host, broker.port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def _properties(packet_type: int) -> Properties:
    return Properties(packet_type)  # type: ignore[no-untyped-call]  # paho leaves it unannotated


# TLS alerts a broker sends when it does not accept our client certificate.
_CLIENT_CERT_ALERTS = (
    "ALERT_UNKNOWN_CA", "ALERT_BAD_CERTIFICATE", "ALERT_CERTIFICATE_REQUIRED", "ALERT_CERTIFICATE_UNKNOWN",
    "ALERT_UNSUPPORTED_CERTIFICATE", "ALERT_CERTIFICATE_EXPIRED", "ALERT_CERTIFICATE_REVOKED",
    "ALERT_ACCESS_DENIED", "ALERT_HANDSHAKE_FAILURE",
)


def _describe(exc: BaseException) -> str:
    """The reason a connection failed, in words a user can act on (never a traceback)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"the broker's TLS certificate was rejected ({exc.verify_message}); "
            "check mqtt.ca_file and the broker host name"
        )
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or ""
        if any(alert in reason for alert in _CLIENT_CERT_ALERTS):
            alert = reason.lower().replace("_", " ")
            return f"the broker rejected our TLS client certificate ({alert}); check mqtt.cert_file and mqtt.key_file"
        if reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"):
            return "TLS handshake failed: the broker does not speak TLS on this port (use mqtt:// or the TLS port)"
        return f"TLS error ({(reason or str(exc)).lower().replace('_', ' ')})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, BrokenPipeError):
        return "the broker closed the connection"
    if isinstance(exc, ConnectionResetError):
        return "the broker closed the connection" if exc.errno == 0 else "connection reset"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host ({exc.strerror})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def check_credentials(settings: MqttSettings) -> list[str]:
    """Problems with the password file and TLS files, by key path (for ``gatewayd check``)."""
    problems: list[str] = []
    try:
        _read_password(settings.password_file)
    except ConfigError as exc:
        problems += exc.problems
    if any(b.tls for b in settings.brokers) or settings.ca_file or settings.cert_file:
        try:
            _tls_context(settings)
        except ConfigError as exc:
            problems += exc.problems
    return problems


def _read_password(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ConfigError([f"mqtt.password_file: cannot read {path} ({_file_problem(exc)})"]) from None


def _file_problem(exc: OSError) -> str:
    """Why a certificate or key file could not be used, in words."""
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or ""
        if reason == "KEY_VALUES_MISMATCH":
            return "the key does not belong to the certificate"
        if reason in ("NO_CERTIFICATE_OR_CRL_FOUND", "NO_START_LINE", "PEM_LIB"):
            return "no PEM certificate or key found in it"
        return (reason or str(exc)).lower().replace("_", " ")
    return (exc.strerror or str(exc)).lower()


def _tls_context(settings: MqttSettings) -> ssl.SSLContext:
    problems: list[str] = []
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if settings.ca_file:
        try:
            ctx.load_verify_locations(cafile=str(settings.ca_file))
        except OSError as exc:
            problems.append(f"mqtt.ca_file: cannot load {settings.ca_file} ({_file_problem(exc)})")
    if settings.cert_file and settings.key_file:
        try:
            ctx.load_cert_chain(str(settings.cert_file), str(settings.key_file))
        except OSError as exc:
            problems.append(
                f"mqtt.cert_file: cannot load {settings.cert_file} with mqtt.key_file {settings.key_file} "
                f"({_file_problem(exc)})"
            )
    if problems:
        raise ConfigError(problems)
    return ctx
