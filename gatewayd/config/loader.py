"""Configuration: TOML in, frozen settings out, every problem named by its key path.

Defaults live here, next to the validation that applies them; ``gatewayd check`` prints
the effective configuration that results.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from gatewayd.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "STEPS",
    "BrokerUrl",
    "DecodeSettings",
    "FramingSettings",
    "GatewaySettings",
    "LabelSettings",
    "LogSettings",
    "MqttSettings",
    "OutboxSettings",
    "PrinterSettings",
    "ScannerSettings",
    "Settings",
    "StationSettings",
    "default_config_path",
    "load",
    "parse",
]

DEFAULT_CONFIG_PATH = Path("/etc/gatewayd/gatewayd.toml")

Step = Literal["receiving", "transfer", "picking", "dispatch"]
STEPS: tuple[Step, ...] = ("receiving", "transfer", "picking", "dispatch")
SCANNER_DRIVERS = ("serial", "tcp", "evdev", "hidpos", "replay")
PRINTER_DRIVERS = ("zpl", "escpos")
PRINTER_SCHEMES = ("tcp", "usb", "file", "serial", "cups")
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
USB_ID_RE = re.compile(r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}$")
# An MQTT topic level must not carry wildcards or separators.
TOPIC_PREFIX_RE = re.compile(r"^[^#+\x00]{1,64}$")


def default_config_path() -> Path:
    env = os.environ.get("GATEWAYD_CONFIG")
    return Path(env) if env else DEFAULT_CONFIG_PATH


# ---------------------------------------------------------------------------------------
# Settings


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    id: str
    site: str | None = None
    state_dir: Path = Path("/var/lib/gatewayd")


@dataclass(frozen=True, slots=True)
class BrokerUrl:
    scheme: Literal["mqtt", "mqtts"]
    host: str
    port: int

    @property
    def tls(self) -> bool:
        return self.scheme == "mqtts"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class MqttSettings:
    brokers: tuple[BrokerUrl, ...] = (BrokerUrl("mqtt", "localhost", 1883),)
    topic_prefix: str = "gatewayd"
    protocol: Literal[3, 5] = 5
    client_id: str | None = None  # default: gatewayd-{gateway.id}
    username: str | None = None
    password_file: Path | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    keepalive: int = 30
    max_payload_bytes: int = 65536  # largest accepted request payload
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    failback_s: float = 300.0  # on a fallback broker, look this often for the first one; 0 = stay


@dataclass(frozen=True, slots=True)
class OutboxSettings:
    max_events: int = 1_000_000  # undelivered events kept before new reads are refused
    max_bytes: int = 512 * 1024 * 1024
    retention_hours: float = 168.0  # delivered history kept for replay
    drain_rate: int = 5000  # events per second after an outage; 0 = unlimited
    inflight: int = 100  # unacknowledged publishes at once
    synchronous: Literal["full", "normal"] = "full"


@dataclass(frozen=True, slots=True)
class DecodeSettings:
    lot_pattern: str | None = None
    separator_substitutes: tuple[str, ...] = ()
    step_prefix: str = "STEP:"  # command barcodes that switch a station's step
    max_read_bytes: int = 4096


@dataclass(frozen=True, slots=True)
class LabelSettings:
    resolver: str = "https://id.gs1.org"
    lot_format: str = "{supplier}-{date:%Y%m%d}-{seq:04d}"
    templates_dir: Path | None = None  # user templates, beside the built-in ones
    max_batch: int = 5000
    max_copies: int = 100


@dataclass(frozen=True, slots=True)
class LogSettings:
    level: Literal["debug", "info", "warning", "error"] = "info"


@dataclass(frozen=True, slots=True)
class StationSettings:
    id: str
    step: Step
    location: str | None = None
    dedupe_ms: int = 1500


@dataclass(frozen=True, slots=True)
class FramingSettings:
    terminator: str = "\r"
    stx_etx: bool = False
    char_timeout_ms: int = 200  # a partial read is flushed after this silence; 0 = never
    max_length: int = 4096


@dataclass(frozen=True, slots=True)
class ScannerSettings:
    id: str
    station: str
    driver: Literal["serial", "tcp", "evdev", "hidpos", "replay"]
    framing: FramingSettings = field(default_factory=FramingSettings)
    # serial
    port: str | None = None
    baudrate: int = 9600
    bytesize: int = 8
    parity: Literal["N", "E", "O", "M", "S"] = "N"
    stopbits: float = 1
    # tcp (port is the TCP port there)
    host: str | None = None
    tcp_port: int | None = None
    mode: Literal["client", "server"] = "client"
    # evdev
    path: str | None = None
    name: str | None = None
    usb: str | None = None
    layout: str = "us"
    terminator_key: Literal["enter", "tab"] = "enter"
    gs_substitute: str | None = None
    # hidpos
    serial_number: str | None = None
    # replay (path above): seconds between reads unless the file says otherwise
    interval_s: float = 0.0
    loop: bool = False


@dataclass(frozen=True, slots=True)
class PrinterSettings:
    id: str
    driver: Literal["zpl", "escpos"]
    transport: str
    dpi: Literal[203, 300, 600] = 203
    allow_raw: bool = False
    station: str | None = None
    profile: str = "default"  # python-escpos printer profile
    width_mm: float = 101.6  # default label size: 4 x 6 in
    height_mm: float = 152.4
    status_interval_s: float = 5.0
    timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class Settings:
    gateway: GatewaySettings
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
    decode: DecodeSettings = field(default_factory=DecodeSettings)
    labels: LabelSettings = field(default_factory=LabelSettings)
    log: LogSettings = field(default_factory=LogSettings)
    stations: tuple[StationSettings, ...] = ()
    scanners: tuple[ScannerSettings, ...] = ()
    printers: tuple[PrinterSettings, ...] = ()
    source: Path | None = None

    @property
    def topic_root(self) -> str:
        return f"{self.mqtt.topic_prefix}/{self.gateway.id}"

    def station(self, station_id: str) -> StationSettings:
        for s in self.stations:
            if s.id == station_id:
                return s
        raise KeyError(station_id)

    def to_dict(self) -> dict[str, Any]:
        """The effective configuration, shaped like the TOML it came from (same keys, each
        scanner with its driver's keys only), so ``gatewayd check`` output is itself a
        valid config. Secrets are not part of the settings, only the paths to them."""
        out: dict[str, Any] = {
            "gateway": _plain(asdict(self.gateway)),
            "mqtt": _plain({**asdict(self.mqtt), "brokers": [str(b) for b in self.mqtt.brokers]}),
            "outbox": _plain(asdict(self.outbox)),
            "decode": _plain(asdict(self.decode)),
            "labels": _plain(asdict(self.labels)),
            "log": _plain(asdict(self.log)),
        }
        if self.stations:
            out["stations"] = [_plain(asdict(s)) for s in self.stations]
        if self.scanners:
            out["scanners"] = [_scanner_keys(s) for s in self.scanners]
        if self.printers:
            out["printers"] = [_plain(asdict(p)) for p in self.printers]
        return out


_DRIVER_KEYS: dict[str, tuple[str, ...]] = {
    "serial": ("port", "baudrate", "bytesize", "parity", "stopbits"),
    "tcp": ("host", "tcp_port", "mode"),
    "evdev": ("path", "name", "usb", "layout", "terminator_key", "gs_substitute"),
    "hidpos": ("usb", "serial_number"),
    "replay": ("path", "interval_s", "loop"),
}


def _scanner_keys(s: ScannerSettings) -> dict[str, Any]:
    values = asdict(s)
    out: dict[str, Any] = {"id": s.id, "station": s.station, "driver": s.driver}
    for key in _DRIVER_KEYS[s.driver]:
        out["port" if key == "tcp_port" else key] = values[key]
    if s.driver in ("serial", "tcp"):
        out.update(values["framing"])
    return dict(_plain(out))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


# ---------------------------------------------------------------------------------------
# Validation


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}")


_MISSING = object()


class _Table:
    """One TOML table being validated: takes keys, then reports the ones never taken."""

    def __init__(self, data: Mapping[str, Any], path: str, problems: _Problems) -> None:
        self.data = data
        self.path = path
        self.problems = problems
        self.taken: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def raw(self, name: str) -> Any:
        self.taken.add(name)
        return self.data.get(name, _MISSING)

    def get(
        self,
        name: str,
        kind: type | tuple[type, ...],
        default: Any = _MISSING,
        *,
        check: Callable[[Any], str | None] | None = None,
        expected: str | None = None,
    ) -> Any:
        value = self.raw(name)
        if value is _MISSING:
            if default is _MISSING:
                self.problems.add(self.key(name), "required key is missing")
                return None
            return default
        kinds = kind if isinstance(kind, tuple) else (kind,)
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            ok = True
            value = float(value)
        if not ok:
            want = expected or " or ".join(_type_name(k) for k in kinds)
            self.problems.add(self.key(name), f"expected {want}, got {value!r}")
            return default if default is not _MISSING else None
        if check is not None:
            message = check(value)
            if message:
                self.problems.add(self.key(name), message)
                return default if default is not _MISSING else None
        return value

    def finish(self) -> None:
        for name in self.data:
            if name not in self.taken:
                self.problems.add(self.key(name), "unknown key (check the spelling)")


def _type_name(kind: type) -> str:
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        list: "a list",
        dict: "a table",
    }.get(kind, kind.__name__)


def _one_of(*choices: Any) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value in choices:
            return None
        return f"expected one of {', '.join(repr(c) for c in choices)}, got {value!r}"

    return check


def _in_range(low: float, high: float) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if low <= value <= high:
            return None
        return f"expected a value from {low:g} to {high:g}, got {value!r}"

    return check


def _identifier(value: str) -> str | None:
    if ID_RE.match(value):
        return None
    return (
        f"expected 1-64 letters, digits, '-', '_' or '.' starting with a letter or digit "
        f"(it is used in MQTT topics), got {value!r}"
    )


def _nonempty(value: str) -> str | None:
    return None if value.strip() else "expected a non-empty string"


def _regex(value: str) -> str | None:
    try:
        re.compile(value)
    except re.error as exc:
        return f"not a valid regular expression ({exc}): {value!r}"
    return None


def _usb_id(value: str) -> str | None:
    return None if USB_ID_RE.match(value) else f"expected 'VID:PID' in hex (e.g. '0c2e:0b61'), got {value!r}"


def _broker(value: str) -> BrokerUrl | str:
    parts = urlsplit(value)
    if parts.scheme not in ("mqtt", "mqtts"):
        return f"expected mqtt://host[:port] or mqtts://host[:port], got {value!r}"
    try:
        port = parts.port
    except ValueError:
        return f"bad port in {value!r}"
    if not parts.hostname:
        return f"missing host in {value!r}"
    if parts.path not in ("", "/") or parts.query or parts.username:
        return f"expected only scheme, host and port (credentials go in username/password_file), got {value!r}"
    if port == 0:
        return f"bad port in {value!r} (expected 1-65535)"
    default = 8883 if parts.scheme == "mqtts" else 1883
    return BrokerUrl(parts.scheme, parts.hostname, port if port is not None else default)  # type: ignore[arg-type]


def _printer_transport(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in PRINTER_SCHEMES:
        return (
            "expected tcp://host:port, usb://VID:PID, file:///dev/usb/lp0, "
            f"serial:///dev/ttyUSB0?baudrate=19200 or cups://QUEUE, got {value!r}"
        )
    if parts.scheme == "tcp":
        try:
            port = parts.port
        except ValueError:
            return f"bad port in {value!r}"
        if not parts.hostname:
            return f"missing host in {value!r}"
        if port is None:
            return f"missing port in {value!r} (raw printing is usually 9100)"
        if port == 0:
            return f"bad port in {value!r} (expected 1-65535)"
    elif parts.scheme == "usb":
        if not USB_ID_RE.match(parts.netloc):
            return f"expected usb://VID:PID in hex, got {value!r}"
    elif parts.scheme in ("file", "serial"):
        if not parts.path:
            return f"missing device path in {value!r}"
        if parts.scheme == "serial":
            for key, values in parse_qs(parts.query).items():
                if key != "baudrate":
                    return f"unknown option {key!r} in {value!r} (only baudrate)"
                if not values[-1].isdigit():
                    return f"baudrate must be a number in {value!r}"
    elif parts.scheme == "cups" and not (parts.netloc or parts.path.strip("/")):
        return f"missing queue name in {value!r}"
    return None


def _path(value: str) -> str | None:
    return None if value.strip() else "expected a path"


def parse(data: Mapping[str, Any], *, source: Path | None = None) -> Settings:
    """Validate a parsed TOML document; raise :class:`ConfigError` listing every problem."""
    problems = _Problems()
    root = _Table(data, "", problems)

    gateway = _parse_gateway(root, problems)
    mqtt = _parse_mqtt(root, problems)
    outbox = _parse_outbox(root, problems)
    decode = _parse_decode(root, problems)
    labels = _parse_labels(root, problems)
    log = _parse_log(root, problems)
    stations, station_ids = _parse_stations(root, problems)
    scanners = _parse_scanners(root, problems, station_ids)
    printers = _parse_printers(root, problems, station_ids)
    _check_unique_ids(data, problems)
    root.finish()

    if problems.items or gateway is None:
        raise ConfigError(problems.items or ["gateway: required table is missing"])
    return Settings(
        gateway=gateway,
        mqtt=mqtt,
        outbox=outbox,
        decode=decode,
        labels=labels,
        log=log,
        stations=tuple(stations),
        scanners=tuple(scanners),
        printers=tuple(printers),
        source=source,
    )


def load(path: Path) -> Settings:
    """Read and validate a TOML config file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found (pass --config PATH or set GATEWAYD_CONFIG)"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read ({exc})"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML ({exc})"]) from None
    settings = parse(data, source=path)
    # Relative paths are relative to the config file, so a config is portable with its
    # files; absolute, because the daemon's working directory is not the config's.
    return _resolve_paths(settings, path.absolute().parent)


def _resolve_paths(settings: Settings, base: Path) -> Settings:
    from dataclasses import replace

    def fix(p: Path | None) -> Path | None:
        return None if p is None or p.is_absolute() else (base / p)

    gateway = replace(settings.gateway, state_dir=fix(settings.gateway.state_dir) or settings.gateway.state_dir)
    mqtt = settings.mqtt
    mqtt = replace(
        mqtt,
        password_file=fix(mqtt.password_file) or mqtt.password_file,
        ca_file=fix(mqtt.ca_file) or mqtt.ca_file,
        cert_file=fix(mqtt.cert_file) or mqtt.cert_file,
        key_file=fix(mqtt.key_file) or mqtt.key_file,
    )
    labels = replace(settings.labels, templates_dir=fix(settings.labels.templates_dir) or settings.labels.templates_dir)
    scanners = tuple(
        replace(s, path=str(base / s.path)) if s.driver == "replay" and s.path and not Path(s.path).is_absolute() else s
        for s in settings.scanners
    )
    return replace(settings, gateway=gateway, mqtt=mqtt, labels=labels, scanners=scanners)


def _table(root: _Table, name: str, problems: _Problems) -> _Table | None:
    value = root.raw(name)
    if value is _MISSING:
        return _Table({}, name, problems)
    if not isinstance(value, dict):
        problems.add(name, f"expected a table [{name}], got {value!r}")
        return None
    return _Table(value, name, problems)


def _parse_gateway(root: _Table, problems: _Problems) -> GatewaySettings | None:
    value = root.raw("gateway")
    if value is _MISSING:
        problems.add("gateway", "required table [gateway] is missing (it needs at least id)")
        return None
    if not isinstance(value, dict):
        problems.add("gateway", f"expected a table [gateway], got {value!r}")
        return None
    t = _Table(value, "gateway", problems)
    gid = t.get("id", str, check=_identifier)
    site = t.get("site", str, None, check=_nonempty)
    state_dir = t.get("state_dir", str, "/var/lib/gatewayd", check=_path)
    t.finish()
    if gid is None:
        return None
    return GatewaySettings(id=gid, site=site, state_dir=Path(state_dir))


def _parse_mqtt(root: _Table, problems: _Problems) -> MqttSettings:
    t = _table(root, "mqtt", problems)
    if t is None:
        return MqttSettings()
    d = MqttSettings()
    brokers: list[BrokerUrl] = []
    raw = t.get("brokers", list, None)
    if raw is not None:
        if not raw:
            problems.add("mqtt.brokers", "expected at least one broker URL")
        for i, item in enumerate(raw):
            if not isinstance(item, str):
                problems.add(f"mqtt.brokers[{i}]", f"expected a URL string, got {item!r}")
                continue
            parsed = _broker(item)
            if isinstance(parsed, str):
                problems.add(f"mqtt.brokers[{i}]", parsed)
            else:
                brokers.append(parsed)

    def topic_prefix(value: str) -> str | None:
        if not TOPIC_PREFIX_RE.match(value) or value.startswith("/") or value.endswith("/"):
            return f"expected topic levels without '#', '+' or leading/trailing '/', got {value!r}"
        return None

    settings = MqttSettings(
        brokers=tuple(brokers) or d.brokers,
        topic_prefix=t.get("topic_prefix", str, d.topic_prefix, check=topic_prefix),
        protocol=t.get("protocol", int, d.protocol, check=_one_of(3, 5)),
        client_id=t.get("client_id", str, None, check=_nonempty),
        username=t.get("username", str, None, check=_nonempty),
        password_file=_opt_path(t.get("password_file", str, None, check=_path)),
        ca_file=_opt_path(t.get("ca_file", str, None, check=_path)),
        cert_file=_opt_path(t.get("cert_file", str, None, check=_path)),
        key_file=_opt_path(t.get("key_file", str, None, check=_path)),
        keepalive=t.get("keepalive", int, d.keepalive, check=_in_range(5, 3600)),
        max_payload_bytes=t.get("max_payload_bytes", int, d.max_payload_bytes, check=_in_range(1024, 16 * 1024 * 1024)),
        reconnect_min_s=t.get("reconnect_min_s", float, d.reconnect_min_s, check=_in_range(0.05, 60)),
        reconnect_max_s=t.get("reconnect_max_s", float, d.reconnect_max_s, check=_in_range(0.1, 3600)),
        failback_s=t.get("failback_s", float, d.failback_s, check=_in_range(0, 86400)),
    )
    if t.raw("password") is not _MISSING:
        t.taken.add("password")
        problems.add(
            "mqtt.password",
            "passwords are not kept in the config: put it in a file readable only by gatewayd and set password_file",
        )
    if settings.cert_file and not settings.key_file:
        problems.add("mqtt.key_file", "cert_file is set, so key_file is required too")
    if settings.key_file and not settings.cert_file:
        problems.add("mqtt.cert_file", "key_file is set, so cert_file is required too")
    if settings.password_file and not settings.username:
        problems.add("mqtt.username", "password_file is set, so username is required too")
    if settings.reconnect_max_s < settings.reconnect_min_s:
        problems.add("mqtt.reconnect_max_s", "must not be smaller than reconnect_min_s")
    t.finish()
    return settings


def _opt_path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _parse_outbox(root: _Table, problems: _Problems) -> OutboxSettings:
    t = _table(root, "outbox", problems)
    d = OutboxSettings()
    if t is None:
        return d
    s = OutboxSettings(
        max_events=t.get("max_events", int, d.max_events, check=_in_range(1, 100_000_000)),
        max_bytes=t.get("max_bytes", int, d.max_bytes, check=_in_range(4096, 1 << 40)),
        retention_hours=t.get("retention_hours", float, d.retention_hours, check=_in_range(0, 24 * 3650)),
        drain_rate=t.get("drain_rate", int, d.drain_rate, check=_in_range(0, 1_000_000)),
        inflight=t.get("inflight", int, d.inflight, check=_in_range(1, 65535)),
        synchronous=t.get("synchronous", str, d.synchronous, check=_one_of("full", "normal")),
    )
    t.finish()
    return s


def _parse_decode(root: _Table, problems: _Problems) -> DecodeSettings:
    t = _table(root, "decode", problems)
    d = DecodeSettings()
    if t is None:
        return d
    subs: list[str] = []
    raw = t.get("separator_substitutes", list, [])
    for i, item in enumerate(raw):
        if not isinstance(item, str) or len(item) != 1:
            problems.add(f"decode.separator_substitutes[{i}]", f"expected a single character, got {item!r}")
        elif item.isalnum():
            problems.add(
                f"decode.separator_substitutes[{i}]", f"a letter or digit would corrupt GS1 data, got {item!r}"
            )
        else:
            subs.append(item)
    s = DecodeSettings(
        lot_pattern=t.get("lot_pattern", str, None, check=_regex),
        separator_substitutes=tuple(subs),
        step_prefix=t.get("step_prefix", str, d.step_prefix, check=_nonempty),
        max_read_bytes=t.get("max_read_bytes", int, d.max_read_bytes, check=_in_range(16, 1 << 20)),
    )
    t.finish()
    return s


def _parse_labels(root: _Table, problems: _Problems) -> LabelSettings:
    t = _table(root, "labels", problems)
    d = LabelSettings()
    if t is None:
        return d

    def resolver(value: str) -> str | None:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            return f"expected an http(s) URL such as 'https://id.gs1.org', got {value!r}"
        return None

    def lot_format(value: str) -> str | None:
        import datetime

        try:
            value.format(supplier="SUP", date=datetime.date(2026, 1, 1), seq=1)
        except (KeyError, IndexError, ValueError) as exc:
            return f"cannot format with supplier, date and seq ({exc!r}): {value!r}"
        if "{seq" not in value:
            return "must contain {seq...} so lot ids of one batch differ"
        return None

    s = LabelSettings(
        resolver=t.get("resolver", str, d.resolver, check=resolver).rstrip("/"),
        lot_format=t.get("lot_format", str, d.lot_format, check=lot_format),
        templates_dir=_opt_path(t.get("templates_dir", str, None, check=_path)),
        max_batch=t.get("max_batch", int, d.max_batch, check=_in_range(1, 100_000)),
        max_copies=t.get("max_copies", int, d.max_copies, check=_in_range(1, 10_000)),
    )
    t.finish()
    return s


def _parse_log(root: _Table, problems: _Problems) -> LogSettings:
    t = _table(root, "log", problems)
    if t is None:
        return LogSettings()
    s = LogSettings(level=t.get("level", str, "info", check=_one_of("debug", "info", "warning", "error")))
    t.finish()
    return s


def _array(root: _Table, name: str, problems: _Problems) -> list[tuple[str, _Table]]:
    value = root.raw(name)
    if value is _MISSING:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        problems.add(name, f"expected an array of tables [[{name}]], got {value!r}")
        return []
    return [(f"{name}[{i}]", _Table(v, f"{name}[{i}]", problems)) for i, v in enumerate(value)]


def _parse_stations(root: _Table, problems: _Problems) -> tuple[list[StationSettings], set[str]]:
    """The valid stations, and every station id named (so a station with another problem
    is not also reported missing by the scanners that use it)."""
    out: list[StationSettings] = []
    seen: set[str] = set()
    for path, t in _array(root, "stations", problems):
        sid = t.get("id", str, check=_identifier)
        step = t.get("step", str, check=_one_of(*STEPS))
        location = t.get("location", str, None, check=_nonempty)
        dedupe = t.get("dedupe_ms", int, 1500, check=_in_range(0, 3_600_000))
        t.finish()
        if sid is not None and sid in seen:
            problems.add(f"{path}.id", f"duplicate station id {sid!r}")
        if sid is not None:
            seen.add(sid)
        if sid is not None and step is not None:
            out.append(StationSettings(id=sid, step=step, location=location, dedupe_ms=dedupe))
    return out, seen


def _parse_framing(t: _Table, problems: _Problems) -> FramingSettings:
    d = FramingSettings()
    terminator = t.get("terminator", str, d.terminator)
    if terminator == "":
        problems.add(t.key("terminator"), 'expected a non-empty string such as "\\r", "\\n" or "\\r\\n"')
        terminator = d.terminator
    return FramingSettings(
        terminator=terminator,
        stx_etx=t.get("stx_etx", bool, d.stx_etx),
        char_timeout_ms=t.get("char_timeout_ms", int, d.char_timeout_ms, check=_in_range(0, 60_000)),
        max_length=t.get("max_length", int, d.max_length, check=_in_range(16, 1 << 20)),
    )


def _parse_scanners(root: _Table, problems: _Problems, stations: set[str]) -> list[ScannerSettings]:
    out: list[ScannerSettings] = []
    for path, t in _array(root, "scanners", problems):
        sid = t.get("id", str, check=_identifier)
        station = t.get("station", str)
        if station is not None and station not in stations:
            known = ", ".join(sorted(stations)) or "none defined"
            problems.add(f"{path}.station", f"no station {station!r} in [[stations]] (known: {known})")
        driver = t.get("driver", str, check=_one_of(*SCANNER_DRIVERS))
        kw: dict[str, Any] = {}
        if driver in ("serial", "tcp"):
            kw["framing"] = _parse_framing(t, problems)
        if driver == "serial":
            kw["port"] = t.get("port", str, check=_path)
            kw["baudrate"] = t.get(
                "baudrate", int, 9600, check=_one_of(1200, 2400, 4800, 9600, 14400, 19200, 38400, 57600, 115200, 230400)
            )
            kw["bytesize"] = t.get("bytesize", int, 8, check=_one_of(5, 6, 7, 8))
            kw["parity"] = t.get("parity", str, "N", check=_one_of("N", "E", "O", "M", "S"))
            kw["stopbits"] = t.get("stopbits", float, 1.0, check=_one_of(1, 1.5, 2))
        elif driver == "tcp":
            kw["mode"] = t.get("mode", str, "client", check=_one_of("client", "server"))
            kw["host"] = t.get("host", str, "0.0.0.0" if kw["mode"] == "server" else _MISSING, check=_nonempty)  # noqa: S104
            kw["tcp_port"] = t.get("port", int, check=_in_range(1, 65535))
        elif driver == "evdev":
            kw["path"] = t.get("path", str, None, check=_path)
            kw["name"] = t.get("name", str, None, check=_nonempty)
            kw["usb"] = t.get("usb", str, None, check=_usb_id)
            if sum(kw[k] is not None for k in ("path", "name", "usb")) != 1:
                problems.add(path, "an evdev scanner needs exactly one of path, name or usb")
            kw["layout"] = t.get("layout", str, "us", check=_one_of("us", "uk", "de", "fr"))
            kw["terminator_key"] = t.get("terminator_key", str, "enter", check=_one_of("enter", "tab"))
            kw["gs_substitute"] = t.get(
                "gs_substitute",
                str,
                None,
                check=lambda v: None if len(v) == 1 else f"expected one character, got {v!r}",
            )
        elif driver == "hidpos":
            kw["usb"] = t.get("usb", str, check=_usb_id)
            kw["serial_number"] = t.get("serial_number", str, None, check=_nonempty)
        elif driver == "replay":
            kw["path"] = t.get("path", str, check=_path)
            kw["interval_s"] = t.get("interval_s", float, 0.0, check=_in_range(0, 3600))
            kw["loop"] = t.get("loop", bool, False)
        t.finish()
        required = {"serial": ("port",), "tcp": ("host", "tcp_port"), "hidpos": ("usb",), "replay": ("path",)}
        complete = all(kw.get(k) is not None for k in required.get(driver or "", ()))
        if sid is not None and station is not None and driver is not None and complete:
            out.append(ScannerSettings(id=sid, station=station, driver=driver, **kw))
    return out


def _parse_printers(root: _Table, problems: _Problems, stations: set[str]) -> list[PrinterSettings]:
    out: list[PrinterSettings] = []
    d = PrinterSettings(id="", driver="zpl", transport="")
    for path, t in _array(root, "printers", problems):
        pid = t.get("id", str, check=_identifier)
        driver = t.get("driver", str, check=_one_of(*PRINTER_DRIVERS))
        transport = t.get("transport", str, check=_printer_transport)
        station = t.get("station", str, None)
        if station is not None and station not in stations:
            problems.add(f"{path}.station", f"no station {station!r} in [[stations]]")
        kw: dict[str, Any] = dict(  # noqa: C408  # keyword form reads like the dataclass
            dpi=t.get("dpi", int, d.dpi, check=_one_of(203, 300, 600)),
            allow_raw=t.get("allow_raw", bool, False),
            station=station,
            profile=t.get("profile", str, d.profile, check=_nonempty),
            width_mm=t.get("width_mm", float, d.width_mm, check=_in_range(10, 300)),
            height_mm=t.get("height_mm", float, d.height_mm, check=_in_range(5, 1000)),
            status_interval_s=t.get("status_interval_s", float, d.status_interval_s, check=_in_range(0.2, 3600)),
            timeout_s=t.get("timeout_s", float, d.timeout_s, check=_in_range(0.5, 300)),
        )
        if driver == "escpos" and kw["allow_raw"]:
            problems.add(f"{path}.allow_raw", "raw passthrough is for ZPL printers only")
        t.finish()
        if pid is not None and driver is not None and transport is not None:
            out.append(PrinterSettings(id=pid, driver=driver, transport=transport, **kw))
    return out


def _check_unique_ids(data: Mapping[str, Any], problems: _Problems) -> None:
    """Device ids are unique across scanners and printers (they name MQTT topics).

    Checked on the raw arrays, so each problem names the entry's place in the file even
    when an earlier entry is invalid.
    """
    seen: dict[str, str] = {}
    for section in ("scanners", "printers"):
        items = data.get(section)
        if not isinstance(items, list):
            continue
        for i, item in enumerate(items):
            did = item.get("id") if isinstance(item, dict) else None
            if not isinstance(did, str):
                continue
            if did in seen:
                problems.add(f"{section}[{i}].id", f"duplicate device id {did!r} (also {seen[did]})")
            seen.setdefault(did, f"{section}[{i}]")
