"""The settings: frozen dataclasses, their choices and their defaults, each written once.

A default lives on its dataclass field and a set of choices in its ``Literal`` type (or a
tuple where a ``Literal`` cannot hold the values); :mod:`gatewayd.config.loader` reads both
from here, and ``gatewayd check`` prints the result (:meth:`Settings.to_dict`).

A scanner's settings are one class per driver (:data:`ScannerSettings` is their union);
the class is the tag, and its ``driver`` class attribute names it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeAlias, get_args

__all__ = [
    "BAUDRATES",
    "INDICATOR_DRIVERS",
    "INDICATOR_SETTINGS",
    "MQTT_PORTS",
    "SCANNER_DRIVERS",
    "SCANNER_SETTINGS",
    "SERVER_HOST",
    "STEPS",
    "STOPBITS",
    "BrokerUrl",
    "DecodeSettings",
    "EpcisSettings",
    "EvdevScannerSettings",
    "FeedbackSettings",
    "FramingSettings",
    "GatewaySettings",
    "GpioIndicatorSettings",
    "HidPosScannerSettings",
    "HttpSettings",
    "IndicatorSettings",
    "LabelSettings",
    "LogSettings",
    "MqttSettings",
    "OutboxSettings",
    "PrinterSettings",
    "ReplayScannerSettings",
    "ScannerIndicatorSettings",
    "ScannerSettings",
    "SerialScannerSettings",
    "Settings",
    "StationSettings",
    "Step",
    "TcpScannerSettings",
    "TowerSerialIndicatorSettings",
    "VendorPrefix",
]

# Movement steps; each maps to a GS1 CBV business step (gatewayd.reads.stations).
Step = Literal["receiving", "transfer", "picking", "dispatch"]
STEPS: tuple[Step, ...] = get_args(Step)

BrokerScheme = Literal["mqtt", "mqtts"]
MQTT_PORTS: dict[BrokerScheme, int] = {"mqtt": 1883, "mqtts": 8883}  # IANA-registered MQTT ports
MqttProtocol = Literal["auto", 3, 5]  # 5, falling back to 3.1.1 per broker; MQTT 3.1.1; MQTT 5
Synchronous = Literal["full", "normal"]  # SQLite PRAGMA synchronous
LogLevel = Literal["debug", "info", "warning", "error"]
PrinterDriver = Literal["zpl", "escpos"]
Dpi = Literal[203, 300, 600]
Parity = Literal["N", "E", "O", "M", "S"]
Bytesize = Literal[5, 6, 7, 8]
TcpMode = Literal["client", "server"]
# What a byte-stream scanner puts before each read: an AIM identifier (ISO/IEC 15424), a
# Honeywell Code ID, a Zebra (Symbol) code type, or nothing (gatewayd.reads.vendor_ids).
VendorPrefix = Literal["aim", "honeywell", "zebra", "none"]
ReplayPace = Literal["recorded", "fast"]  # a capture file replayed at its recorded times, or at once
ScannerProtocol = Literal["zebra-ssi"]  # host commands a scanner indicator speaks
BAUDRATES = (1200, 2400, 4800, 9600, 14400, 19200, 38400, 57600, 115200, 230400)
STOPBITS: tuple[float, ...] = (1, 1.5, 2)  # a Literal cannot hold 1.5
SERVER_HOST = "0.0.0.0"  # noqa: S104  # a server-mode TCP scanner listens on every address by default


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    id: str
    site: str | None = None
    state_dir: Path = Path("/var/lib/gatewayd")


@dataclass(frozen=True, slots=True)
class BrokerUrl:
    scheme: BrokerScheme
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
    brokers: tuple[BrokerUrl, ...] = (BrokerUrl("mqtt", "localhost", MQTT_PORTS["mqtt"]),)
    topic_prefix: str = "gatewayd"
    protocol: MqttProtocol = "auto"
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
    # Where MQTT 5 response topics outside the gateway's own tree may point; empty: anywhere.
    response_topic_prefixes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OutboxSettings:
    max_events: int = 1_000_000  # undelivered events kept before new reads are refused
    max_bytes: int = 512 * 1024 * 1024
    retention_hours: float = 168.0  # delivered history kept for replay
    drain_rate: int = 5000  # events per second after an outage; 0 = unlimited
    inflight: int = 100  # unacknowledged publishes at once
    synchronous: Synchronous = "full"


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
    level: LogLevel = "info"


@dataclass(frozen=True, slots=True)
class StationSettings:
    id: str
    step: Step
    location: str | None = None
    dedupe_ms: int = 1500
    biz_location: str | None = None  # EPCIS bizLocation (an SGLN): where the goods are after the read


IdentifierForm = Literal["digital_link", "urn"]  # EPCIS identifiers: GS1 Digital Link URIs or EPC URNs
CaptureContentType = Literal["application/json", "application/ld+json"]


@dataclass(frozen=True, slots=True)
class EpcisSettings:
    """``[epcis]``: present, every published GS1 read also becomes an EPCIS 2.0 event."""

    identifiers: IdentifierForm = "digital_link"
    # GS1 Company Prefix -> its length, for EPC URNs (identifiers = "urn"); longest match wins.
    company_prefixes: dict[str, int] = field(default_factory=dict)
    time_zone: str | None = None  # IANA name or +hh:mm for eventTimeZoneOffset; None: the system's zone
    idle_timeout_s: float = 300.0  # a dispatch / receiving context closes after this long without a read
    aggregation_biz_step: str = "packing"  # bizStep of the AggregationEvent a dispatch station emits
    po_uri_template: str | None = None  # AI 400 order number -> URI, e.g. "https://wms.example.com/po/{id}"
    capture_url: str | None = None  # EPCIS 2.0 REST capture endpoint (.../capture)
    capture_batch: int = 50  # EPCIS documents merged into one POST
    capture_timeout_s: float = 30.0  # one HTTP request
    capture_retry_max_s: float = 300.0  # cap of the retry backoff
    capture_job_timeout_s: float = 600.0  # how long a capture job may run before the batch is sent again
    content_type: CaptureContentType = "application/json"  # what the REST binding's OpenAPI declares
    token_file: Path | None = None  # bearer token, in a file
    username: str | None = None  # basic auth, with password_file
    password_file: Path | None = None
    ca_file: Path | None = None  # CA bundle for the endpoint's certificate; default: the system's


@dataclass(frozen=True, slots=True)
class FramingSettings:
    """How a byte-stream scanner (serial, tcp) separates reads; flat keys in its table."""

    terminator: str = "\r"
    stx_etx: bool = False
    char_timeout_ms: int = 200  # a partial read is flushed after this silence; 0 = never
    max_length: int = 4096


@dataclass(frozen=True, slots=True, kw_only=True)
class _ScannerBase:
    """What every scanner has; ``driver`` is fixed by the class."""

    driver: ClassVar[str]
    id: str
    station: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SerialScannerSettings(_ScannerBase):
    driver: ClassVar[Literal["serial"]] = "serial"
    port: str
    baudrate: int = 9600
    bytesize: Bytesize = 8
    parity: Parity = "N"
    stopbits: float = 1.0
    prefix: VendorPrefix = "aim"
    framing: FramingSettings = field(default_factory=FramingSettings)


@dataclass(frozen=True, slots=True, kw_only=True)
class TcpScannerSettings(_ScannerBase):
    driver: ClassVar[Literal["tcp"]] = "tcp"
    host: str  # client: the scanner's address; server: the address to listen on (SERVER_HOST)
    port: int
    mode: TcpMode = "client"
    prefix: VendorPrefix = "aim"
    framing: FramingSettings = field(default_factory=FramingSettings)


@dataclass(frozen=True, slots=True, kw_only=True)
class EvdevScannerSettings(_ScannerBase):
    """A keyboard wedge, matched by exactly one of path, name or usb."""

    driver: ClassVar[Literal["evdev"]] = "evdev"
    path: str | None = None
    name: str | None = None
    usb: str | None = None
    layout: str = "us"  # a name in gatewayd_drivers.keymaps.LAYOUTS
    suffix: tuple[str, ...] = ("enter",)  # keys that end a read: names in gatewayd_drivers.keymaps.SUFFIX_KEYS
    gs_substitute: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HidPosScannerSettings(_ScannerBase):
    driver: ClassVar[Literal["hidpos"]] = "hidpos"
    usb: str
    serial_number: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayScannerSettings(_ScannerBase):
    driver: ClassVar[Literal["replay"]] = "replay"
    path: str
    interval_s: float = 0.0  # seconds between reads unless the file says otherwise
    loop: bool = False
    pace: ReplayPace = "recorded"  # a capture file: at its recorded times, or "fast"


ScannerSettings: TypeAlias = (
    SerialScannerSettings
    | TcpScannerSettings
    | EvdevScannerSettings
    | HidPosScannerSettings
    | ReplayScannerSettings
)
# The settings class of each driver, by its name, in the order the docs list them.
SCANNER_SETTINGS: dict[str, type[ScannerSettings]] = {cls.driver: cls for cls in get_args(ScannerSettings)}
SCANNER_DRIVERS: tuple[str, ...] = tuple(SCANNER_SETTINGS)


@dataclass(frozen=True, slots=True)
class PrinterSettings:
    id: str
    driver: PrinterDriver
    transport: str  # a printer URL in its canonical form (gatewayd_drivers.printer_transport)
    dpi: Dpi = 203
    allow_raw: bool = False
    station: str | None = None  # the station this printer serves
    profile: str = "default"  # python-escpos printer profile
    status_interval_s: float = 5.0
    timeout_s: float = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class _IndicatorBase:
    driver: ClassVar[str]
    id: str
    station: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TowerSerialIndicatorSettings(_IndicatorBase):
    """A one-byte-command tower light on a serial port (Adafruit 5125 protocol)."""

    driver: ClassVar[Literal["tower-serial"]] = "tower-serial"
    port: str
    baudrate: int = 9600


@dataclass(frozen=True, slots=True, kw_only=True)
class GpioIndicatorSettings(_IndicatorBase):
    """A stack light or relay board on GPIO lines (BCM numbers), each output optional."""

    driver: ClassVar[Literal["gpio"]] = "gpio"
    red: int | None = None
    yellow: int | None = None
    green: int | None = None
    buzzer: int | None = None
    active_high: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class ScannerIndicatorSettings(_IndicatorBase):
    """The station's own scanner: beeper and LEDs by host commands on its serial or TCP link."""

    driver: ClassVar[Literal["scanner"]] = "scanner"
    scanner: str  # the id of a serial or tcp scanner of the same station
    protocol: ScannerProtocol = "zebra-ssi"


IndicatorSettings: TypeAlias = TowerSerialIndicatorSettings | GpioIndicatorSettings | ScannerIndicatorSettings
INDICATOR_SETTINGS: dict[str, type[IndicatorSettings]] = {cls.driver: cls for cls in get_args(IndicatorSettings)}
INDICATOR_DRIVERS: tuple[str, ...] = tuple(INDICATOR_SETTINGS)


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """The station pages, /metrics and /healthz; absent from the config: no server."""

    host: str = "127.0.0.1"  # loopback unless the site opens it on purpose
    port: int = 8080

    @property
    def listen(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class FeedbackSettings:
    accept_ms: int = 3000  # an accept stays green this long, then the station is idle again
    buzz_ms: int = 400  # a reject sounds the buzzer this long


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
    indicators: tuple[IndicatorSettings, ...] = ()
    feedback: FeedbackSettings = field(default_factory=FeedbackSettings)
    http: HttpSettings | None = None
    epcis: EpcisSettings | None = None  # None: no [epcis] table, no EPCIS output
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
            out["scanners"] = [_scanner_table(s) for s in self.scanners]
        if self.printers:
            out["printers"] = [_plain(asdict(p)) for p in self.printers]
        out["feedback"] = _plain(asdict(self.feedback))
        if self.indicators:
            out["indicators"] = [
                _plain({"id": i.id, "station": i.station, "driver": i.driver, **asdict(i)}) for i in self.indicators
            ]
        if self.http is not None:
            out["http"] = {"listen": self.http.listen}
        if self.epcis is not None:
            out["epcis"] = _plain(asdict(self.epcis))
        return out


def _scanner_table(s: ScannerSettings) -> dict[str, Any]:
    """A scanner as its ``[[scanners]]`` table: the driver named, framing keys flat."""
    values = asdict(s)
    framing = values.pop("framing", {})
    table = {"id": values.pop("id"), "station": values.pop("station"), "driver": s.driver}
    return dict(_plain({**table, **values, **framing}))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
