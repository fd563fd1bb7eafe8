#!/usr/bin/env python3
"""Example WMS subscriber: consumes gatewayd scan events exactly once and proves it has all.

What it shows (README "Consuming events"):

* a shared subscription (``$share/GROUP/...``), so several WMS workers split the stream;
* a persistent session (MQTT 5 session expiry), so events published while the worker is
  down wait at the broker;
* dedupe on ``event_id`` (at-least-once delivery means redeliveries happen);
* gap detection on the per-gateway ``seq``, including a missing tail, which the retained
  ``status`` and a ``health`` request (``outbox.last_seq``) reveal;
* ``request/replay`` to fill every gap, retried when no answer comes;
* ``gatewayd.gap/1`` events (on ``P/scans/_gaps``): seqs the gateway announces it can
  never deliver (its outbox was lost or damaged, or a power cut stopped it and it skipped
  its reserved seqs) count as filled, so they are not asked for again and again, and
  events already received from such a range are kept; the announcement itself carries a
  seq like any event.

Each new event is printed as one JSON line on stdout; progress goes to stderr. A real WMS
keeps ``seen`` and ``next_seq`` in its database, in the same transaction as the event.

    python scripts/wms_subscriber.py --broker mqtt://127.0.0.1:1883 --from-seq 1
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


class Consumer:
    def __init__(self, *, prefix: str, group: str | None, from_seq: int | None) -> None:
        self.prefix = prefix
        self.group = group
        self.from_seq = from_seq
        self.lock = threading.Lock()
        self.seen: set[str] = set()  # event_ids already processed
        self.have: dict[str, set[int]] = {}  # gateway -> seqs processed
        self.last_seq: dict[str, int] = {}  # gateway -> last seq it captured (from status)
        self.asked: dict[tuple[str, int, int], float] = {}  # replay requests in flight
        self.client: paho.Client | None = None

    # -- MQTT ----------------------------------------------------------------------------

    def topics(self) -> list[str]:
        scans = f"{self.prefix}/+/scans/#"
        if self.group:
            scans = f"$share/{self.group}/{scans}"
        return [scans, f"{self.prefix}/+/status", f"{self.prefix}/+/response/+"]

    def on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any = None) -> None:
        for topic in self.topics():
            client.subscribe(topic, qos=1)
        print(f"connected; subscribed to {', '.join(self.topics())}", file=sys.stderr)

    def on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        try:
            body = json.loads(msg.payload)
        except ValueError:
            print(f"not JSON on {msg.topic}", file=sys.stderr)
            return
        schema = str(body.get("schema", ""))
        if schema.startswith("gatewayd.scan/"):
            self.on_scan(body)
        elif schema.startswith("gatewayd.gap/"):
            self.on_gap(body)
        elif schema.startswith("gatewayd.status/"):
            self.note_last_seq(body)
            if body.get("state") == "online":
                # The retained status may be minutes old: ask for the current last seq.
                request = {"transaction": f"health-{uuid.uuid4().hex[:8]}"}
                client.publish(f"{self.prefix}/{body['gateway']}/request/health", json.dumps(request), qos=1)
        elif schema.startswith("gatewayd.response/") and body.get("command") == "health" and body.get("data"):
            self.note_last_seq(body["data"])

    def note_last_seq(self, status: dict[str, Any]) -> None:
        outbox = status.get("outbox") or {}
        if "last_seq" in outbox and "gateway" in status:
            with self.lock:
                self.last_seq[status["gateway"]] = max(self.last_seq.get(status["gateway"], 0), int(outbox["last_seq"]))

    def on_scan(self, event: dict[str, Any]) -> None:
        with self.lock:
            if event["event_id"] in self.seen:
                return  # a redelivery or a replay of what we have: same event_id, ignore
            self.seen.add(event["event_id"])
            self.have.setdefault(event["gateway"], set()).add(int(event["seq"]))
        print(json.dumps(event, ensure_ascii=False), flush=True)

    def on_gap(self, gap: dict[str, Any]) -> None:
        """A void range: the gateway says those seqs will never come. Record it like an event
        (a real WMS stores it, to account for every seq) and count the range as filled."""
        with self.lock:
            if gap["event_id"] in self.seen:
                return
            self.seen.add(gap["event_id"])
            have = self.have.setdefault(gap["gateway"], set())
            have.add(int(gap["seq"]))
            have.update(range(int(gap["from_seq"]), int(gap["to_seq"]) + 1))
        print(f"gap announced by {gap['gateway']}: seq {gap['from_seq']}..{gap['to_seq']} ({gap['reason']})",
              file=sys.stderr)
        print(json.dumps(gap, ensure_ascii=False), flush=True)

    # -- gaps ----------------------------------------------------------------------------

    def gaps(self) -> dict[str, list[tuple[int, int]]]:
        """Missing seq ranges per gateway, up to the last seq its status reported."""
        out: dict[str, list[tuple[int, int]]] = {}
        with self.lock:
            for gateway in set(self.have) | set(self.last_seq):
                have = self.have.get(gateway, set())
                first = self.from_seq if self.from_seq is not None else (min(have) if have else 1)
                last = max(self.last_seq.get(gateway, 0), max(have, default=0))
                ranges: list[tuple[int, int]] = []
                for seq in range(first, last + 1):
                    if seq in have:
                        continue
                    if ranges and ranges[-1][1] == seq - 1:
                        ranges[-1] = (ranges[-1][0], seq)
                    else:
                        ranges.append((seq, seq))
                if ranges:
                    out[gateway] = ranges
        return out

    def request_replays(self, *, retry_after: float = 5.0) -> int:
        assert self.client is not None
        now = time.monotonic()
        asked = 0
        for gateway, ranges in self.gaps().items():
            for start, end in ranges:
                key = (gateway, start, end)
                if now - self.asked.get(key, -1e9) < retry_after:
                    continue
                self.asked[key] = now
                body = {"transaction": f"replay-{uuid.uuid4().hex[:8]}", "from_seq": start, "to_seq": end}
                self.client.publish(f"{self.prefix}/{gateway}/request/replay", json.dumps(body), qos=1)
                print(f"gap at {gateway} seq {start}..{end}: replay requested", file=sys.stderr)
                asked += 1
        return asked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="mqtt://host:port")
    parser.add_argument("--prefix", default="gatewayd", help="topic_prefix of the gateways")
    parser.add_argument("--group", default=None, help="shared-subscription group (several workers)")
    parser.add_argument("--client-id", default=f"wms-{uuid.uuid4().hex[:8]}")
    parser.add_argument("--from-seq", type=int, default=None, help="require every event from this seq on")
    parser.add_argument("--run-for", type=float, default=0, help="stop after this many seconds (0: run until Ctrl-C)")
    parser.add_argument("--until-complete", action="store_true", help="stop once no gap is left and a status was seen")
    args = parser.parse_args(argv)

    url = urlsplit(args.broker)
    consumer = Consumer(prefix=args.prefix, group=args.group, from_seq=args.from_seq)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=args.client_id, protocol=MQTTProtocolVersion.MQTTv5)
    consumer.client = client
    client.on_connect = consumer.on_connect
    client.on_message = consumer.on_message
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 24 * 3600  # keep our queue at the broker for a day
    client.connect(url.hostname or "127.0.0.1", url.port or 1883, keepalive=30, clean_start=False, properties=props)
    client.loop_start()
    started = time.monotonic()
    try:
        while True:
            time.sleep(0.5)
            consumer.request_replays()
            if args.until_complete and consumer.last_seq and not consumer.gaps():
                return 0
            if args.run_for and time.monotonic() - started > args.run_for:
                return 0 if not consumer.gaps() else 1
    except KeyboardInterrupt:
        return 0
    finally:
        client.disconnect()
        client.loop_stop()


if __name__ == "__main__":
    raise SystemExit(main())
