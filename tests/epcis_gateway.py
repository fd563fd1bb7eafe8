"""A gateway with EPCIS output for end-to-end tests: a receiving and a dispatch station, each
with a pty scanner, and the reads the tests scan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.mqtt_tools import DaemonProcess, Subscriber, start_daemon, wait_online, wait_until, write_config
from tests.pty_scanner import PtyScanner

GATEWAY = "epcis-gw"
P = f"gatewayd/{GATEWAY}"
READ_POINT = "urn:epc:id:sgln:9506000.13435.3"
BIZ_LOCATION = "urn:epc:id:sgln:9506000.13435.0"
DISPATCH_POINT = "urn:epc:id:sgln:9506000.13435.4"

GS = "\x1d"
GTIN = "09506000134352"
# GS1 element strings as a scanner sends them (AIM ]C1, FNC1 as GS), each with its meaning.
LOT_WITH_WEIGHT = f"]C101{GTIN}10LOT-A{GS}3102001250"  # GTIN + lot + 12.5 kg net
LOT_B = f"]C101{GTIN}10LOT-B"
SSCC_1 = "106141410000000019"
SSCC_2 = "106141410000000026"
GSIN = "06141411234567890"


def lot_read(lot: str) -> str:
    return f"]C101{GTIN}10{lot}"


def epcis_config(
    tmp_path: Path, broker_port: int, receiving: PtyScanner, dispatch: PtyScanner, *, epcis: str = ""
) -> Path:
    return write_config(
        tmp_path / "gatewayd.toml",
        f"""
[gateway]
id = "{GATEWAY}"
state_dir = "{tmp_path / "state"}"

[mqtt]
brokers = ["mqtt://127.0.0.1:{broker_port}"]
keepalive = 5
reconnect_min_s = 0.1
reconnect_max_s = 0.5

[outbox]
drain_rate = 0

[[stations]]
id = "dock-03"
step = "receiving"
location = "{READ_POINT}"
biz_location = "{BIZ_LOCATION}"
dedupe_ms = 0

[[stations]]
id = "dock-04"
step = "dispatch"
location = "{DISPATCH_POINT}"
dedupe_ms = 0

[[scanners]]
id = "dock-03-left"
station = "dock-03"
driver = "serial"
port = "{receiving.path}"
char_timeout_ms = 0

[[scanners]]
id = "dock-04-left"
station = "dock-04"
driver = "serial"
port = "{dispatch.path}"
char_timeout_ms = 0

[epcis]
time_zone = "Europe/Amsterdam"
idle_timeout_s = 300
{epcis}
""",
    )


def scan(scanner: PtyScanner, data: str) -> None:
    scanner.write(data.encode() + b"\r")


def events(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return list(doc["epcisBody"]["eventList"])


def epcis_documents(sub: Subscriber, station: str = "") -> list[dict[str, Any]]:
    return [json.loads(m.payload) for m in sub.on(f"{P}/epcis/{station}")]


def all_events(sub: Subscriber, station: str = "") -> list[dict[str, Any]]:
    return [e for d in epcis_documents(sub, station) for e in events(d)]


SCANNERS = ("dock-03-left", "dock-04-left")


def start_gateway(sub: Subscriber, daemons: list[DaemonProcess], cfg: Path, tmp_path: Path) -> DaemonProcess:
    """Start the daemon and wait until it is online with both scanners open: the serial
    driver drops what was typed before it opened the port."""
    since = {d: len(sub.on(f"{P}/devices/{d}/state")) for d in SCANNERS}
    status_since = len(sub.on(f"{P}/status"))
    d = start_daemon(daemons, cfg, tmp_path)
    wait_online(sub, d, root=P, since=status_since)
    for scanner in SCANNERS:
        wait_until(
            lambda s=scanner: any(
                m.json()["state"] == "connected" for m in sub.on(f"{P}/devices/{s}/state")[since[s] :]
            ),
            timeout=20,
            what=f"scanner {scanner} connected",
        )
    return d
