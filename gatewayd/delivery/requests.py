"""Requests on ``P/request/{command}``, answered on ``P/response/{command}``.

:class:`Requests` routes a request to the handler registered for its command. Every
request gets exactly one response: ``{"status": "ok", "data": ...}`` or
``{"status": "error", "error": "..."}``, echoing ``transaction``. With MQTT 5 the
request's response topic and correlation data are honoured, within limits: inside
``{topic_prefix}/`` (this gateway's tree and every other gateway's) only this gateway's
``P/response/...`` (a request must not be able to publish into ``P/scans/...``, the
stream every WMS consumes), and elsewhere only under ``mqtt.response_topic_prefixes``
when that is set. A refused response topic is answered
on ``P/response/{command}``. Nothing a request carries can crash the gateway: it is
bounded in size and JSON nesting, parsed and checked before any handler sees it.

Handlers know nothing of MQTT: one takes the request's JSON object and returns the
response data, or an awaitable of it, or raises :class:`PayloadError` with the message
the requester reads. The daemon registers the built-in commands; a part that owns a
command (printing, feedback) hands its handlers to the daemon, which registers them here
and unregisters them when the part stops.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from gatewayd.delivery.mqtt_link import Message
from gatewayd.errors import PayloadError
from gatewayd.payloads import json_bytes, response_payload

__all__ = ["Handler", "Requests", "check_fields", "int_field"]

log = logging.getLogger("gatewayd.commands")

MAX_TRANSACTION = 128
MAX_JSON_DEPTH = 32  # no command takes more than 3; Python's parser recurses per level

# JSON strings (with their escapes), removed before counting brackets: a "[" inside a
# string does not nest anything (RFC 8259 section 7).
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*+"', re.DOTALL)  # possessive: linear time
_BRACKET = re.compile(r"[\[\]{}]")

Handler = Callable[[dict[str, Any]], Any]
"""Takes the request object; returns the response data or an awaitable of it."""

Publish = Callable[[str, bytes, bytes | None], None]
"""Sends ``(topic, payload, correlation_data)`` at QoS 1."""

Spawn = Callable[[Coroutine[Any, Any, None], str], None]
"""Runs a coroutine as a named background task that the daemon cancels on stop."""


class Requests:
    """The command table and the request → response path."""

    def __init__(
        self,
        *,
        root: str,
        max_payload_bytes: int,
        publish: Publish,
        spawn: Spawn,
        response_topic_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.root = root
        self.max_payload_bytes = max_payload_bytes
        self.response_topic_prefixes = tuple(p.rstrip("/") for p in response_topic_prefixes)
        self._publish = publish
        self._spawn = spawn
        self._handlers: dict[str, Handler] = {}
        self._unavailable: dict[str, str] = {}

    def register(self, command: str, handler: Handler) -> Callable[[], None]:
        """Route ``command`` to ``handler``; returns the function that removes it again."""
        if command in self._handlers:
            raise ValueError(f"command {command!r} is registered twice")
        self._handlers[command] = handler

        def unregister() -> None:
            if self._handlers.get(command) is handler:
                del self._handlers[command]

        return unregister

    def explain(self, command: str, reason: str) -> None:
        """Answer ``command`` with ``reason`` while no handler is registered for it."""
        self._unavailable[command] = reason

    def commands(self) -> list[str]:
        return sorted(self._handlers)

    def handle(self, msg: Message) -> None:
        prefix = f"{self.root}/request/"
        if not msg.topic.startswith(prefix):
            return
        command = msg.topic[len(prefix) :]
        transaction: str | None = None
        refused_topic = self._response_topic_problem(msg.response_topic)
        if refused_topic is not None:
            # Answered where the gateway's responses always go, never where it was told.
            msg = Message(msg.topic, msg.payload, None, msg.correlation_data)
        try:
            body = self._parse(msg.payload)
            raw_tx = body.get("transaction")
            if raw_tx is not None:
                if not isinstance(raw_tx, str) or len(raw_tx) > MAX_TRANSACTION:
                    raise PayloadError(f"transaction must be a string of at most {MAX_TRANSACTION} characters")
                transaction = raw_tx
            if refused_topic is not None:
                raise PayloadError(refused_topic)
            result = self._handler(command)(body)
            if inspect.isawaitable(result):
                self._spawn(self._finish(msg, command, transaction, result), f"gatewayd[request {command}]")
                return
            self._respond(msg, command, transaction, data=result)
        except PayloadError as exc:
            log.info("request %s refused: %s", command, exc)
            self._respond(msg, command, transaction, error=str(exc))
        except Exception as exc:
            log.exception("request %s failed", command)
            self._respond(msg, command, transaction, error=f"internal error: {exc}")

    def _response_topic_problem(self, topic: str | None) -> str | None:
        """Why the MQTT 5 response topic a request names is refused, or None to use it."""
        if topic is None:
            return None
        refused = f"response topic {topic!r} refused"
        if not topic or "#" in topic or "+" in topic or "\0" in topic:
            # MQTT 5 section 3.3.2.3.5: a response topic is a topic name, without wildcards.
            return f"{refused}: a response topic must be a topic name, without '#' or '+'"
        if topic.startswith("$"):
            return f"{refused}: topics starting with '$' belong to the broker"
        if topic.startswith(f"{self.root}/response/"):
            return None
        # The root is {topic_prefix}/{gateway.id}; ids have no '/'. Every gateway's tree
        # is closed, so a request cannot inject into a neighbour's scan stream either.
        gateways = self.root.rsplit("/", 1)[0]
        if topic == gateways or topic.startswith(f"{gateways}/"):
            return f"{refused}: inside {gateways}/ only {self.root}/response/... may be used"
        allowed = self.response_topic_prefixes
        if allowed and not any(topic == p or topic.startswith(f"{p}/") for p in allowed):
            return f"{refused}: not under mqtt.response_topic_prefixes ({', '.join(allowed)})"
        return None

    def _parse(self, payload: bytes) -> dict[str, Any]:
        if len(payload) > self.max_payload_bytes:
            raise PayloadError(
                f"request of {len(payload)} bytes is larger than the limit of {self.max_payload_bytes} bytes"
            )
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PayloadError(f"request is not valid UTF-8 JSON ({exc})") from None
        depth = _nesting(text)
        if depth > MAX_JSON_DEPTH:
            raise PayloadError(f"request nests arrays and objects {depth} deep; at most {MAX_JSON_DEPTH} are accepted")
        try:
            body = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError as exc:
            raise PayloadError(f"request is not valid UTF-8 JSON ({exc})") from None
        if not isinstance(body, dict):
            raise PayloadError(f"request must be a JSON object, got {type(body).__name__}")
        return body

    def _handler(self, command: str) -> Handler:
        if command in self._handlers:
            return self._handlers[command]
        if command in self._unavailable:
            raise PayloadError(f"{command}: {self._unavailable[command]}")
        raise PayloadError(f"unknown command {command!r}; known: {', '.join(self.commands())}")

    async def _finish(self, msg: Message, command: str, transaction: str | None, result: Awaitable[Any]) -> None:
        try:
            data = await result
        except PayloadError as exc:
            self._respond(msg, command, transaction, error=str(exc))
        except Exception as exc:
            log.exception("request %s failed", command)
            self._respond(msg, command, transaction, error=f"internal error: {exc}")
        else:
            self._respond(msg, command, transaction, data=data)

    def _respond(
        self, msg: Message, command: str, transaction: str | None, *, data: Any = None, error: str | None = None
    ) -> None:
        topic = msg.response_topic or f"{self.root}/response/{command}"  # checked in handle()
        body = response_payload(command, transaction, data=data, error=error)
        self._publish(topic, json_bytes(body), msg.correlation_data)


def _nesting(text: str) -> int:
    """How deep arrays and objects nest in ``text``, counted without recursion, so that
    ``json.loads`` never sees a document deep enough to exhaust the stack."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_JSON_STRING.sub("", text)):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def check_fields(body: dict[str, Any], allowed: set[str]) -> None:
    """Refuse fields a command does not take (``transaction`` is always allowed)."""
    extra = sorted(set(body) - allowed - {"transaction"})
    if extra:
        raise PayloadError(f"unknown field(s) {', '.join(map(repr, extra))}; expected {', '.join(sorted(allowed))}")


def int_field(body: dict[str, Any], name: str, *, default: int | None = None, minimum: int = 0) -> int:
    """``body[name]`` as a whole number of at least ``minimum``."""
    value = body.get(name, default)
    if value is None:
        raise PayloadError(f"{name} is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise PayloadError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise PayloadError(f"{name} must be at least {minimum}, got {value}")
    return value
