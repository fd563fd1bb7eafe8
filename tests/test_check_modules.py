"""`gatewayd check` names the fix when a configured driver's optional module is missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.mqtt_tools import ROOT

CONFIG = """
[gateway]
id = "gw"
[[stations]]
id = "dock-03"
step = "receiving"
[[scanners]]
id = "wedge"
station = "dock-03"
driver = "evdev"
usb = "0c2e:0b61"
"""


def test_check_reports_missing_evdev_with_the_fix(tmp_path: Path) -> None:
    # A module that fails to import, first on the path: what a machine without
    # python-evdev (or with a broken build of it) looks like to gatewayd.
    shadow = tmp_path / "shadow" / "evdev"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named evdev')\n")
    cfg = tmp_path / "g.toml"
    cfg.write_text(CONFIG)
    env = dict(os.environ, PYTHONPATH=f"{shadow.parent}{os.pathsep}{ROOT}")
    result = subprocess.run([sys.executable, "-m", "gatewayd", "check", "--config", str(cfg)], env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "scanners[0].driver: python-evdev is not installed: pip install 'gatewayd[evdev]'" in result.stderr
    assert "python3-evdev" in result.stderr


def test_check_reports_unreadable_password_and_tls_files(tmp_path: Path) -> None:
    cfg = tmp_path / "g.toml"
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("this is not a certificate\n")
    cfg.write_text(
        f"""
[gateway]
id = "gw"
[mqtt]
brokers = ["mqtts://broker:8883"]
username = "dock"
password_file = "{tmp_path / "missing-password"}"
ca_file = "{not_pem}"
"""
    )
    result = subprocess.run([sys.executable, "-m", "gatewayd", "check", "--config", str(cfg)],
                            capture_output=True, text=True, timeout=60, check=False, cwd=ROOT)  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == f"gatewayd: 2 problem(s) in {cfg}:"
    assert lines[1].strip().startswith("mqtt.password_file: cannot read")
    assert "no such file or directory" in lines[1]
    assert lines[2].strip().startswith("mqtt.ca_file: cannot load")
