"""``gatewayd check --offline``: a repository of gateway configs, validated away from the Pis.

The repository here is what a site keeps in git: configs under ``gateways/`` that name a
password file, TLS files, a keyboard-wedge scanner and a serial port that exist only on the
gateways, and a ``labels/`` directory of site templates beside them. Offline, every one of
those is skipped and named; online, on this machine, each is a problem by key path.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.mqtt_tools import ROOT

GATEWAY = """
[gateway]
id = "{gid}"

[mqtt]
brokers = ["mqtts://broker.site:8883"]
username = "{gid}"
password_file = "/etc/gatewayd/mqtt-password"
ca_file = "/etc/gatewayd/ca.pem"
cert_file = "/etc/gatewayd/{gid}.crt"
key_file = "/etc/gatewayd/{gid}.key"

[labels]
templates_dir = "../labels"

[[stations]]
id = "dock-03"
step = "receiving"

[[scanners]]
id = "dock-03-wedge"
station = "dock-03"
driver = "evdev"
usb = "0c2e:0b61"

[[scanners]]
id = "dock-03-serial"
station = "dock-03"
driver = "serial"
port = "/dev/serial/by-id/usb-Honeywell_1950g-if00"
"""

TEMPLATE = """
width_mm = 50.8
height_mm = 25.4
required = ["lot"]

[[elements]]
type = "text"
x = 2
y = 2
height = 3
text = "DOCK {lot}"
"""

SKIPPED = [
    "skipped (offline): mqtt.password_file = /etc/gatewayd/mqtt-password",
    "skipped (offline): mqtt.ca_file = /etc/gatewayd/ca.pem",
    "skipped (offline): mqtt.cert_file = /etc/gatewayd/dock-pi-03.crt",
    "skipped (offline): mqtt.key_file = /etc/gatewayd/dock-pi-03.key",
    'skipped (offline): scanners[0].driver = "evdev": python-evdev',
    "skipped (offline): scanners[1].port = /dev/serial/by-id/usb-Honeywell_1950g-if00",
]


def config_repo(tmp_path: Path, *gateway_ids: str) -> Path:
    repo = tmp_path / "site-configs"
    (repo / "gateways").mkdir(parents=True)
    (repo / "labels").mkdir()
    (repo / "labels" / "dock.toml").write_text(TEMPLATE)
    for gid in gateway_ids:
        (repo / "gateways" / f"{gid}.toml").write_text(GATEWAY.format(gid=gid))
    return repo


def check(repo: Path, *args: str, glob_args: str | None = None) -> subprocess.CompletedProcess[str]:
    # python-evdev fails to import here whether or not it is installed: a CI runner without it.
    shadow = repo.parent / "shadow" / "evdev"
    shadow.mkdir(parents=True, exist_ok=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named evdev')\n")
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "JOURNAL_STREAM")}
    env |= {"PYTHONPATH": f"{shadow.parent}{os.pathsep}{ROOT}", "GATEWAYD_CONFIG": str(repo / "none.toml")}
    command = [sys.executable, "-m", "gatewayd", "check", *args]
    if glob_args is not None:  # as a CI job writes it, with the shell expanding the glob
        command = ["bash", "-c", f'"{sys.executable}" -m gatewayd check {glob_args}']
    return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=repo, env=env, check=False)


def test_offline_passes_and_names_everything_it_skipped(tmp_path: Path) -> None:
    repo = config_repo(tmp_path, "dock-pi-03")
    result = check(repo, "--offline", "--config", "gateways/dock-pi-03.toml")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == SKIPPED
    first, _, effective = result.stdout.partition("\n")
    assert first == "# gateways/dock-pi-03.toml: configuration is valid (offline). Effective configuration:"
    assert f'templates_dir = "{repo / "gateways" / ".." / "labels"}"' in effective


def test_online_on_this_machine_fails_naming_each_key(tmp_path: Path) -> None:
    repo = config_repo(tmp_path, "dock-pi-03")
    result = check(repo, "--config", "gateways/dock-pi-03.toml")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == "note: scanners[1].port: /dev/serial/by-id/usb-Honeywell_1950g-if00 is not on this " + (
        "machine now (unplugged, or a typo? `gatewayd devices` lists what is here); the gateway keeps trying to open it"
    )
    assert lines[1] == "gatewayd: 4 problem(s) in gateways/dock-pi-03.toml:"
    keys = [line.strip().split(":", 1)[0] for line in lines[2:]]
    assert keys == ["mqtt.password_file", "mqtt.ca_file", "mqtt.cert_file", "scanners[0].driver"]
    assert "no such file or directory" in lines[2]
    assert "python-evdev is not installed" in lines[5]
    assert result.stdout == ""


def test_a_broken_site_template_fails_offline_too(tmp_path: Path) -> None:
    repo = config_repo(tmp_path, "dock-pi-03")
    (repo / "labels" / "dock.toml").write_text(TEMPLATE.replace('type = "text"', 'type = "txt"'))
    result = check(repo, "--offline", "--config", "gateways/dock-pi-03.toml")
    assert result.returncode == 2
    problems = [line for line in result.stderr.splitlines() if not line.startswith("skipped (offline): ")]
    assert problems[0] == "gatewayd: 1 problem(s) in gateways/dock-pi-03.toml:"
    assert problems[1].startswith(f"  {repo / 'gateways' / '..' / 'labels' / 'dock.toml'}: elements[0].type: ")
    assert "'txt'" in problems[1]


def test_a_missing_templates_dir_fails_offline(tmp_path: Path) -> None:
    repo = config_repo(tmp_path, "dock-pi-03")
    (repo / "labels" / "dock.toml").unlink()
    (repo / "labels").rmdir()
    result = check(repo, "--offline", "--config", "gateways/dock-pi-03.toml")
    assert result.returncode == 2
    assert "labels.templates_dir: not a directory: " in result.stderr


def test_several_configs_by_shell_glob_as_in_ci(tmp_path: Path) -> None:
    repo = config_repo(tmp_path, "dock-pi-03", "dock-pi-04")
    result = check(repo, glob_args="--offline --config gateways/*.toml")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "# gateways/dock-pi-03.toml: configuration is valid (offline)",
        "# gateways/dock-pi-04.toml: configuration is valid (offline)",
    ]
    skipped = result.stderr.splitlines()
    assert len(skipped) == 12
    assert skipped[0] == "gateways/dock-pi-03.toml: skipped (offline): mqtt.password_file = /etc/gatewayd/mqtt-password"
    assert skipped[6].startswith("gateways/dock-pi-04.toml: skipped (offline): ")


def test_several_configs_one_broken_exits_2_naming_it(tmp_path: Path) -> None:
    repo = config_repo(tmp_path, "dock-pi-03", "dock-pi-04", "dock-pi-05")
    broken = repo / "gateways" / "dock-pi-04.toml"
    broken.write_text(broken.read_text().replace('step = "receiving"', 'step = "recieving"'))
    result = check(repo, "--offline", "--config", *sorted(str(p) for p in (repo / "gateways").glob("*.toml")))
    assert result.returncode == 2
    assert result.stdout.splitlines() == [
        f"# {repo / 'gateways' / 'dock-pi-03.toml'}: configuration is valid (offline)",
        f"# {repo / 'gateways' / 'dock-pi-05.toml'}: configuration is valid (offline)",
    ]
    problems = [line for line in result.stderr.splitlines() if "skipped (offline)" not in line]
    assert problems[0] == f"gatewayd: 1 problem(s) in {broken}:"
    assert problems[1].startswith("  stations[0].step: expected one of")
    assert problems[-1] == "gatewayd: 1 of 3 configs have problems"


def test_config_given_twice_checks_both(tmp_path: Path) -> None:
    # --config may also be repeated (argparse "extend"), as a CI script may build it.
    repo = config_repo(tmp_path, "dock-pi-03", "dock-pi-04")
    result = check(repo, "--offline", "--config", "gateways/dock-pi-03.toml", "--config", "gateways/dock-pi-04.toml")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2


def test_indicators_are_checked_on_the_machine_too(monkeypatch: pytest.MonkeyPatch) -> None:
    from gatewayd.cli.check import machine_checks
    from gatewayd.config import parse

    settings = parse(
        {
            "gateway": {"id": "gw"},
            "stations": [{"id": "dock-03", "step": "receiving"}],
            "indicators": [
                {"id": "light", "station": "dock-03", "driver": "tower-serial", "port": "/dev/serial/by-id/usb-none"},
                {"id": "stack", "station": "dock-03", "driver": "gpio", "red": 17},
            ],
        }
    )
    checks = machine_checks(settings)
    assert [c.keys for c in checks] == [
        ("indicators[0].port = /dev/serial/by-id/usb-none",),
        ('indicators[1].driver = "gpio": gpiozero',),
    ]
    assert checks[0].fatal is False and checks[0].run()[0].startswith(
        "indicators[0].port: /dev/serial/by-id/usb-none is not on this machine now"
    )
    assert checks[1].run() == []  # gpiozero is in the test extra
    monkeypatch.setitem(sys.modules, "gpiozero", None)
    assert checks[1].run() == ["indicators[1].driver: gpiozero is not installed (pip install 'gatewayd[gpio]')"]
