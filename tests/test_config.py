"""Config validation: every problem named by its key path, all at once; defaults; paths.

The shipped example (config/gatewayd.example.toml) is checked here too: it parses, and it
documents every field of every settings dataclass, so it cannot drift from the schema.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from gatewayd.cli.check import to_toml
from gatewayd.config import (
    BrokerUrl,
    DecodeSettings,
    EpcisSettings,
    EvdevScannerSettings,
    FeedbackSettings,
    FramingSettings,
    GatewaySettings,
    GpioIndicatorSettings,
    HidPosScannerSettings,
    HttpSettings,
    LabelSettings,
    LogSettings,
    MqttSettings,
    OutboxSettings,
    PrinterSettings,
    ReplayScannerSettings,
    ScannerIndicatorSettings,
    ScannerSettings,
    SerialScannerSettings,
    Settings,
    StationSettings,
    TcpScannerSettings,
    TowerSerialIndicatorSettings,
    load,
    parse,
)
from gatewayd.errors import ConfigError
from gatewayd_drivers.printer_transport import open_transport

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "gatewayd.example.toml"

BASE: dict[str, Any] = {
    "gateway": {"id": "dock-pi-03"},
    "stations": [
        {"id": "dock-03", "step": "receiving"},
        {"id": "dock-04", "step": "dispatch"},
    ],
    "scanners": [
        {"id": "left", "station": "dock-03", "driver": "serial", "port": "/dev/ttyUSB0"},
        {"id": "fixed", "station": "dock-04", "driver": "tcp", "host": "10.0.0.61", "port": 2001},
    ],
    "printers": [
        {"id": "zebra", "driver": "zpl", "transport": "tcp://10.0.0.50:9100"},
    ],
}


DELETE = object()


def with_(**changes: Any) -> dict[str, Any]:
    """BASE with changes: ``section=value`` replaces, ``section__key=value`` sets one key,
    ``scanners__0__port=...`` sets a key of an array item; ``...=DELETE`` removes."""
    data = copy.deepcopy(BASE)
    for spec, value in changes.items():
        parts = [int(p) if p.isdigit() else p for p in spec.split("__")]
        target: Any = data
        for p in parts[:-1]:
            target = target.setdefault(p, {}) if isinstance(p, str) else target[p]
        if value is DELETE:
            del target[parts[-1]]
        else:
            target[parts[-1]] = value
    return data


def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(data)
    return info.value.problems


def key_paths(problems: list[str]) -> list[str]:
    return [p.split(": ", 1)[0] for p in problems]


def test_base_config_is_valid() -> None:
    settings = parse(BASE)
    assert [s.id for s in settings.scanners] == ["left", "fixed"]


INVALID: list[tuple[str, dict[str, Any], list[str], str]] = [
    # (case id, config, exact key paths reported, a fragment of the first message)
    ("unknown top-level key", with_(gatewy={}), ["gatewy"], "unknown key"),
    ("unknown gateway key", with_(gateway__sate_dir="/x"), ["gateway.sate_dir"], "unknown key (check the spelling)"),
    ("unknown mqtt key", with_(mqtt={"broker": "mqtt://h"}), ["mqtt.broker"], "unknown key"),
    ("unknown outbox key", with_(outbox={"max_event": 1}), ["outbox.max_event"], "unknown key"),
    ("unknown decode key", with_(decode={"lot_patern": "x"}), ["decode.lot_patern"], "unknown key"),
    ("unknown labels key", with_(labels={"resolvr": "https://x"}), ["labels.resolvr"], "unknown key"),
    ("unknown log key", with_(log={"levl": "info"}), ["log.levl"], "unknown key"),
    ("unknown station key", with_(stations__1__dedupe=5), ["stations[1].dedupe"], "unknown key"),
    ("unknown scanner key", with_(scanners__0__baud=9600), ["scanners[0].baud"], "unknown key"),
    ("unknown printer key", with_(printers__0__ip="10.0.0.1"), ["printers[0].ip"], "unknown key"),
    ("tcp key on a serial scanner", with_(scanners__0__host="h"), ["scanners[0].host"], "unknown key"),
    ("serial key on a tcp scanner", with_(scanners__1__baudrate=9600), ["scanners[1].baudrate"], "unknown key"),
    (
        "framing key on an evdev scanner",
        with_(
            scanners__0={
                "id": "w",
                "station": "dock-03",
                "driver": "evdev",
                "path": "/dev/input/event3",
                "terminator": "\r",
            }
        ),
        ["scanners[0].terminator"],
        "unknown key",
    ),
    ("missing [gateway]", with_(gateway=DELETE), ["gateway"], "required table [gateway] is missing"),
    ("gateway not a table", with_(gateway="dock"), ["gateway"], "expected a table [gateway]"),
    ("missing gateway.id", with_(gateway={"site": "ams1"}), ["gateway.id"], "required key is missing"),
    ("bad gateway id", with_(gateway__id="dock pi/03"), ["gateway.id"], "expected 1-64 letters"),
    ("gateway id with wildcard", with_(gateway__id="dock+1"), ["gateway.id"], "'dock+1'"),
    (
        "bad station id",
        with_(stations__0__id="#all"),
        ["stations[0].id", "scanners[0].station"],
        "expected 1-64 letters",
    ),
    (
        "duplicate station ids",
        with_(stations__1__id="dock-03"),
        ["stations[1].id", "scanners[1].station"],
        "duplicate station id 'dock-03'",
    ),
    (
        # The station exists, with a bad step: its scanners are not also told it is missing.
        "unknown step",
        with_(stations__0__step="shipping"),
        ["stations[0].step"],
        "expected one of 'receiving'",
    ),
    (
        "scanner references a missing station",
        with_(scanners__0__station="dock-99"),
        ["scanners[0].station"],
        "no station 'dock-99'",
    ),
    (
        "printer references a missing station",
        with_(printers__0__station="dock-99"),
        ["printers[0].station"],
        "no station 'dock-99'",
    ),
    (
        "duplicate scanner ids",
        with_(scanners__1__id="left"),
        ["scanners[1].id"],
        "duplicate device id 'left' (also scanners[0])",
    ),
    (
        "scanner and printer share an id",
        with_(printers__0__id="left"),
        ["printers[0].id"],
        "duplicate device id 'left' (also scanners[0])",
    ),
    ("tcp port 0", with_(scanners__1__port=0), ["scanners[1].port"], "expected a value from 1 to 65535, got 0"),
    (
        "tcp port 70000",
        with_(scanners__1__port=70000),
        ["scanners[1].port"],
        "expected a value from 1 to 65535, got 70000",
    ),
    ("tcp port not a number", with_(scanners__1__port="x"), ["scanners[1].port"], "expected an integer, got 'x'"),
    ("tcp port true", with_(scanners__1__port=True), ["scanners[1].port"], "expected an integer, got True"),
    ("tcp client without host", with_(scanners__1__host=DELETE), ["scanners[1].host"], "required key is missing"),
    ("tcp bad mode", with_(scanners__1__mode="listen"), ["scanners[1].mode"], "expected one of 'client', 'server'"),
    ("serial without port", with_(scanners__0__port=DELETE), ["scanners[0].port"], "required key is missing"),
    ("serial bad baudrate", with_(scanners__0__baudrate=9601), ["scanners[0].baudrate"], "got 9601"),
    ("serial bad parity", with_(scanners__0__parity="X"), ["scanners[0].parity"], "expected one of 'N'"),
    ("serial bad stopbits", with_(scanners__0__stopbits=3), ["scanners[0].stopbits"], "got 3.0"),
    (
        "serial bad prefix",
        with_(scanners__0__prefix="symbol"),
        ["scanners[0].prefix"],
        "expected one of 'aim', 'honeywell', 'zebra', 'none', got 'symbol'",
    ),
    (
        "tcp prefix upper case",
        with_(scanners__1__prefix="AIM"),
        ["scanners[1].prefix"],
        "expected one of 'aim', 'honeywell', 'zebra', 'none', got 'AIM'",
    ),
    ("empty terminator", with_(scanners__0__terminator=""), ["scanners[0].terminator"], "expected a non-empty string"),
    (
        "scanner without driver",
        with_(scanners__0__driver=DELETE),
        ["scanners[0].driver", "scanners[0].port"],
        "required key is missing",
    ),
    (
        "unknown scanner driver",
        with_(scanners__0__driver="bluetooth"),
        ["scanners[0].driver", "scanners[0].port"],
        "expected one of 'serial', 'tcp'",
    ),
    (
        "bad lot_pattern",
        with_(decode={"lot_pattern": "([A-Z"}),
        ["decode.lot_pattern"],
        "not a valid regular expression",
    ),
    (
        "separator substitute too long",
        with_(decode={"separator_substitutes": ["||"]}),
        ["decode.separator_substitutes[0]"],
        "expected a single character",
    ),
    (
        "separator substitute a letter",
        with_(decode={"separator_substitutes": ["|", "G"]}),
        ["decode.separator_substitutes[1]"],
        "a letter or digit would corrupt GS1 data",
    ),
    (
        "broker with http scheme",
        with_(mqtt={"brokers": ["http://broker:1883"]}),
        ["mqtt.brokers[0]"],
        "expected mqtt://host[:port] or mqtts://host[:port]",
    ),
    ("broker without host", with_(mqtt={"brokers": ["mqtt://:1883"]}), ["mqtt.brokers[0]"], "missing host"),
    (
        "broker port 70000",
        with_(mqtt={"brokers": ["mqtt://b:1883", "mqtt://b:70000"]}),
        ["mqtt.brokers[1]"],
        "bad port",
    ),
    ("broker port not a number", with_(mqtt={"brokers": ["mqtt://b:x"]}), ["mqtt.brokers[0]"], "bad port"),
    (
        "broker with credentials",
        with_(mqtt={"brokers": ["mqtt://u:pw@b"]}),
        ["mqtt.brokers[0]"],
        "credentials go in username/password_file",
    ),
    ("broker not a string", with_(mqtt={"brokers": [1883]}), ["mqtt.brokers[0]"], "expected a URL string"),
    ("brokers empty", with_(mqtt={"brokers": []}), ["mqtt.brokers"], "expected at least one broker URL"),
    ("brokers a string", with_(mqtt={"brokers": "mqtt://b"}), ["mqtt.brokers"], "expected a list"),
    ("password in config", with_(mqtt={"username": "u", "password": "secret"}), ["mqtt.password"], "set password_file"),
    (
        "cert without key",
        with_(mqtt={"cert_file": "/etc/gatewayd/c.pem"}),
        ["mqtt.key_file"],
        "cert_file is set, so key_file is required",
    ),
    (
        "key without cert",
        with_(mqtt={"key_file": "/etc/gatewayd/k.pem"}),
        ["mqtt.cert_file"],
        "key_file is set, so cert_file is required",
    ),
    (
        "password file without username",
        with_(mqtt={"password_file": "/etc/gatewayd/pw"}),
        ["mqtt.username"],
        "username is required",
    ),
    ("bad protocol", with_(mqtt={"protocol": 4}), ["mqtt.protocol"], "expected one of 'auto', 3, 5, got 4"),
    ("protocol as string", with_(mqtt={"protocol": "5"}), ["mqtt.protocol"], "expected one of 'auto', 3, 5, got '5'"),
    ("protocol as float", with_(mqtt={"protocol": 5.0}), ["mqtt.protocol"], "expected an integer or a string, got 5.0"),
    (
        "response topic prefix with a wildcard",
        with_(mqtt={"response_topic_prefixes": ["wms/replies", "wms/#"]}),
        ["mqtt.response_topic_prefixes[1]"],
        "expected topic levels without '#', '+' or leading/trailing '/', got 'wms/#'",
    ),
    (
        "response topic prefix of the broker",
        with_(mqtt={"response_topic_prefixes": ["$SYS"]}),
        ["mqtt.response_topic_prefixes[0]"],
        "topics starting with '$' belong to the broker, got '$SYS'",
    ),
    (
        "response topic prefix not a string",
        with_(mqtt={"response_topic_prefixes": [5]}),
        ["mqtt.response_topic_prefixes[0]"],
        "expected a topic prefix string, got 5",
    ),
    ("topic prefix with wildcard", with_(mqtt={"topic_prefix": "plant/#"}), ["mqtt.topic_prefix"], "without '#', '+'"),
    (
        "topic prefix with trailing slash",
        with_(mqtt={"topic_prefix": "plant/"}),
        ["mqtt.topic_prefix"],
        "leading/trailing '/'",
    ),
    ("keepalive too small", with_(mqtt={"keepalive": 1}), ["mqtt.keepalive"], "expected a value from 5 to 3600"),
    (
        "reconnect max below min",
        with_(mqtt={"reconnect_min_s": 5, "reconnect_max_s": 1}),
        ["mqtt.reconnect_max_s"],
        "must not be smaller",
    ),
    ("mqtt not a table", with_(mqtt="mqtt://b"), ["mqtt"], "expected a table [mqtt]"),
    (
        "outbox count as bool",
        with_(outbox={"max_events": True}),
        ["outbox.max_events"],
        "expected an integer, got True",
    ),
    (
        "outbox bad synchronous",
        with_(outbox={"synchronous": "off"}),
        ["outbox.synchronous"],
        "expected one of 'full', 'normal'",
    ),
    ("log level upper case", with_(log={"level": "INFO"}), ["log.level"], "expected one of 'debug'"),
    (
        "resolver not http",
        with_(labels={"resolver": "ftp://id.gs1.org"}),
        ["labels.resolver"],
        "expected an http(s) URL",
    ),
    (
        "lot_format without seq",
        with_(labels={"lot_format": "{supplier}-{date:%Y%m%d}"}),
        ["labels.lot_format"],
        "must contain {seq",
    ),
    ("lot_format unknown field", with_(labels={"lot_format": "{plant}-{seq}"}), ["labels.lot_format"], "cannot format"),
    ("dedupe as float", with_(stations__0__dedupe_ms=1.5), ["stations[0].dedupe_ms"], "expected an integer, got 1.5"),
    (
        "stations a table",
        with_(stations={"id": "dock-03", "step": "receiving"}),
        ["stations", "scanners[0].station", "scanners[1].station"],
        "expected an array of tables [[stations]]",
    ),
    (
        "printer transport scheme",
        with_(printers__0__transport="lpt://zebra"),
        ["printers[0].transport"],
        "expected tcp://host:port, usb://VID:PID",
    ),
    (
        "printer tcp bad port",
        with_(printers__0__transport="tcp://10.0.0.50:99999"),
        ["printers[0].transport"],
        "bad port",
    ),
    (
        "printer tcp without host",
        with_(printers__0__transport="tcp://:9100"),
        ["printers[0].transport"],
        "missing host",
    ),
    (
        "printer usb bad id",
        with_(printers__0__transport="usb://0a5f"),
        ["printers[0].transport"],
        "expected usb://VID:PID in hex",
    ),
    (
        "printer file without path",
        with_(printers__0__transport="file://"),
        ["printers[0].transport"],
        "missing device path",
    ),
    (
        "printer serial unknown option",
        with_(printers__0__transport="serial:///dev/ttyUSB0?parity=E"),
        ["printers[0].transport"],
        "unknown option 'parity'",
    ),
    (
        "printer serial bad baudrate",
        with_(printers__0__transport="serial:///dev/ttyUSB0?baudrate=fast"),
        ["printers[0].transport"],
        "baudrate must be a number",
    ),
    (
        "printer cups without queue",
        with_(printers__0__transport="cups://"),
        ["printers[0].transport"],
        "missing queue name",
    ),
    ("printer bad dpi", with_(printers__0__dpi=200), ["printers[0].dpi"], "expected one of 203, 300, 600, got 200"),
    ("printer bad driver", with_(printers__0__driver="epl"), ["printers[0].driver"], "expected one of 'zpl', 'escpos'"),
    (
        "printer allow_raw as string",
        with_(printers__0__allow_raw="yes"),
        ["printers[0].allow_raw"],
        "expected true or false",
    ),
    (
        "escpos with allow_raw",
        with_(printers__0={"id": "rcpt", "driver": "escpos", "transport": "usb://0416:5011", "allow_raw": True}),
        ["printers[0].allow_raw"],
        "raw passthrough is for ZPL printers only",
    ),
    (
        "evdev with path and name",
        with_(
            scanners__0={
                "id": "w",
                "station": "dock-03",
                "driver": "evdev",
                "path": "/dev/input/event3",
                "name": "Scanner",
            }
        ),
        ["scanners[0]"],
        "an evdev scanner needs exactly one of path, name or usb",
    ),
    (
        "evdev with name and usb",
        with_(scanners__0={"id": "w", "station": "dock-03", "driver": "evdev", "name": "Scanner", "usb": "05f9:2206"}),
        ["scanners[0]"],
        "exactly one of path, name or usb",
    ),
    (
        "evdev with none of path, name, usb",
        with_(scanners__0={"id": "w", "station": "dock-03", "driver": "evdev"}),
        ["scanners[0]"],
        "exactly one of path, name or usb",
    ),
    (
        "evdev bad layout",
        with_(scanners__0={"id": "w", "station": "dock-03", "driver": "evdev", "usb": "05f9:2206", "layout": "dvorak"}),
        ["scanners[0].layout"],
        "expected one of 'us', 'uk', 'de', 'fr'",
    ),
    (
        "hidpos bad usb id",
        with_(scanners__0={"id": "h", "station": "dock-03", "driver": "hidpos", "usb": "Honeywell"}),
        ["scanners[0].usb"],
        "expected 'VID:PID' in hex",
    ),
    (
        "replay without path",
        with_(scanners__0={"id": "r", "station": "dock-03", "driver": "replay", "loop": "yes"}),
        ["scanners[0].path", "scanners[0].loop"],
        "required key is missing",
    ),
    (
        "evdev suffix with an unknown key",
        with_(scanners__0={"id": "w", "station": "dock-03", "driver": "evdev", "usb": "05f9:2206",
                           "suffix": ["enter", "arrow-down"]}),
        ["scanners[0].suffix[1]"],
        "expected a key name (enter, tab, lf, esc,",
    ),
    (
        "evdev empty suffix",
        with_(scanners__0={"id": "w", "station": "dock-03", "driver": "evdev", "usb": "05f9:2206", "suffix": []}),
        ["scanners[0].suffix"],
        'expected at least one key, e.g. ["enter"]',
    ),
    (
        "evdev terminator_key, now suffix",
        with_(scanners__0={"id": "w", "station": "dock-03", "driver": "evdev", "usb": "05f9:2206",
                           "terminator_key": "tab"}),
        ["scanners[0].terminator_key"],
        'unknown key (terminator_key is now suffix, a list of keys: suffix = ["enter"] or ["tab"])',
    ),
    (
        "replay bad pace",
        with_(scanners__0={"id": "r", "station": "dock-03", "driver": "replay", "path": "a.txt", "pace": "slow"}),
        ["scanners[0].pace"],
        "expected one of 'recorded', 'fast', got 'slow'",
    ),
]


@pytest.mark.parametrize(("data", "paths", "fragment"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_config_names_every_problem_by_key_path(data: dict[str, Any], paths: list[str], fragment: str) -> None:
    problems = problems_of(data)
    assert key_paths(problems) == paths, problems
    assert fragment in problems[0].split(": ", 1)[1], problems


EDGES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("broker port 0 is refused", with_(mqtt={"brokers": ["mqtt://b:0"]}), ["mqtt.brokers[0]"]),
    ("printer tcp port 0 is refused", with_(printers__0__transport="tcp://10.0.0.50:0"), ["printers[0].transport"]),
    (
        "duplicate id after an invalid scanner names its place in the file",
        with_(
            scanners=[
                {"id": "bad", "station": "dock-03"},
                {"id": "r", "station": "dock-03", "driver": "replay", "path": "a.txt"},
                {"id": "r", "station": "dock-03", "driver": "replay", "path": "b.txt"},
            ]
        ),
        ["scanners[0].driver", "scanners[2].id"],
    ),
]


@pytest.mark.parametrize(("data", "paths"), [c[1:] for c in EDGES], ids=[c[0] for c in EDGES])
def test_port_zero_and_duplicate_positions(data: dict[str, Any], paths: list[str]) -> None:
    assert key_paths(problems_of(data)) == paths


def test_several_problems_are_listed_at_once() -> None:
    data = with_(
        gateway__id="dock pi",
        mqtt={"brokers": ["http://b"], "password": "x", "cert_file": "c.pem"},
        decode={"lot_pattern": "(", "lot_patern": "x"},
        stations__1__id="dock-03",
        scanners__1__port=70000,
        printers__0__dpi=200,
        printers__0__transport="usb://zebra",
    )
    problems = problems_of(data)
    assert sorted(key_paths(problems)) == sorted(
        [
            "gateway.id",
            "mqtt.brokers[0]",
            "mqtt.password",
            "mqtt.key_file",
            "decode.lot_pattern",
            "decode.lot_patern",
            "stations[1].id",
            "scanners[1].station",
            "scanners[1].port",
            "printers[0].transport",
            "printers[0].dpi",
        ]
    )
    message = str(ConfigError(problems))
    assert message.startswith("invalid configuration:\n")
    assert all(f"  {p}" in message for p in problems)


def test_minimal_config_gets_the_documented_defaults() -> None:
    s = parse({"gateway": {"id": "gw"}})
    assert s.gateway == GatewaySettings(id="gw", site=None, state_dir=Path("/var/lib/gatewayd"))
    assert s.mqtt == MqttSettings()
    assert s.mqtt.brokers == (BrokerUrl("mqtt", "localhost", 1883),)
    assert (s.mqtt.topic_prefix, s.mqtt.protocol, s.mqtt.client_id) == ("gatewayd", "auto", None)
    assert s.outbox == OutboxSettings(
        max_events=1_000_000,
        max_bytes=512 * 1024 * 1024,
        retention_hours=168.0,
        drain_rate=5000,
        inflight=100,
        synchronous="full",
    )
    assert s.decode == DecodeSettings(
        lot_pattern=None, separator_substitutes=(), step_prefix="STEP:", max_read_bytes=4096
    )
    assert s.labels == LabelSettings(resolver="https://id.gs1.org", lot_format="{supplier}-{date:%Y%m%d}-{seq:04d}")
    assert s.log == LogSettings(level="info")
    assert (s.stations, s.scanners, s.printers) == ((), (), ())
    assert s.topic_root == "gatewayd/gw"


def test_device_defaults() -> None:
    s = parse(
        with_(
            scanners__1__mode="server",
            scanners__1__host=DELETE,
            printers=[{"id": "zebra", "driver": "zpl", "transport": "tcp://10.0.0.50:9100", "station": "dock-03"}],
        )
    )
    assert s.station("dock-03") == StationSettings(id="dock-03", step="receiving", location=None, dedupe_ms=1500)
    serial, tcp = s.scanners
    assert serial.framing == FramingSettings(terminator="\r", stx_etx=False, char_timeout_ms=200, max_length=4096)
    assert (serial.port, serial.baudrate, serial.bytesize, serial.parity, serial.stopbits) == (
        "/dev/ttyUSB0",
        9600,
        8,
        "N",
        1.0,
    )
    # A server-mode TCP scanner listens on every address unless told otherwise.
    assert (tcp.mode, tcp.host, tcp.port) == ("server", "0.0.0.0", 2001)
    assert s.printers[0] == PrinterSettings(
        id="zebra",
        driver="zpl",
        transport="tcp://10.0.0.50:9100",
        dpi=203,
        allow_raw=False,
        station="dock-03",
        profile="default",
        status_interval_s=5.0,
        timeout_s=10.0,
    )


def test_values_are_normalised() -> None:
    s = parse(
        with_(
            mqtt={"brokers": ["mqtts://broker-a", "mqtt://[::1]:1884", "mqtt://broker-b/"], "reconnect_min_s": 1},
            labels={"resolver": "https://id.example.com/"},
            decode={"separator_substitutes": ["|", "~"]},
        )
    )
    assert s.mqtt.brokers == (
        BrokerUrl("mqtts", "broker-a", 8883),
        BrokerUrl("mqtt", "::1", 1884),
        BrokerUrl("mqtt", "broker-b", 1883),
    )
    assert [str(b) for b in s.mqtt.brokers] == ["mqtts://broker-a:8883", "mqtt://[::1]:1884", "mqtt://broker-b:1883"]
    assert s.mqtt.brokers[0].tls and not s.mqtt.brokers[1].tls
    assert s.mqtt.reconnect_min_s == 1.0 and isinstance(s.mqtt.reconnect_min_s, float)
    assert s.labels.resolver == "https://id.example.com"
    assert s.decode.separator_substitutes == ("|", "~")


# -- scanners: one settings class per driver ----------------------------------------------

SCANNER_TABLES: list[tuple[dict[str, Any], ScannerSettings]] = [
    (
        {"driver": "serial", "port": "/dev/ttyUSB0"},
        SerialScannerSettings(id="s", station="dock-03", port="/dev/ttyUSB0"),
    ),
    (
        {"driver": "tcp", "host": "10.0.0.61", "port": 2001},
        TcpScannerSettings(id="s", station="dock-03", host="10.0.0.61", port=2001),
    ),
    (
        {"driver": "serial", "port": "/dev/ttyUSB0", "prefix": "honeywell"},
        SerialScannerSettings(id="s", station="dock-03", port="/dev/ttyUSB0", prefix="honeywell"),
    ),
    (
        {"driver": "tcp", "host": "10.0.0.61", "port": 2001, "prefix": "zebra"},
        TcpScannerSettings(id="s", station="dock-03", host="10.0.0.61", port=2001, prefix="zebra"),
    ),
    ({"driver": "evdev", "usb": "05f9:2206"}, EvdevScannerSettings(id="s", station="dock-03", usb="05f9:2206")),
    (
        {"driver": "evdev", "usb": "05f9:2206", "suffix": ["enter", "down"]},
        EvdevScannerSettings(id="s", station="dock-03", usb="05f9:2206", suffix=("enter", "down")),
    ),
    ({"driver": "hidpos", "usb": "0c2e:0b87"}, HidPosScannerSettings(id="s", station="dock-03", usb="0c2e:0b87")),
    (
        {"driver": "replay", "path": "/srv/reads.txt"},
        ReplayScannerSettings(id="s", station="dock-03", path="/srv/reads.txt"),
    ),
    (
        {"driver": "replay", "path": "/srv/dock.capture", "pace": "fast"},
        ReplayScannerSettings(id="s", station="dock-03", path="/srv/dock.capture", pace="fast"),
    ),
]


@pytest.mark.parametrize(("table", "expected"), SCANNER_TABLES, ids=[str(sorted(t.items())) for t, _ in SCANNER_TABLES])
def test_each_driver_gets_its_settings_class_with_the_dataclass_defaults(
    table: dict[str, Any], expected: ScannerSettings
) -> None:
    [scanner] = parse(with_(scanners=[{"id": "s", "station": "dock-03", **table}])).scanners
    assert scanner == expected  # every default left out of the table is the dataclass's own
    assert type(scanner) is type(expected) and scanner.driver == table["driver"]


FOREIGN_KEYS: list[tuple[str, dict[str, Any], str]] = [
    (
        "tcp key on a serial scanner",
        with_(scanners__0__mode="server"),
        "scanners[0].mode: unknown key (mode is a key of driver 'tcp', not 'serial')",
    ),
    (
        "serial key on a tcp scanner",
        with_(scanners__1__parity="E"),
        "scanners[1].parity: unknown key (parity is a key of driver 'serial', not 'tcp')",
    ),
    (
        "framing key on a replay scanner",
        with_(scanners__0={"id": "r", "station": "dock-03", "driver": "replay", "path": "a.txt", "stx_etx": True}),
        "scanners[0].stx_etx: unknown key (stx_etx is a key of driver 'serial' or 'tcp', not 'replay')",
    ),
    (
        "evdev key on a hidpos scanner",
        with_(scanners__0={"id": "h", "station": "dock-03", "driver": "hidpos", "usb": "0c2e:0b87", "layout": "de"}),
        "scanners[0].layout: unknown key (layout is a key of driver 'evdev', not 'hidpos')",
    ),
    (
        "prefix on a keyboard wedge",
        with_(scanners__0={"id": "w", "station": "dock-03", "driver": "evdev", "usb": "05f9:2206", "prefix": "aim"}),
        "scanners[0].prefix: unknown key (prefix is a key of driver 'serial' or 'tcp', not 'evdev')",
    ),
    (
        "driver key without a driver",
        with_(scanners__0__driver=DELETE),
        "scanners[0].port: unknown key (port is a key of driver 'serial' or 'tcp'; set driver first)",
    ),
]


@pytest.mark.parametrize(("data", "message"), [c[1:] for c in FOREIGN_KEYS], ids=[c[0] for c in FOREIGN_KEYS])
def test_a_key_of_another_driver_names_the_driver_it_belongs_to(data: dict[str, Any], message: str) -> None:
    assert message in problems_of(data)


def test_effective_config_of_every_driver_parses_back_to_the_same_settings(tmp_path: Path) -> None:
    # `gatewayd check` prints each scanner with its own driver's keys, framing keys flat.
    s = load(write(tmp_path / "gatewayd.toml", uncommented_example()))
    again = parse(tomllib.loads(to_toml(s.to_dict())), source=s.source)
    assert again == s
    tables = {t["driver"]: t for t in s.to_dict()["scanners"]}
    assert set(tables["tcp"]) == {"id", "station", "driver", "host", "port", "mode", "prefix", *FRAMING_KEYS}
    assert set(tables["hidpos"]) == {"id", "station", "driver", "usb", "serial_number"}


FRAMING_KEYS = {f.name for f in dataclasses.fields(FramingSettings)}


# -- printers ------------------------------------------------------------------------------


def test_printer_tcp_port_defaults_to_9100_and_is_spelled_out() -> None:
    s = parse(with_(printers__0__transport="tcp://10.0.0.50"))
    assert s.printers[0].transport == "tcp://10.0.0.50:9100"
    assert s.to_dict()["printers"][0]["transport"] == "tcp://10.0.0.50:9100"


@pytest.mark.parametrize(
    "url",
    [
        "tcp://10.0.0.50",
        "tcp://10.0.0.50:6101",
        "tcp://10.0.0.50:0",
        "tcp://:9100",
        "usb://0a5f:0164",
        "usb://zebra",
        "file:///dev/usb/lp0",
        "file://",
        "serial:///dev/ttyUSB0",
        "serial:///dev/ttyUSB0?baudrate=fast",
        "cups://zebra_raw",
        "cups://-o",
        "lpt://zebra",
    ],
)
def test_config_accepts_exactly_the_printer_urls_the_daemon_can_open(url: str) -> None:
    refused: str | None = None
    try:
        open_transport(url, id="p", timeout=1.0)
    except ValueError as exc:
        refused = str(exc)
    if refused is None:
        assert parse(with_(printers__0__transport=url)).printers[0].transport
    else:
        assert problems_of(with_(printers__0__transport=url)) == [f"printers[0].transport: {refused}"]


def test_printer_station_is_kept_and_checked() -> None:
    s = parse(with_(printers__0__station="dock-04"))
    assert s.printers[0].station == "dock-04"
    assert s.to_dict()["printers"][0]["station"] == "dock-04"
    assert problems_of(with_(printers__0__station="dock-99")) == [
        "printers[0].station: no station 'dock-99' in [[stations]] (known: dock-03, dock-04)"
    ]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


RELATIVE = """
[gateway]
id = "gw"
state_dir = "state"
[mqtt]
username = "gw"
password_file = "secrets/mqtt-password"
ca_file = "tls/ca.pem"
cert_file = "tls/gw.crt"
key_file = "/etc/ssl/private/gw.key"
[labels]
templates_dir = "labels"
[[stations]]
id = "s"
step = "receiving"
[[scanners]]
id = "replay"
station = "s"
driver = "replay"
path = "reads/day.txt"
[[scanners]]
id = "serial"
station = "s"
driver = "serial"
port = "ttyUSB0"
"""


def test_relative_paths_are_resolved_against_the_config_directory(tmp_path: Path) -> None:
    base = tmp_path / "conf"
    base.mkdir()
    cfg = write(base / "gatewayd.toml", RELATIVE)
    s = load(cfg)
    assert s.source == cfg
    assert s.gateway.state_dir == base / "state"
    assert s.mqtt.password_file == base / "secrets" / "mqtt-password"
    assert s.mqtt.ca_file == base / "tls" / "ca.pem"
    assert s.mqtt.cert_file == base / "tls" / "gw.crt"
    assert s.mqtt.key_file == Path("/etc/ssl/private/gw.key")  # absolute paths are kept
    assert s.labels.templates_dir == base / "labels"
    replay, serial = s.scanners
    assert replay.path == str(base / "reads" / "day.txt")
    assert serial.port == "ttyUSB0"  # a device name, not a file next to the config


def test_relative_paths_are_absolute_even_for_a_config_named_relative_to_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "gatewayd.toml", RELATIVE)
    monkeypatch.chdir(tmp_path)
    s = load(Path("gatewayd.toml"))
    # The daemon may change directory (systemd starts it in /); paths must not depend on cwd.
    assert s.gateway.state_dir == tmp_path / "state"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[gateway\nid = 1", "not valid TOML"),
        (None, "file not found (pass --config PATH or set GATEWAYD_CONFIG)"),
    ],
    ids=["bad TOML", "missing file"],
)
def test_unreadable_config_names_the_file(tmp_path: Path, text: str | None, fragment: str) -> None:
    path = tmp_path / "gatewayd.toml"
    if text is not None:
        write(path, text)
    with pytest.raises(ConfigError) as info:
        load(path)
    [problem] = info.value.problems
    assert problem.startswith(f"{path}: ") and fragment in problem


# -- the shipped example ---------------------------------------------------------------------

SECTION_RE = re.compile(r"^#?\s*(\[\[?[a-z_]+\]\]?)\s*$")
KEY_RE = re.compile(r"^#?\s*([a-z_]+)\s*=")


def example_keys() -> dict[str, set[str]]:
    """Keys documented per section header: active, optional ("#key = ") and alternatives ("# key = ")."""
    keys: dict[str, set[str]] = {}
    section = ""
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        if m := SECTION_RE.match(line):
            section = m.group(1)
            keys.setdefault(section, set())
        elif m := KEY_RE.match(line):
            keys.setdefault(section, set()).add(m.group(1))
    return keys


def uncommented_example() -> str:
    """The example with every optional setting and alternative block ("#key", "#[table]") switched on."""
    return re.sub(r"(?m)^#(?=\[|[a-z_]+ =)", "", EXAMPLE.read_text(encoding="utf-8"))


SCANNER_CLASSES: tuple[type[ScannerSettings], ...] = (
    SerialScannerSettings,
    TcpScannerSettings,
    EvdevScannerSettings,
    HidPosScannerSettings,
    ReplayScannerSettings,
)


def scanner_keys() -> set[str]:
    """Every key of a [[scanners]] table, of any driver."""
    names = {f.name for cls in (*SCANNER_CLASSES, FramingSettings) for f in dataclasses.fields(cls)} | {"driver"}
    return names - {"framing"}


def test_example_config_is_valid_as_shipped() -> None:
    s = load(EXAMPLE)
    assert s.gateway.id == "dock-pi-03"
    assert {sc.driver for sc in s.scanners} == {"serial", "tcp"}
    assert all(sc.port.startswith("/dev/serial/by-id/") for sc in s.scanners if isinstance(sc, SerialScannerSettings))
    assert [p.driver for p in s.printers] == ["zpl"]


def test_example_config_with_every_option_switched_on_is_valid(tmp_path: Path) -> None:
    s = load(write(tmp_path / "gatewayd.toml", uncommented_example()))
    assert sorted(sc.driver for sc in s.scanners) == sorted(["serial", "tcp", "evdev", "hidpos", "replay"])
    assert sorted(p.driver for p in s.printers) == ["escpos", "zpl"]
    assert s.mqtt.username and s.mqtt.password_file and s.mqtt.cert_file and s.mqtt.key_file


def test_example_config_documents_every_setting() -> None:
    keys = example_keys()
    tables = {
        "[gateway]": GatewaySettings,
        "[mqtt]": MqttSettings,
        "[outbox]": OutboxSettings,
        "[decode]": DecodeSettings,
        "[labels]": LabelSettings,
        "[log]": LogSettings,
        "[[stations]]": StationSettings,
        "[[printers]]": PrinterSettings,
        "[feedback]": FeedbackSettings,
        "[http]": None,
        "[[indicators]]": GpioIndicatorSettings,
        "[epcis]": EpcisSettings,
    }
    missing: list[str] = []
    for header, cls in tables.items():
        if cls is None:
            continue
        missing += [f"{header} {f.name}" for f in dataclasses.fields(cls) if f.name not in keys.get(header, set())]
    missing += [
        f"[[indicators]] {f.name}"
        for cls in (TowerSerialIndicatorSettings, ScannerIndicatorSettings)
        for f in dataclasses.fields(cls)
        if f.name not in keys.get("[[indicators]]", set())
    ]
    if "listen" not in keys.get("[http]", set()):
        missing.append("[http] listen")
    # Scanner settings: every driver's keys; framing settings are scanner keys.
    missing += [f"[[scanners]] {k}" for k in sorted(scanner_keys() - keys.get("[[scanners]]", set()))]
    # Every section of Settings has a table in the example (source is not a config key).
    missing += [
        f"[{f.name}]"
        for f in dataclasses.fields(Settings)
        if f.name != "source" and f"[{f.name}]" not in keys and f"[[{f.name}]]" not in keys
    ]
    assert not missing, f"config/gatewayd.example.toml does not document: {', '.join(missing)}"


def test_example_config_documents_only_real_keys() -> None:
    # Every key the example mentions is one the schema accepts (prose alternatives included),
    # so the example never teaches a key that `gatewayd check` would refuse.
    data = tomllib.loads(uncommented_example())
    assert set(data) == {f.name for f in dataclasses.fields(Settings)} - {"source"}
    accepted = scanner_keys()
    for header, documented in example_keys().items():
        if header == "[[scanners]]":
            assert documented <= accepted, documented - accepted


def test_example_driver_blocks_cover_every_driver() -> None:
    text = uncommented_example()
    drivers = re.findall(r'(?m)^driver = "([a-z-]+)"', text)
    assert sorted(set(drivers)) == sorted(
        {"serial", "tcp", "evdev", "hidpos", "replay", "zpl", "escpos", "tower-serial", "gpio", "scanner"}
    )


# -- feedback: indicators, [feedback], [http] -------------------------------------------------

STATION = {"gateway": {"id": "gw"}, "stations": [{"id": "dock-03", "step": "receiving"}]}


def test_indicators_http_and_feedback_parse() -> None:
    s = parse(
        {
            **STATION,
            "indicators": [
                {"id": "l1", "station": "dock-03", "driver": "tower-serial", "port": "/dev/ttyUSB0"},
                {"id": "l2", "station": "dock-03", "driver": "gpio", "red": 17, "buzzer": 23, "active_high": False},
            ],
            "feedback": {"accept_ms": 1500},
            "http": {"listen": "[::1]:9000"},
        }
    )
    assert s.indicators == (
        TowerSerialIndicatorSettings(id="l1", station="dock-03", port="/dev/ttyUSB0"),
        GpioIndicatorSettings(id="l2", station="dock-03", red=17, buzzer=23, active_high=False),
    )
    assert s.feedback == FeedbackSettings(accept_ms=1500)
    assert s.http == HttpSettings(host="::1", port=9000)
    assert s.to_dict()["http"] == {"listen": "[::1]:9000"}


def test_no_http_table_means_no_server_and_an_empty_one_listens_on_loopback() -> None:
    assert parse(STATION).http is None
    assert parse({**STATION, "http": {}}).http == HttpSettings(host="127.0.0.1", port=8080)


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"http": {"listen": "8080"}}, "http.listen: expected host:port such as '127.0.0.1:8080'"),
        ({"http": {"listen": "localhost:99999"}}, "http.listen: expected host:port"),
        (
            {"indicators": [{"id": "l", "station": "dock-09", "driver": "tower-serial", "port": "/dev/x"}]},
            "indicators[0].station: no station 'dock-09' in [[stations]]",
        ),
        (
            {"indicators": [{"id": "l", "station": "dock-03", "driver": "patlite", "port": "/dev/x"}]},
            "indicators[0].driver: expected one of 'tower-serial', 'gpio', 'scanner', got 'patlite'",
        ),
        (
            {"indicators": [{"id": "l", "station": "dock-03", "driver": "gpio"}]},
            "indicators[0]: a gpio indicator needs at least one of red, yellow, green or buzzer",
        ),
        (
            {"indicators": [{"id": "l", "station": "dock-03", "driver": "gpio", "red": 17, "port": "/dev/x"}]},
            "indicators[0].port: unknown key (port is a key of driver 'tower-serial', not 'gpio')",
        ),
        (
            {"indicators": [{"id": "l", "station": "dock-03", "driver": "tower-serial"}]},
            "indicators[0].port",
        ),
        (
            {"indicators": [{"id": "b", "station": "dock-03", "driver": "scanner", "scanner": "nope"}]},
            "indicators[0].scanner: no scanner 'nope' in [[scanners]] (known: none defined)",
        ),
        (
            {
                "stations": [{"id": "dock-03", "step": "receiving"}, {"id": "dock-04", "step": "receiving"}],
                "scanners": [{"id": "s4", "station": "dock-04", "driver": "tcp", "mode": "server", "port": 1}],
                "indicators": [{"id": "b", "station": "dock-03", "driver": "scanner", "scanner": "s4"}],
            },
            "indicators[0].scanner: scanner 's4' serves station 'dock-04', not 'dock-03'",
        ),
        (
            {
                "scanners": [{"id": "r", "station": "dock-03", "driver": "replay", "path": "x.replay"}],
                "indicators": [{"id": "b", "station": "dock-03", "driver": "scanner", "scanner": "r"}],
            },
            "scanner 'r' is a 'replay' scanner; host commands need a 'serial' or 'tcp' one",
        ),
        (
            {"indicators": [{"id": "b", "station": "dock-03", "driver": "scanner", "scanner": "s", "protocol": "x"}]},
            "indicators[0].protocol: expected one of 'zebra-ssi', got 'x'",
        ),
        ({"feedback": {"accept_ms": -5}}, "feedback.accept_ms: expected a value from 0 to 3.6e+06, got -5"),
        (
            {
                "scanners": [{"id": "x", "station": "dock-03", "driver": "tcp", "mode": "server", "port": 1}],
                "indicators": [{"id": "x", "station": "dock-03", "driver": "gpio", "red": 1}],
            },
            "indicators[0].id: duplicate device id 'x' (also scanners[0])",
        ),
    ],
)
def test_bad_feedback_settings_are_named_by_key(extra: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse({**STATION, **extra})
    assert any(problem in p for p in err.value.problems), err.value.problems


# -- [epcis] -----------------------------------------------------------------------------------

EPCIS_INVALID: list[tuple[str, dict[str, Any], list[str], str]] = [
    ("unknown epcis key", with_(epcis={"capture": "https://x"}), ["epcis.capture"], "unknown key"),
    ("identifier form", with_(epcis={"identifiers": "dl"}), ["epcis.identifiers"], "'digital_link', 'urn', got 'dl'"),
    (
        "urn without prefixes",
        with_(epcis={"identifiers": "urn"}),
        ["epcis.company_prefixes"],
        'identifiers = "urn" needs the length of each GS1 Company Prefix',
    ),
    (
        "prefix length",
        with_(epcis={"company_prefixes": {"9506000": 5}}),
        ["epcis.company_prefixes.9506000"],
        "expected the prefix length, 6 to 12 (EPC Tag Data Standard 6.3), got 5",
    ),
    (
        "prefix key",
        with_(epcis={"company_prefixes": {"95-06": 7}}),
        ["epcis.company_prefixes.95-06"],
        "1-12 digits as the key, got '95-06'",
    ),
    ("time zone", with_(epcis={"time_zone": "Mars/Olympus"}), ["epcis.time_zone"], "got 'Mars/Olympus'"),
    ("capture url", with_(epcis={"capture_url": "ftp://x/capture"}), ["epcis.capture_url"], "got 'ftp://x/capture'"),
    (
        "credentials in the url",
        with_(epcis={"capture_url": "https://u:p@x/capture"}),
        ["epcis.capture_url"],
        "credentials go in token_file",
    ),
    (
        "token inline",
        with_(epcis={"token": "abc"}),
        ["epcis.token"],
        "secrets are not kept in the config",
    ),
    (
        "token over plain http",
        with_(epcis={"capture_url": "http://epcis.example.com/capture", "token_file": "/t"}),
        ["epcis.capture_url"],
        "credentials would cross the network unencrypted",
    ),
    ("password without user", with_(epcis={"password_file": "/p"}), ["epcis.username"], "username is required"),
    (
        "token and basic auth",
        with_(epcis={"token_file": "/t", "username": "u", "password_file": "/p"}),
        ["epcis.token_file"],
        "choose one",
    ),
    ("po template", with_(epcis={"po_uri_template": "https://wms/po"}), ["epcis.po_uri_template"], "must contain {id}"),
    ("biz_location", with_(stations__0__biz_location="dock 3"), ["stations[0].biz_location"], "expected a URI"),
    ("epcis not a table", with_(epcis="yes"), ["epcis"], "expected a table [epcis]"),
]


@pytest.mark.parametrize(
    ("config", "paths", "message"), [c[1:] for c in EPCIS_INVALID], ids=[c[0] for c in EPCIS_INVALID]
)
def test_invalid_epcis_settings_are_named(config: dict[str, Any], paths: list[str], message: str) -> None:
    problems = problems_of(config)
    assert key_paths(problems) == paths
    assert message in problems[0]


def test_epcis_absent_means_no_output_and_present_takes_defaults() -> None:
    assert parse(BASE).epcis is None
    s = parse(with_(epcis={}, stations__0__biz_location="urn:epc:id:sgln:9506000.13435.0"))
    assert s.epcis is not None
    assert (s.epcis.identifiers, s.epcis.capture_url, s.epcis.capture_batch) == ("digital_link", None, 50)
    assert s.stations[0].biz_location == "urn:epc:id:sgln:9506000.13435.0"
    assert s.to_dict()["epcis"]["identifiers"] == "digital_link"


def test_epcis_station_locations_are_checked_as_sglns() -> None:
    from gatewayd.epcis.derive import check_settings

    # The whole 13-digit GLN in the company-prefix slot is the usual mistake.
    s = parse(with_(epcis={}, stations__1__location="urn:epc:id:sgln:9506000134352.0.3"))
    problems = check_settings(s)
    assert key_paths(problems) == ["stations[1].location"]
    assert "is not an SGLN (TDS §6.3.3)" in problems[0]
    assert "urn:epc:id:sgln:9506000.13435.0" in problems[0]
    assert check_settings(parse(BASE)) == []
