"""``gatewayd check``: configs, their label templates, and what they need from this machine.

Two kinds of check. Those of the config alone (the TOML, every key, the label templates in
``[labels] templates_dir``) mean the same anywhere. Those of the machine that runs it (the
MQTT password and TLS files, python-evdev for keyboard-wedge scanners, gpiozero for GPIO
lights, the device files scanners, printers and tower lights are opened by) only mean
something on the gateway. ``--offline``
runs the first kind and names every check of the second kind it skipped, so that a
repository of gateway configs can validate them in CI before they are copied to the Pis.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gatewayd.config import (
    EvdevScannerSettings,
    GpioIndicatorSettings,
    SerialScannerSettings,
    Settings,
    TowerSerialIndicatorSettings,
    default_config_path,
    load,
)
from gatewayd.errors import ConfigError
from gatewayd_drivers.printer_transport import FileUrl, SerialUrl, parse_printer_url

__all__ = ["MachineCheck", "cmd_check", "machine_checks", "print_problems", "to_toml"]


@dataclass(frozen=True, slots=True)
class MachineCheck:
    """A check that only means something on the gateway itself.

    ``keys`` name what it looks at (``mqtt.password_file = /etc/gatewayd/mqtt-password``);
    ``run`` returns problems (exit 2) or, when ``fatal`` is false, notes that do not fail
    the check: a device that is unplugged now may be plugged in later, and the gateway
    keeps trying to open it.
    """

    keys: tuple[str, ...]
    run: Callable[[], list[str]]
    fatal: bool = True


def machine_checks(settings: Settings) -> list[MachineCheck]:
    """Every check of ``settings`` that depends on the machine it runs on."""
    checks: list[MachineCheck] = []
    m = settings.mqtt
    files = [(f"mqtt.{k}", getattr(m, k)) for k in ("password_file", "ca_file", "cert_file", "key_file")]
    if any(path for _, path in files):

        def credentials() -> list[str]:
            from gatewayd.delivery.mqtt_link import check_credentials

            return check_credentials(m)

        checks.append(MachineCheck(tuple(f"{k} = {path}" for k, path in files if path), credentials))
    epcis = settings.epcis
    if epcis is not None and epcis.capture_url is not None:
        epcis_files = [(f"epcis.{k}", getattr(epcis, k)) for k in ("token_file", "password_file", "ca_file")]
        if any(path for _, path in epcis_files):

            def capture_files() -> list[str]:
                from gatewayd.delivery.epcis_capture import check_capture_files

                return check_capture_files(epcis)

            checks.append(MachineCheck(tuple(f"{k} = {path}" for k, path in epcis_files if path), capture_files))
    for i, sc in enumerate(settings.scanners):
        if isinstance(sc, EvdevScannerSettings):
            checks.append(MachineCheck((f'scanners[{i}].driver = "evdev": python-evdev',), _evdev_check(i)))
            if sc.path:
                checks.append(_device_check(f"scanners[{i}].path", sc.path))
        elif isinstance(sc, SerialScannerSettings):
            checks.append(_device_check(f"scanners[{i}].port", sc.port))
    for i, ind in enumerate(settings.indicators):
        if isinstance(ind, TowerSerialIndicatorSettings):
            checks.append(_device_check(f"indicators[{i}].port", ind.port))
        elif isinstance(ind, GpioIndicatorSettings):
            checks.append(MachineCheck((f'indicators[{i}].driver = "gpio": gpiozero',), _gpiozero_check(i)))
    for i, p in enumerate(settings.printers):
        url = parse_printer_url(p.transport)  # valid: the config loaded
        device = url.path if isinstance(url, FileUrl) else url.port if isinstance(url, SerialUrl) else None
        # Only device nodes: a file:// printer writing a regular file creates it.
        if device and device.startswith("/dev/"):
            checks.append(_device_check(f"printers[{i}].transport", device))
    return checks


def _evdev_check(index: int) -> Callable[[], list[str]]:
    def run() -> list[str]:
        try:
            import evdev  # noqa: F401
        except ImportError:
            from gatewayd_drivers.evdev_scanner import EVDEV_MISSING

            return [f"scanners[{index}].driver: {EVDEV_MISSING}"]
        return []

    return run


def _gpiozero_check(index: int) -> Callable[[], list[str]]:
    def run() -> list[str]:
        try:
            import gpiozero  # noqa: F401
        except ImportError:
            return [f"indicators[{index}].driver: gpiozero is not installed (pip install 'gatewayd[gpio]')"]
        return []

    return run


def _device_check(key: str, path: str) -> MachineCheck:
    def run() -> list[str]:
        if os.path.exists(path):
            return []
        return [
            f"{key}: {path} is not on this machine now (unplugged, or a typo? `gatewayd devices` lists "
            "what is here); the gateway keeps trying to open it"
        ]

    return MachineCheck((f"{key} = {path}",), run, fatal=False)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What checking one config found."""

    path: Path
    settings: Settings | None
    problems: list[str]
    notes: list[str]
    skipped: list[str]


def check_one(path: Path, *, offline: bool) -> Verdict:
    try:
        settings = load(path)
    except ConfigError as exc:
        return Verdict(path, None, exc.problems, [], [])
    from gatewayd.epcis.derive import check_settings

    problems = _template_problems(settings) + check_settings(settings)
    notes: list[str] = []
    skipped: list[str] = []
    for check in machine_checks(settings):
        if offline:
            skipped += check.keys
        elif check.fatal:
            problems += check.run()
        else:
            notes += check.run()
    return Verdict(path, settings, problems, notes, skipped)


def _template_problems(settings: Settings) -> list[str]:
    """The built-in and site label templates, validated as the print service loads them."""
    from gatewayd.printing.labels import TemplateLibrary

    try:
        TemplateLibrary.load(user_dir=settings.labels.templates_dir)
    except ConfigError as exc:
        return exc.problems
    return []


def cmd_check(args: argparse.Namespace) -> int:
    paths: list[Path] = args.config or [default_config_path()]
    several = len(paths) > 1
    failed = 0
    for path in paths:
        verdict = check_one(path, offline=args.offline)
        where = f"{path}: " if several else ""
        for key in verdict.skipped:
            print(f"{where}skipped (offline): {key}", file=sys.stderr)
        for note in verdict.notes:
            print(f"{where}note: {note}", file=sys.stderr)
        if verdict.problems:
            failed += 1
            print_problems(verdict.problems, path)
            continue
        assert verdict.settings is not None
        if several:
            print(f"# {path}: configuration is valid{' (offline)' if args.offline else ''}")
        else:
            print(f"# {path}: configuration is valid{' (offline)' if args.offline else ''}. Effective configuration:")
            print(to_toml(verdict.settings.to_dict()))
    if failed and several:
        print(f"gatewayd: {failed} of {len(paths)} configs have problems", file=sys.stderr)
    return 2 if failed else 0


def print_problems(problems: list[str], path: Path | None) -> None:
    """``gatewayd: N problem(s) in PATH:`` and one indented line per problem, on stderr."""
    where = f" in {path}" if path else ""
    print(f"gatewayd: {len(problems)} problem(s){where}:", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)


def to_toml(data: dict[str, Any]) -> str:
    """A small TOML writer for the effective config (tables, arrays of tables, scalars)."""
    lines: list[str] = []

    def scalar(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(scalar(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {scalar(x)}" for k, x in v.items()) + " }"
        return json.dumps(str(v))

    def table(prefix: str, d: dict[str, Any], header: str) -> None:
        simple = {k: v for k, v in d.items() if not isinstance(v, dict) and not _is_table_array(v)}
        if header:
            lines.append("")
            lines.append(header)
        for k, v in simple.items():
            lines.append(f"{k} = {scalar(v)}")
        for k, v in d.items():
            if isinstance(v, dict):
                table(f"{prefix}{k}.", v, f"[{prefix}{k}]")
            elif _is_table_array(v):
                for item in v:
                    table(f"{prefix}{k}.", item, f"[[{prefix}{k}]]")

    data = {k: v for k, v in data.items() if k != "source"}
    table("", data, "")
    return "\n".join(lines).strip() + "\n"


def _is_table_array(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)
