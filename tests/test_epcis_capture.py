"""EPCIS capture (EPCIS 2.0 REST binding) end to end: the real daemon POSTs to a capture
endpoint on a real socket that accepts, fails, refuses, goes down and comes back.

Every document the endpoint receives is validated against GS1's EPCIS 2.0 JSON Schema.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gatewayd.demo.local_broker import LocalBroker
from tests.capture_server import CaptureServer
from tests.certs import make_pki, openssl
from tests.epcis_gateway import GTIN, READ_POINT, P, epcis_config, lot_read, scan, start_gateway
from tests.mqtt_tools import DaemonProcess, Subscriber, wait_until
from tests.pty_scanner import PtyScanner

Validate = Callable[[dict[str, Any]], None]
TOKEN = "s3cret-token"


@dataclass
class Rig:
    tmp_path: Path
    broker: LocalBroker
    scanner: PtyScanner
    dispatch: PtyScanner
    daemons: list[DaemonProcess]
    server: CaptureServer

    def config(self, extra: str = "") -> Path:
        token = self.tmp_path / "epcis-token"
        token.write_text(TOKEN + "\n")
        token.chmod(0o600)
        return epcis_config(
            self.tmp_path,
            self.broker.port,
            self.scanner,
            self.dispatch,
            epcis=f"""
capture_url = "{self.server.url}"
token_file = "{token}"
capture_batch = 2
capture_timeout_s = 2
capture_retry_max_s = 0.5
{extra}
""",
        )

    def start(self, sub: Subscriber, cfg: Path) -> DaemonProcess:
        return start_gateway(sub, self.daemons, cfg, self.tmp_path)


@pytest.fixture
def rig(tmp_path: Path, broker: LocalBroker, scanner: PtyScanner, daemons: list[DaemonProcess]) -> Iterator[Rig]:
    dispatch = PtyScanner(tmp_path, "dispatch")
    server = CaptureServer()
    yield Rig(tmp_path, broker, scanner, dispatch, daemons, server)
    for d in daemons:
        d.stop()
    server.close()
    dispatch.close()


def scan_event_ids(sub: Subscriber) -> list[str]:
    return [p["event_id"] for p in sub.payloads(f"{P}/scans/")]


def test_documents_are_captured_over_tls_with_the_token(rig: Rig, tmp_path: Path, assert_valid: Validate) -> None:
    if openssl() is None:
        pytest.skip("needs the openssl command to make a test certificate authority")
    pki = make_pki(tmp_path / "pki")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(pki.server_cert, pki.server_key)
    rig.server.tls = tls
    rig.server.up()
    cfg = rig.config(f'ca_file = "{pki.ca}"')
    with Subscriber(rig.broker.port, [f"{P}/#"]) as sub:
        d = rig.start(sub, cfg)
        for lot in ("LOT-1", "LOT-2", "LOT-3"):
            scan(rig.scanner, lot_read(lot))
        wait_until(lambda: len(rig.server.events()) >= 3, what="three events captured", timeout=20)
        ids = [f"urn:uuid:{i}" for i in scan_event_ids(sub)]
        assert [e["eventID"] for e in rig.server.events()] == ids  # in seq order, each once
        # The same events as on MQTT: receiving, the read point, the lot class.
        wait_until(lambda: len(sub.on(f"{P}/epcis/")) == 3, what="three documents on MQTT")
        on_mqtt = [e for m in sub.on(f"{P}/epcis/") for e in m.json()["epcisBody"]["eventList"]]
        assert rig.server.events() == on_mqtt
        first = on_mqtt[0]
        assert (first["bizStep"], first["readPoint"]["id"]) == ("receiving", READ_POINT)
        assert first["quantityList"] == [{"epcClass": f"https://id.gs1.org/01/{GTIN}/10/LOT-1"}]
        for post in rig.server.posts():
            assert post.headers["content-type"] == "application/json"
            assert post.headers["authorization"] == f"Bearer {TOKEN}"
            assert post.headers["gs1-epcis-version"] == "2.0.0"
            assert_valid(json.loads(post.body))
        # Each job was followed past "running" to its outcome.
        gets = [r for r in rig.server.requests if r.method == "GET"]
        assert len(gets) >= 2 * len(rig.server.posts())
        assert d.terminate() == 0


def test_an_endpoint_outage_across_restarts_and_kill_9_loses_nothing(rig: Rig, assert_valid: Validate) -> None:
    rig.server.mode = "503"
    rig.server.up()
    cfg = rig.config()
    with Subscriber(rig.broker.port, [f"{P}/#"]) as sub:
        d = rig.start(sub, cfg)
        for i in range(3):
            scan(rig.scanner, lot_read(f"OUT-{i}"))
        wait_until(lambda: len(sub.on(f"{P}/epcis/")) >= 3, what="EPCIS on MQTT during the outage")
        wait_until(lambda: len(rig.server.posts()) >= 2, what="retries against the 503")
        d.kill9()
        rig.server.down()  # now it does not even answer
        d = rig.start(sub, cfg)
        for i in range(3, 5):
            scan(rig.scanner, lot_read(f"OUT-{i}"))
        wait_until(lambda: len(sub.on(f"{P}/epcis/")) >= 5, what="EPCIS on MQTT while the endpoint is down")
        assert d.terminate() == 0  # an orderly restart while it is still down
        d = rig.start(sub, cfg)
        scan(rig.scanner, lot_read("OUT-5"))
        wait_until(lambda: len(scan_event_ids(sub)) == 6, what="six scans")
        # The site engineer sees it in `gatewayd status` (the status file is rewritten every 5 s).
        line = wait_until(lambda: _epcis_status(cfg, "FAILING, 6 waiting"), what="the capture outage in status")
        assert f"capture {rig.server.url}: FAILING, 6 waiting (POST {rig.server.url}:" in line
        rig.server.mode = "accept"
        rig.server.up()
        wanted = {f"urn:uuid:{i}" for i in scan_event_ids(sub)}
        wait_until(lambda: {e["eventID"] for e in rig.server.events()} >= wanted, what="every event", timeout=30)
        events = rig.server.events()
        # Every read arrived; one arriving twice carries the same eventID and content.
        assert {e["eventID"] for e in events} == wanted
        by_id: dict[str, dict[str, Any]] = {}
        for e in events:
            assert by_id.setdefault(e["eventID"], e) == e
        for post in rig.server.posts():
            if post.body:
                assert_valid(json.loads(post.body))
        assert d.terminate() == 0


def test_a_refused_document_raises_an_alarm_is_kept_and_can_be_replayed(rig: Rig, assert_valid: Validate) -> None:
    rig.server.script = ["400", "fail_job"]
    rig.server.up()
    cfg = rig.config()
    with Subscriber(rig.broker.port, [f"{P}/#"]) as sub:
        d = rig.start(sub, cfg)
        scan(rig.scanner, lot_read("BAD-1"))  # answered 400
        wait_until(lambda: len(rig.server.posts()) == 1, what="the first POST")
        scan(rig.scanner, lot_read("BAD-2"))  # accepted, but its capture job fails
        wait_until(lambda: len(rig.server.posts()) == 2, what="the second POST")
        scan(rig.scanner, lot_read("GOOD-3"))  # the next one goes on
        ids = wait_until(lambda: scan_event_ids(sub) if len(scan_event_ids(sub)) == 3 else None, what="3 scans")
        wait_until(lambda: len(rig.server.events()) == 1, what="the third document captured")
        assert rig.server.events()[0]["eventID"] == f"urn:uuid:{ids[2]}"
        status = sub.wait_for(
            f"{P}/status",
            lambda p: any("seq 2" in a["detail"] for a in p.get("alarms", []) if a["alarm"] == "epcis_capture_refused"),
        )
        assert "epcis-refused/2.json" in status["alarms"][0]["detail"]
        refused_dir = rig.tmp_path / "state" / "epcis-refused"
        for seq, event_id in ((1, ids[0]), (2, ids[1])):
            kept = json.loads((refused_dir / f"{seq}.json").read_text())
            assert_valid(kept)
            assert kept["epcisBody"]["eventList"][0]["eventID"] == f"urn:uuid:{event_id}"
        # Once the repository is fixed, replay sends them again, on MQTT and to the endpoint.
        sub.publish(f"{P}/request/replay", {"transaction": "r1", "from_seq": 1, "to_seq": 2})
        wait_until(lambda: len(rig.server.events()) == 3, what="the refused documents replayed")
        assert sorted(e["eventID"] for e in rig.server.events()) == sorted(f"urn:uuid:{i}" for i in ids)
        wait_until(lambda: len([m for m in sub.on(f"{P}/epcis/") if _replayed(m)]) == 2, what="MQTT replay")
        assert d.terminate() == 0


def _replayed(msg: Any) -> bool:
    props = getattr(msg.properties, "UserProperty", None) or []
    return ("replay", "1") in props


def _epcis_status(cfg: Path, fragment: str) -> str | None:
    """The ``epcis:`` line of ``gatewayd status`` once it contains ``fragment``."""
    result = subprocess.run(
        [sys.executable, "-m", "gatewayd", "status", "--config", str(cfg)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    line = next((x for x in result.stdout.splitlines() if x.startswith("epcis:")), "")
    return line if fragment in line else None
