"""Reading the config: TOML in, frozen settings out, every problem named by its key path.

Each key's default and choices come from :mod:`gatewayd.config.settings` (the dataclass
field and its ``Literal``); this module adds only what a key may hold. ``gatewayd check``
prints the effective configuration that results.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, get_args
from urllib.parse import urlsplit

from gatewayd.config.keys import MISSING, Problems, Table
from gatewayd.config.settings import (
    BAUDRATES,
    INDICATOR_DRIVERS,
    INDICATOR_SETTINGS,
    MQTT_PORTS,
    SCANNER_DRIVERS,
    SCANNER_SETTINGS,
    SERVER_HOST,
    STEPS,
    STOPBITS,
    BrokerScheme,
    BrokerUrl,
    Bytesize,
    CaptureContentType,
    DecodeSettings,
    Dpi,
    EpcisSettings,
    EvdevScannerSettings,
    FeedbackSettings,
    FramingSettings,
    GatewaySettings,
    GpioIndicatorSettings,
    HidPosScannerSettings,
    HttpSettings,
    IdentifierForm,
    IndicatorSettings,
    LabelSettings,
    LogLevel,
    LogSettings,
    MqttProtocol,
    MqttSettings,
    OutboxSettings,
    Parity,
    PrinterDriver,
    PrinterSettings,
    ReplayPace,
    ReplayScannerSettings,
    ScannerIndicatorSettings,
    ScannerProtocol,
    ScannerSettings,
    SerialScannerSettings,
    Settings,
    StationSettings,
    Synchronous,
    TcpMode,
    TcpScannerSettings,
    TowerSerialIndicatorSettings,
    VendorPrefix,
)
from gatewayd.errors import ConfigError

__all__ = ["DEFAULT_CONFIG_PATH", "default_config_path", "load", "parse"]

DEFAULT_CONFIG_PATH = Path("/etc/gatewayd/gatewayd.toml")

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
USB_ID_RE = re.compile(r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}$")
# An MQTT topic level must not carry wildcards or separators.
TOPIC_PREFIX_RE = re.compile(r"^[^#+\x00]{1,64}$")

Check = Callable[[Any], str | None]


def default_config_path() -> Path:
    env = os.environ.get("GATEWAYD_CONFIG")
    return Path(env) if env else DEFAULT_CONFIG_PATH


def parse(data: Mapping[str, Any], *, source: Path | None = None) -> Settings:
    """Validate a parsed TOML document; raise :class:`ConfigError` listing every problem."""
    problems = Problems()
    root = Table(data, "", problems)

    gateway = _parse_gateway(root, problems)
    mqtt = _parse_mqtt(root, problems)
    outbox = _parse_outbox(root, problems)
    decode = _parse_decode(root, problems)
    labels = _parse_labels(root, problems)
    log = _parse_log(root, problems)
    stations, station_ids = _parse_stations(root, problems)
    scanners = _parse_scanners(root, problems, station_ids)
    printers = _parse_printers(root, problems, station_ids)
    indicators = _parse_indicators(root, problems, station_ids, scanners)
    feedback = _parse_feedback(root, problems)
    http = _parse_http(root, problems)
    epcis = _parse_epcis(root, problems)
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
        indicators=tuple(indicators),
        feedback=feedback,
        http=http,
        epcis=epcis,
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
    replace = dataclasses.replace

    def fix(p: Path | None) -> Path | None:
        return p if p is None or p.is_absolute() else base / p

    mqtt = settings.mqtt
    return replace(
        settings,
        gateway=replace(settings.gateway, state_dir=fix(settings.gateway.state_dir)),
        mqtt=replace(
            mqtt,
            password_file=fix(mqtt.password_file),
            ca_file=fix(mqtt.ca_file),
            cert_file=fix(mqtt.cert_file),
            key_file=fix(mqtt.key_file),
        ),
        labels=replace(settings.labels, templates_dir=fix(settings.labels.templates_dir)),
        epcis=None
        if settings.epcis is None
        else replace(
            settings.epcis,
            token_file=fix(settings.epcis.token_file),
            password_file=fix(settings.epcis.password_file),
            ca_file=fix(settings.epcis.ca_file),
        ),
        # A replay file is a file next to the config; a serial port is a device name.
        scanners=tuple(
            replace(s, path=str(fix(Path(s.path)))) if isinstance(s, ReplayScannerSettings) else s
            for s in settings.scanners
        ),
    )


# ---------------------------------------------------------------------------------------
# Defaults and checks


def _default(cls: type[Any], name: str) -> Any:
    """The default of field ``name`` of the dataclass ``cls``; ``MISSING`` if it has none."""
    f = cls.__dataclass_fields__[name]
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return MISSING


def _key(t: Table, cls: type[Any], name: str, kind: type | tuple[type, ...], *, check: Check | None = None) -> Any:
    """Key ``name`` of ``t``, for the field of that name of the dataclass ``cls``: absent,
    it takes the field's default, and it is required when the field has none."""
    return t.get(name, kind, _default(cls, name), check=check)


def _one_of(*choices: Any) -> Check:
    def check(value: Any) -> str | None:
        if value in choices:
            return None
        return f"expected one of {', '.join(repr(c) for c in choices)}, got {value!r}"

    return check


def _choice(literal: Any) -> Check:
    """A value of the ``Literal`` type ``literal``."""
    return _one_of(*get_args(literal))


def _in_range(low: float, high: float) -> Check:
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


def _path(value: str) -> str | None:
    return None if value.strip() else "expected a path"


def _regex(value: str) -> str | None:
    try:
        re.compile(value)
    except re.error as exc:
        return f"not a valid regular expression ({exc}): {value!r}"
    return None


def _usb_id(value: str) -> str | None:
    return None if USB_ID_RE.match(value) else f"expected 'VID:PID' in hex (e.g. '0c2e:0b61'), got {value!r}"


def _printer_url(value: str) -> str | None:
    # Imported where a printer is configured: the printer transports are not loaded otherwise.
    from gatewayd_drivers.printer_transport import parse_printer_url

    try:
        parse_printer_url(value)
    except ValueError as exc:
        return str(exc)
    return None


def _broker(value: str) -> BrokerUrl | str:
    parts = urlsplit(value)
    if parts.scheme not in MQTT_PORTS:
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
    scheme: BrokerScheme = "mqtts" if parts.scheme == "mqtts" else "mqtt"
    return BrokerUrl(scheme, parts.hostname, MQTT_PORTS[scheme] if port is None else port)


def _opt_path(value: str | Path | None) -> Path | None:
    return Path(value) if value else None


# ---------------------------------------------------------------------------------------
# Tables


def _table(root: Table, name: str, problems: Problems) -> Table | None:
    value = root.raw(name)
    if value is MISSING:
        return Table({}, name, problems)
    if not isinstance(value, dict):
        problems.add(name, f"expected a table [{name}], got {value!r}")
        return None
    return Table(value, name, problems)


def _array(root: Table, name: str, problems: Problems) -> list[tuple[str, Table]]:
    value = root.raw(name)
    if value is MISSING:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        problems.add(name, f"expected an array of tables [[{name}]], got {value!r}")
        return []
    return [(f"{name}[{i}]", Table(v, f"{name}[{i}]", problems)) for i, v in enumerate(value)]


def _parse_gateway(root: Table, problems: Problems) -> GatewaySettings | None:
    value = root.raw("gateway")
    if value is MISSING:
        problems.add("gateway", "required table [gateway] is missing (it needs at least id)")
        return None
    if not isinstance(value, dict):
        problems.add("gateway", f"expected a table [gateway], got {value!r}")
        return None
    t = Table(value, "gateway", problems)
    gid = _key(t, GatewaySettings, "id", str, check=_identifier)
    site = _key(t, GatewaySettings, "site", str, check=_nonempty)
    state_dir = _key(t, GatewaySettings, "state_dir", str, check=_path)
    t.finish()
    if gid is None:
        return None
    return GatewaySettings(id=gid, site=site, state_dir=Path(state_dir))


def _parse_mqtt(root: Table, problems: Problems) -> MqttSettings:
    t = _table(root, "mqtt", problems)
    if t is None:
        return MqttSettings()
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

    def key(name: str, kind: type | tuple[type, ...], check: Check | None = None) -> Any:
        return _key(t, MqttSettings, name, kind, check=check)

    response_prefixes: list[str] = []
    for i, item in enumerate(key("response_topic_prefixes", list)):
        problem = topic_prefix(item) if isinstance(item, str) else f"expected a topic prefix string, got {item!r}"
        if problem is None and item.startswith("$"):
            problem = f"topics starting with '$' belong to the broker, got {item!r}"
        if problem is None:
            response_prefixes.append(item)
        else:
            problems.add(f"mqtt.response_topic_prefixes[{i}]", problem)

    settings = MqttSettings(
        brokers=tuple(brokers) or MqttSettings().brokers,
        topic_prefix=key("topic_prefix", str, topic_prefix),
        protocol=key("protocol", (int, str), _choice(MqttProtocol)),
        client_id=key("client_id", str, _nonempty),
        username=key("username", str, _nonempty),
        password_file=_opt_path(key("password_file", str, _path)),
        ca_file=_opt_path(key("ca_file", str, _path)),
        cert_file=_opt_path(key("cert_file", str, _path)),
        key_file=_opt_path(key("key_file", str, _path)),
        keepalive=key("keepalive", int, _in_range(5, 3600)),
        max_payload_bytes=key("max_payload_bytes", int, _in_range(1024, 16 * 1024 * 1024)),
        reconnect_min_s=key("reconnect_min_s", float, _in_range(0.05, 60)),
        reconnect_max_s=key("reconnect_max_s", float, _in_range(0.1, 3600)),
        failback_s=key("failback_s", float, _in_range(0, 86400)),
        response_topic_prefixes=tuple(response_prefixes),
    )
    if t.raw("password") is not MISSING:
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


def _parse_outbox(root: Table, problems: Problems) -> OutboxSettings:
    t = _table(root, "outbox", problems)
    if t is None:
        return OutboxSettings()

    def key(name: str, kind: type, check: Check) -> Any:
        return _key(t, OutboxSettings, name, kind, check=check)

    s = OutboxSettings(
        max_events=key("max_events", int, _in_range(1, 100_000_000)),
        max_bytes=key("max_bytes", int, _in_range(4096, 1 << 40)),
        retention_hours=key("retention_hours", float, _in_range(0, 24 * 3650)),
        drain_rate=key("drain_rate", int, _in_range(0, 1_000_000)),
        inflight=key("inflight", int, _in_range(1, 65535)),
        synchronous=key("synchronous", str, _choice(Synchronous)),
    )
    t.finish()
    return s


def _parse_decode(root: Table, problems: Problems) -> DecodeSettings:
    t = _table(root, "decode", problems)
    if t is None:
        return DecodeSettings()
    subs: list[str] = []
    for i, item in enumerate(_key(t, DecodeSettings, "separator_substitutes", list)):
        if not isinstance(item, str) or len(item) != 1:
            problems.add(f"decode.separator_substitutes[{i}]", f"expected a single character, got {item!r}")
        elif item.isalnum():
            problems.add(
                f"decode.separator_substitutes[{i}]", f"a letter or digit would corrupt GS1 data, got {item!r}"
            )
        else:
            subs.append(item)
    s = DecodeSettings(
        lot_pattern=_key(t, DecodeSettings, "lot_pattern", str, check=_regex),
        separator_substitutes=tuple(subs),
        step_prefix=_key(t, DecodeSettings, "step_prefix", str, check=_nonempty),
        max_read_bytes=_key(t, DecodeSettings, "max_read_bytes", int, check=_in_range(16, 1 << 20)),
    )
    t.finish()
    return s


def _parse_labels(root: Table, problems: Problems) -> LabelSettings:
    t = _table(root, "labels", problems)
    if t is None:
        return LabelSettings()

    def resolver(value: str) -> str | None:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            return f"expected an http(s) URL such as 'https://id.gs1.org', got {value!r}"
        return None

    def lot_format(value: str) -> str | None:
        try:
            value.format(supplier="SUP", date=datetime.date(2026, 1, 1), seq=1)
        except (KeyError, IndexError, ValueError) as exc:
            return f"cannot format with supplier, date and seq ({exc!r}): {value!r}"
        if "{seq" not in value:
            return "must contain {seq...} so lot ids of one batch differ"
        return None

    def key(name: str, kind: type, check: Check) -> Any:
        return _key(t, LabelSettings, name, kind, check=check)

    s = LabelSettings(
        resolver=key("resolver", str, resolver).rstrip("/"),
        lot_format=key("lot_format", str, lot_format),
        templates_dir=_opt_path(key("templates_dir", str, _path)),
        max_batch=key("max_batch", int, _in_range(1, 100_000)),
        max_copies=key("max_copies", int, _in_range(1, 10_000)),
    )
    t.finish()
    return s


def _parse_log(root: Table, problems: Problems) -> LogSettings:
    t = _table(root, "log", problems)
    if t is None:
        return LogSettings()
    s = LogSettings(level=_key(t, LogSettings, "level", str, check=_choice(LogLevel)))
    t.finish()
    return s


def _parse_stations(root: Table, problems: Problems) -> tuple[list[StationSettings], set[str]]:
    """The valid stations, and every station id named (so a station with another problem
    is not also reported missing by the scanners that use it)."""
    out: list[StationSettings] = []
    seen: set[str] = set()
    for path, t in _array(root, "stations", problems):
        sid = _key(t, StationSettings, "id", str, check=_identifier)
        step = _key(t, StationSettings, "step", str, check=_one_of(*STEPS))
        location = _key(t, StationSettings, "location", str, check=_nonempty)
        dedupe = _key(t, StationSettings, "dedupe_ms", int, check=_in_range(0, 3_600_000))
        biz_location = _key(t, StationSettings, "biz_location", str, check=_uri)
        t.finish()
        if sid is not None and sid in seen:
            problems.add(f"{path}.id", f"duplicate station id {sid!r}")
        if sid is not None:
            seen.add(sid)
        if sid is not None and step is not None:
            out.append(
                StationSettings(id=sid, step=step, location=location, dedupe_ms=dedupe, biz_location=biz_location)
            )
    return out, seen


def _station_ref(t: Table, station: str | None, stations: set[str]) -> str | None:
    """``station`` (the value of key ``station`` of ``t``) if it names one of ``[[stations]]``."""
    if station is not None and station not in stations:
        known = ", ".join(sorted(stations)) or "none defined"
        t.problems.add(t.key("station"), f"no station {station!r} in [[stations]] (known: {known})")
    return station


# -- scanners: one settings class per driver --------------------------------------------


def _parse_framing(t: Table) -> FramingSettings:
    def key(name: str, kind: type, check: Check | None = None) -> Any:
        return _key(t, FramingSettings, name, kind, check=check)

    terminator = key("terminator", str)
    if terminator == "":
        t.problems.add(t.key("terminator"), 'expected a non-empty string such as "\\r", "\\n" or "\\r\\n"')
        terminator = FramingSettings().terminator
    return FramingSettings(
        terminator=terminator,
        stx_etx=key("stx_etx", bool),
        char_timeout_ms=key("char_timeout_ms", int, _in_range(0, 60_000)),
        max_length=key("max_length", int, _in_range(16, 1 << 20)),
    )


def _serial_keys(t: Table) -> dict[str, Any]:
    def key(name: str, kind: type, check: Check | None = None) -> Any:
        return _key(t, SerialScannerSettings, name, kind, check=check)

    return {
        "framing": _parse_framing(t),
        "port": key("port", str, _path),
        "baudrate": key("baudrate", int, _one_of(*BAUDRATES)),
        "bytesize": key("bytesize", int, _choice(Bytesize)),
        "parity": key("parity", str, _choice(Parity)),
        "stopbits": key("stopbits", float, _one_of(*STOPBITS)),
        "prefix": key("prefix", str, _choice(VendorPrefix)),
    }


def _tcp_keys(t: Table) -> dict[str, Any]:
    def key(name: str, kind: type, check: Check | None = None) -> Any:
        return _key(t, TcpScannerSettings, name, kind, check=check)

    framing = _parse_framing(t)
    mode = key("mode", str, _choice(TcpMode))
    # A client needs the scanner's address; a server listens on every address by default.
    host = t.get("host", str, SERVER_HOST if mode == "server" else MISSING, check=_nonempty)
    return {
        "framing": framing,
        "mode": mode,
        "host": host,
        "port": key("port", int, _in_range(1, 65535)),
        "prefix": key("prefix", str, _choice(VendorPrefix)),
    }


def _evdev_keys(t: Table) -> dict[str, Any]:
    def key(name: str, kind: type, check: Check | None = None) -> Any:
        return _key(t, EvdevScannerSettings, name, kind, check=check)

    kw = {"path": key("path", str, _path), "name": key("name", str, _nonempty), "usb": key("usb", str, _usb_id)}
    if sum(v is not None for v in kw.values()) != 1:
        t.problems.add(t.path, "an evdev scanner needs exactly one of path, name or usb")
    # The keymap tables are imported only where a wedge scanner is configured: they are the
    # largest module of the drivers, and a gateway without one never needs them.
    from gatewayd_drivers.keymaps import LAYOUTS

    return kw | {
        "layout": key("layout", str, _one_of(*LAYOUTS)),
        "suffix": _suffix(t),
        "gs_substitute": key(
            "gs_substitute", str, lambda v: None if len(v) == 1 else f"expected one character, got {v!r}"
        ),
    }


def _suffix(t: Table) -> tuple[str, ...]:
    """The keys a wedge presses after each read, e.g. ``["enter", "down"]``."""
    from gatewayd_drivers.keymaps import SUFFIX_KEYS  # only where a wedge is configured, as LAYOUTS

    default: tuple[str, ...] = _default(EvdevScannerSettings, "suffix")
    value = t.get("suffix", list, list(default))
    if not value:
        t.problems.add(t.key("suffix"), 'expected at least one key, e.g. ["enter"]')
        return default
    bad = [(i, k) for i, k in enumerate(value) if k not in SUFFIX_KEYS]
    for i, k in bad:
        t.problems.add(f"{t.key('suffix')}[{i}]", f"expected a key name ({', '.join(SUFFIX_KEYS)}), got {k!r}")
    return default if bad else tuple(value)


def _hidpos_keys(t: Table) -> dict[str, Any]:
    return {
        "usb": _key(t, HidPosScannerSettings, "usb", str, check=_usb_id),
        "serial_number": _key(t, HidPosScannerSettings, "serial_number", str, check=_nonempty),
    }


def _replay_keys(t: Table) -> dict[str, Any]:
    def key(name: str, kind: type, check: Check | None = None) -> Any:
        return _key(t, ReplayScannerSettings, name, kind, check=check)

    return {
        "path": key("path", str, _path),
        "interval_s": key("interval_s", float, _in_range(0, 3600)),
        "loop": key("loop", bool),
        "pace": key("pace", str, _choice(ReplayPace)),
    }


# The keys of each driver's table, read into its settings class.
_DRIVER_KEYS: dict[type[ScannerSettings], Callable[[Table], dict[str, Any]]] = {
    SerialScannerSettings: _serial_keys,
    TcpScannerSettings: _tcp_keys,
    EvdevScannerSettings: _evdev_keys,
    HidPosScannerSettings: _hidpos_keys,
    ReplayScannerSettings: _replay_keys,
}


def _table_keys(cls: type[ScannerSettings]) -> set[str]:
    """The keys of a driver's ``[[scanners]]`` table besides id, station and driver."""
    names = {f.name for f in dataclasses.fields(cls)} - {"id", "station"}
    if "framing" in names:
        names = (names - {"framing"}) | {f.name for f in dataclasses.fields(FramingSettings)}
    return names


def _elsewhere(driver: str | None) -> dict[str, str]:
    """Why each key of another driver is unknown to a scanner of ``driver``."""
    owners: dict[str, list[str]] = {}
    for name, cls in SCANNER_SETTINGS.items():
        for key in _table_keys(cls):
            owners.setdefault(key, []).append(name)
    hints = {}
    for key, drivers in owners.items():
        which = " or ".join(repr(d) for d in drivers)
        hints[key] = f"{key} is a key of driver {which}" + (f", not {driver!r}" if driver else "; set driver first")
    return hints


# Keys that were renamed: the problem says what to write instead.
_RENAMED = {"terminator_key": 'terminator_key is now suffix, a list of keys: suffix = ["enter"] or ["tab"]'}


def _parse_scanners(root: Table, problems: Problems, stations: set[str]) -> list[ScannerSettings]:
    out: list[ScannerSettings] = []
    for _, t in _array(root, "scanners", problems):
        sid = t.get("id", str, check=_identifier)
        station = _station_ref(t, t.get("station", str), stations)
        driver = t.get("driver", str, check=_one_of(*SCANNER_DRIVERS))
        cls = SCANNER_SETTINGS[driver] if driver is not None else None
        kw = _DRIVER_KEYS[cls](t) if cls is not None else {}
        t.finish(elsewhere=_elsewhere(driver) | _RENAMED)
        if sid is None or station is None or cls is None:
            continue
        if all(kw[name] is not None for name in kw if _default(cls, name) is MISSING):
            out.append(cls(id=sid, station=station, **kw))
    return out


# -- printers ----------------------------------------------------------------------------


def _parse_printers(root: Table, problems: Problems, stations: set[str]) -> list[PrinterSettings]:
    out: list[PrinterSettings] = []
    for path, t in _array(root, "printers", problems):
        pid = _key(t, PrinterSettings, "id", str, check=_identifier)
        driver = _key(t, PrinterSettings, "driver", str, check=_choice(PrinterDriver))
        transport = _key(t, PrinterSettings, "transport", str, check=_printer_url)
        kw = _printer_keys(t, stations)
        if driver == "escpos" and kw["allow_raw"]:
            problems.add(f"{path}.allow_raw", "raw passthrough is for ZPL printers only")
        t.finish()
        if pid is not None and driver is not None and transport is not None:
            # The canonical URL spells out its defaults: tcp://host becomes tcp://host:9100.
            from gatewayd_drivers.printer_transport import parse_printer_url

            canonical = str(parse_printer_url(transport))
            out.append(PrinterSettings(id=pid, driver=driver, transport=canonical, **kw))
    return out


def _printer_keys(t: Table, stations: set[str]) -> dict[str, Any]:
    def key(name: str, kind: type, check: Check | None = None) -> Any:
        return _key(t, PrinterSettings, name, kind, check=check)

    return {
        "dpi": key("dpi", int, _choice(Dpi)),
        "allow_raw": key("allow_raw", bool),
        "station": _station_ref(t, key("station", str), stations),
        "profile": key("profile", str, _nonempty),
        "status_interval_s": key("status_interval_s", float, _in_range(0.2, 3600)),
        "timeout_s": key("timeout_s", float, _in_range(0.5, 300)),
    }


# -- EPCIS --------------------------------------------------------------------------------

URI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
OFFSET_RE = re.compile(r"^[+-](?:(?:0\d|1[0-3]):[0-5]\d|14:00)$")  # EPCIS eventTimeZoneOffset


def _uri(value: str) -> str | None:
    return None if URI_RE.match(value) else f"expected a URI such as 'urn:epc:id:sgln:9506000.13435.0', got {value!r}"


def _time_zone(value: str) -> str | None:
    if OFFSET_RE.match(value):
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # only where a zone name is configured

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return f"expected an IANA zone name such as 'Europe/Amsterdam' or an offset such as '+01:00', got {value!r}"
    return None


def _capture_url(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"expected an http(s) URL such as 'https://epcis.example.com/capture', got {value!r}"
    if parts.username or parts.password:
        return "credentials go in token_file or username/password_file, not in the URL"
    return None


def _po_template(value: str) -> str | None:
    if "{id}" not in value:
        return f"must contain {{id}} (where the order number goes), got {value!r}"
    return _uri(value.replace("{id}", "1"))


def _parse_epcis(root: Table, problems: Problems) -> EpcisSettings | None:
    if root.raw("epcis") is MISSING:
        return None
    t = _table(root, "epcis", problems)
    if t is None:
        return None

    def key(name: str, kind: type, check: Check | None = None) -> Any:
        return _key(t, EpcisSettings, name, kind, check=check)

    prefixes: dict[str, int] = {}
    for prefix, length in key("company_prefixes", dict).items():
        where = f"epcis.company_prefixes.{prefix}"
        if not (prefix.isascii() and prefix.isdigit() and 1 <= len(prefix) <= 12):
            problems.add(where, f"expected a GS1 Company Prefix of 1-12 digits as the key, got {prefix!r}")
        elif isinstance(length, bool) or not isinstance(length, int) or not 6 <= length <= 12:
            # GS1 EPC Tag Data Standard 6.3: an EPC URN's company prefix has 6 to 12 digits.
            problems.add(where, f"expected the prefix length, 6 to 12 (EPC Tag Data Standard 6.3), got {length!r}")
        else:
            prefixes[prefix] = length
    s = EpcisSettings(
        identifiers=key("identifiers", str, _choice(IdentifierForm)),
        company_prefixes=prefixes,
        time_zone=key("time_zone", str, _time_zone),
        idle_timeout_s=key("idle_timeout_s", float, _in_range(1, 86400)),
        aggregation_biz_step=key("aggregation_biz_step", str, _nonempty),
        po_uri_template=key("po_uri_template", str, _po_template),
        capture_url=key("capture_url", str, _capture_url),
        capture_batch=key("capture_batch", int, _in_range(1, 10_000)),
        capture_timeout_s=key("capture_timeout_s", float, _in_range(1, 600)),
        capture_retry_max_s=key("capture_retry_max_s", float, _in_range(0.1, 86400)),
        capture_job_timeout_s=key("capture_job_timeout_s", float, _in_range(1, 86400)),
        content_type=key("content_type", str, _choice(CaptureContentType)),
        token_file=_opt_path(key("token_file", str, _path)),
        username=key("username", str, _nonempty),
        password_file=_opt_path(key("password_file", str, _path)),
        ca_file=_opt_path(key("ca_file", str, _path)),
    )
    if t.raw("password") is not MISSING or t.raw("token") is not MISSING:
        problems.add(
            "epcis.password" if t.raw("password") is not MISSING else "epcis.token",
            "secrets are not kept in the config: put it in a file readable only by gatewayd "
            "and set password_file or token_file",
        )
    if s.password_file and not s.username:
        problems.add("epcis.username", "password_file is set, so username is required too")
    if s.username and not s.password_file:
        problems.add("epcis.password_file", "username is set, so password_file is required too")
    if s.token_file and s.username:
        problems.add("epcis.token_file", "choose one: a bearer token (token_file) or basic auth (username)")
    host = urlsplit(s.capture_url).hostname if s.capture_url else None
    plain = bool(s.capture_url and s.capture_url.startswith("http:") and host not in ("127.0.0.1", "::1", "localhost"))
    if plain and (s.token_file or s.username):
        problems.add("epcis.capture_url", "credentials would cross the network unencrypted: use an https URL")
    if s.identifiers == "urn" and not s.company_prefixes:
        problems.add(
            "epcis.company_prefixes",
            'identifiers = "urn" needs the length of each GS1 Company Prefix on your labels, e.g. '
            '{ "9506000" = 7 }; or use identifiers = "digital_link", which needs none',
        )
    t.finish()
    return s


def _check_unique_ids(data: Mapping[str, Any], problems: Problems) -> None:
    """Device ids are unique across scanners, printers and indicators (they name MQTT topics).

    Checked on the raw arrays, so each problem names the entry's place in the file even
    when an earlier entry is invalid.
    """
    seen: dict[str, str] = {}
    for section in ("scanners", "printers", "indicators"):
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


# -- feedback: indicators, [feedback], [http] --------------------------------------------


def _tower_keys(t: Table) -> dict[str, Any]:
    return {
        "port": _key(t, TowerSerialIndicatorSettings, "port", str, check=_path),
        "baudrate": _key(t, TowerSerialIndicatorSettings, "baudrate", int, check=_one_of(*BAUDRATES)),
    }


def _gpio_keys(t: Table) -> dict[str, Any]:
    def pin(name: str) -> Any:
        return _key(t, GpioIndicatorSettings, name, int, check=_in_range(0, 63))

    kw = {name: pin(name) for name in ("red", "yellow", "green", "buzzer")}
    if all(v is None for v in kw.values()):
        t.problems.add(t.path, "a gpio indicator needs at least one of red, yellow, green or buzzer (a GPIO number)")
    pins = [v for v in kw.values() if v is not None]
    if len(set(pins)) != len(pins):
        t.problems.add(t.path, f"each output needs its own GPIO line, got {kw}")
    return kw | {"active_high": _key(t, GpioIndicatorSettings, "active_high", bool)}


def _scanner_indicator_keys(t: Table) -> dict[str, Any]:
    return {
        "scanner": _key(t, ScannerIndicatorSettings, "scanner", str, check=_identifier),
        "protocol": _key(t, ScannerIndicatorSettings, "protocol", str, check=_choice(ScannerProtocol)),
    }


_INDICATOR_KEYS: dict[type[IndicatorSettings], Callable[[Table], dict[str, Any]]] = {
    TowerSerialIndicatorSettings: _tower_keys,
    GpioIndicatorSettings: _gpio_keys,
    ScannerIndicatorSettings: _scanner_indicator_keys,
}


def _check_scanner_ref(t: Table, kw: dict[str, Any], station: str | None, scanners: list[ScannerSettings]) -> None:
    """A scanner indicator names a serial or TCP scanner of its own station."""
    sid = kw.get("scanner")
    if sid is None:
        return
    found = next((s for s in scanners if s.id == sid), None)
    if found is None:
        known = ", ".join(s.id for s in scanners) or "none defined"
        t.problems.add(t.key("scanner"), f"no scanner {sid!r} in [[scanners]] (known: {known})")
    elif found.driver not in ("serial", "tcp"):
        t.problems.add(
            t.key("scanner"),
            f"scanner {sid!r} is a {found.driver!r} scanner; host commands need a 'serial' or 'tcp' one",
        )
    elif station is not None and found.station != station:
        t.problems.add(t.key("scanner"), f"scanner {sid!r} serves station {found.station!r}, not {station!r}")


def _parse_indicators(
    root: Table, problems: Problems, stations: set[str], scanners: list[ScannerSettings]
) -> list[IndicatorSettings]:
    out: list[IndicatorSettings] = []
    owners: dict[str, list[str]] = {}
    for name, kind in INDICATOR_SETTINGS.items():
        for f in dataclasses.fields(kind):
            if f.name not in ("id", "station"):
                owners.setdefault(f.name, []).append(name)
    for _, t in _array(root, "indicators", problems):
        iid = t.get("id", str, check=_identifier)
        station = _station_ref(t, t.get("station", str), stations)
        driver = t.get("driver", str, check=_one_of(*INDICATOR_DRIVERS))
        icls = INDICATOR_SETTINGS[driver] if driver is not None else None
        kw = _INDICATOR_KEYS[icls](t) if icls is not None else {}
        _check_scanner_ref(t, kw, station, scanners)
        hints = {
            key: f"{key} is a key of driver {' or '.join(map(repr, ds))}" + (f", not {driver!r}" if driver else "")
            for key, ds in owners.items()
        }
        t.finish(elsewhere=hints)
        if iid is None or station is None or icls is None:
            continue
        if all(kw[name] is not None for name in kw if _default(icls, name) is MISSING):
            out.append(icls(id=iid, station=station, **kw))
    return out


def _parse_feedback(root: Table, problems: Problems) -> FeedbackSettings:
    t = _table(root, "feedback", problems)
    if t is None:
        return FeedbackSettings()
    s = FeedbackSettings(
        accept_ms=_key(t, FeedbackSettings, "accept_ms", int, check=_in_range(0, 3_600_000)),
        buzz_ms=_key(t, FeedbackSettings, "buzz_ms", int, check=_in_range(0, 10_000)),
    )
    t.finish()
    return s


def _listen(value: str) -> HttpSettings | str:
    """``host:port`` or ``[v6]:port``."""
    host, sep, port = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        return f"expected host:port such as '127.0.0.1:8080' (or '[::1]:8080'), got {value!r}"
    return HttpSettings(host=host, port=int(port))


def _parse_http(root: Table, problems: Problems) -> HttpSettings | None:
    if root.raw("http") is MISSING:
        return None
    t = _table(root, "http", problems)
    if t is None:
        return None
    default = HttpSettings()
    raw = t.get("listen", str, default.listen)
    t.finish()
    if raw is None:
        return None
    parsed = _listen(raw)
    if isinstance(parsed, str):
        problems.add("http.listen", parsed)
        return None
    return parsed
