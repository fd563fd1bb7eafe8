"""The request path alone: response topics, JSON nesting, and errors that name the field sent."""

from __future__ import annotations

import json
import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest

from gatewayd.config import OutboxSettings
from gatewayd.delivery.mqtt_link import Message
from gatewayd.delivery.outbox import Outbox
from gatewayd.delivery.replay import Replay
from gatewayd.delivery.requests import MAX_JSON_DEPTH, Requests

P = "gatewayd/gw-1"


class Sent:
    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any], bytes | None]] = []

    def __call__(self, topic: str, payload: bytes, correlation: bytes | None) -> None:
        self.messages.append((topic, json.loads(payload), correlation))


def no_spawn(coro: Coroutine[Any, Any, None], name: str) -> None:
    coro.close()
    raise AssertionError(f"nothing should run in the background here ({name})")


def requests(sent: Sent, prefixes: tuple[str, ...] = ()) -> Requests:
    r = Requests(root=P, max_payload_bytes=65536, publish=sent, spawn=no_spawn, response_topic_prefixes=prefixes)
    r.register("health", lambda body: {"healthy": True})
    return r


def ask(r: Requests, payload: bytes | dict[str, Any], response_topic: str | None = None) -> None:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    r.handle(Message(f"{P}/request/health", data, response_topic, b"corr-1"))


@pytest.mark.parametrize(
    ("response_topic", "prefixes", "answered_on", "error"),
    [
        (None, (), f"{P}/response/health", None),
        (f"{P}/response/health/wms-7", (), f"{P}/response/health/wms-7", None),
        ("wms/replies/7", (), "wms/replies/7", None),
        ("wms/replies/7", ("wms/replies",), "wms/replies/7", None),
        ("wms/replies", ("wms/replies/",), "wms/replies", None),
        # Into the scan stream every WMS consumes: the injection this rule exists for.
        (
            f"{P}/scans/dock-03",
            (),
            f"{P}/response/health",
            f"response topic '{P}/scans/dock-03' refused: inside gatewayd/ only {P}/response/... may be used",
        ),
        (
            f"{P}/status",
            ("gatewayd",),
            f"{P}/response/health",
            f"response topic '{P}/status' refused: inside gatewayd/ only {P}/response/... may be used",
        ),
        # ... or into a neighbour's.
        (
            "gatewayd/gw-2/scans/dock-01",
            (),
            f"{P}/response/health",
            f"response topic 'gatewayd/gw-2/scans/dock-01' refused: inside gatewayd/ only {P}/response/... may be used",
        ),
        (
            "erp/orders",
            ("wms/replies",),
            f"{P}/response/health",
            "response topic 'erp/orders' refused: not under mqtt.response_topic_prefixes (wms/replies)",
        ),
        (
            "wms/repliesX/1",
            ("wms/replies",),
            f"{P}/response/health",
            "response topic 'wms/repliesX/1' refused: not under mqtt.response_topic_prefixes (wms/replies)",
        ),
        (
            "$SYS/broker/x",
            (),
            f"{P}/response/health",
            "response topic '$SYS/broker/x' refused: topics starting with '$' belong to the broker",
        ),
        (
            "wms/+/x",
            (),
            f"{P}/response/health",
            "response topic 'wms/+/x' refused: a response topic must be a topic name, without '#' or '+'",
        ),
    ],
)
def test_response_topic(
    response_topic: str | None, prefixes: tuple[str, ...], answered_on: str, error: str | None
) -> None:
    sent = Sent()
    ask(requests(sent, prefixes), {"transaction": "t1"}, response_topic)
    [(topic, body, correlation)] = sent.messages
    assert topic == answered_on
    assert correlation == b"corr-1"
    assert body["transaction"] == "t1"
    if error is None:
        assert body["status"] == "ok", body
    else:
        assert (body["status"], body["error"]) == ("error", error)


def nested(depth: int) -> bytes:
    return b'{"transaction": "t", "x": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


def test_deep_json_is_refused_with_a_clear_error_before_the_parser_recurses(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sent = Sent()
    r = requests(sent)
    ask(r, nested(50_000))  # 100 kB: over the size limit, which answers first
    ask(r, b"[" * 30_000 + b"]" * 30_000)  # 60 kB, under the limit: used to be a RecursionError
    ask(r, b'{"a": ' + b'{"a": ' * 40 + b"1" + b"}" * 41)
    bodies = [body for _, body, _ in sent.messages]
    assert bodies[0]["error"] == f"request of {len(nested(50_000))} bytes is larger than the limit of 65536 bytes"
    assert bodies[1]["error"] == f"request nests arrays and objects 30000 deep; at most {MAX_JSON_DEPTH} are accepted"
    assert bodies[2]["error"] == f"request nests arrays and objects 41 deep; at most {MAX_JSON_DEPTH} are accepted"
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR]


def test_nesting_up_to_the_limit_is_accepted_and_brackets_in_strings_do_not_count() -> None:
    sent = Sent()
    r = requests(sent)
    r.register("echo", lambda body: body)
    r.handle(Message(f"{P}/request/echo", nested(MAX_JSON_DEPTH), None, None))
    brackets = {"transaction": "s", "text": "[[[[" * 100 + '\\" {{{{' * 100}
    r.handle(Message(f"{P}/request/echo", json.dumps(brackets).encode(), None, None))
    assert [body["status"] for _, body, _ in sent.messages] == ["ok", "ok"]
    assert sent.messages[1][1]["data"] == brackets


@pytest.fixture
def outbox(tmp_path: Path) -> Any:
    box = Outbox.open(tmp_path / "outbox.sqlite3", OutboxSettings())
    yield box
    box.close()


@pytest.mark.parametrize(
    ("body", "error"),
    [
        # The field never sent is never named.
        ({"from_seq": 10**30}, f"from_seq {10**30} is beyond no event captured yet"),
        ({"from_seq": 1}, "from_seq 1 is beyond no event captured yet"),
        ({"from_seq": 0}, "from_seq must be at least 1, got 0"),
        ({"from_seq": 5, "to_seq": 0}, "to_seq must be at least 1, got 0"),
        ({"from_seq": 5, "to_seq": 2}, "to_seq (2) must not be smaller than from_seq (5)"),
        ({"to_seq": 2}, "from_seq is required"),
        ({"from_seq": "1"}, "from_seq must be an integer, got '1'"),
        ({"from_seq": 1, "to": 2}, "unknown field(s) 'to'; expected from_seq, to_seq"),
    ],
)
def test_replay_errors_name_the_field_that_was_sent(outbox: Outbox, body: dict[str, Any], error: str) -> None:
    sent = Sent()
    r = requests(sent)
    replay = Replay(outbox=outbox, link=None, inflight_limit=100, spawn=no_spawn)  # type: ignore[arg-type]
    r.register("replay", replay.handle)
    r.handle(Message(f"{P}/request/replay", json.dumps(body).encode(), None, None))
    [(_, answer, _)] = sent.messages
    assert (answer["status"], answer["error"]) == ("error", error)
