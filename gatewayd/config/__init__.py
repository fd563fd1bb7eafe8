"""Configuration: the TOML file, validated once at start into frozen settings.

:mod:`~gatewayd.config.settings` holds the settings with their defaults and choices,
:mod:`~gatewayd.config.loader` reads and validates a file into them, and
:mod:`~gatewayd.config.keys` is the key checking it shares with label templates.
"""

from gatewayd.config.loader import DEFAULT_CONFIG_PATH, default_config_path, load, parse
from gatewayd.config.settings import (
    STEPS,
    BrokerUrl,
    DecodeSettings,
    EvdevScannerSettings,
    FramingSettings,
    GatewaySettings,
    HidPosScannerSettings,
    LabelSettings,
    LogSettings,
    MqttSettings,
    OutboxSettings,
    PrinterSettings,
    ReplayScannerSettings,
    ScannerSettings,
    SerialScannerSettings,
    Settings,
    StationSettings,
    Step,
    TcpScannerSettings,
    VendorPrefix,
)

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "STEPS",
    "BrokerUrl",
    "DecodeSettings",
    "EvdevScannerSettings",
    "FramingSettings",
    "GatewaySettings",
    "HidPosScannerSettings",
    "LabelSettings",
    "LogSettings",
    "MqttSettings",
    "OutboxSettings",
    "PrinterSettings",
    "ReplayScannerSettings",
    "ScannerSettings",
    "SerialScannerSettings",
    "Settings",
    "StationSettings",
    "Step",
    "TcpScannerSettings",
    "VendorPrefix",
    "default_config_path",
    "load",
    "parse",
]
