"""``scripts/install`` run for real, as root, on a machine without udev or systemd.

The script runs in a private mount namespace whose ``/etc``, ``/opt`` and ``/var`` are
overlays on this machine's own (every change lands in a temporary upper directory, the
real directories are never written) and where ``/run/systemd`` and ``/run/udev`` are
hidden, so it sees what a container or a minimal image shows it: no udev, systemd not
PID 1, whatever this machine runs. pip installs from a wheel directory built once from
this checkout and its dependencies (``PIP_NO_INDEX``), so the install itself needs no
network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.mqtt_tools import ROOT

INSTALL = ROOT / "scripts" / "install"

# A Debian machine's PATH: the system python3 (the one a Pi has) creates the venv, so the
# gatewayd user can run it (a python under /root could not be).
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

SANDBOX = r"""
set -euo pipefail
for d in etc opt var; do
  mkdir -p "$SANDBOX/$d/upper" "$SANDBOX/$d/work"
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$SANDBOX/$d/upper,workdir=$SANDBOX/$d/work" "/$d"
done
for d in /run/systemd /run/udev; do
  if [ -d "$d" ]; then mount -t tmpfs tmpfs "$d"; fi
done
"""

RUN_TWICE = r"""
rm -rf /etc/udev/rules.d
run() {
  set +e
  "$INSTALL" --no-start >"$SANDBOX/$1.out" 2>&1
  echo $? >"$SANDBOX/$1.rc"
  set -e
}
run first
echo '# edited on site' >>/etc/gatewayd/gatewayd.toml
mkdir -p /etc/udev/rules.d    # udev installed since, still not running
run second
as_gatewayd() {
  set +e
  runuser -u gatewayd -- /opt/gatewayd/venv/bin/gatewayd "$2" --config /etc/gatewayd/gatewayd.toml \
    >"$SANDBOX/$1.out" 2>&1
  echo $? >"$SANDBOX/$1.rc"
  set -e
}
as_gatewayd check check
as_gatewayd status status
"""


def _namespaces_problem() -> str | None:
    """Why this machine cannot give the script a private mount namespace with overlays."""
    if os.geteuid() != 0:
        return "needs root: scripts/install runs as root, here in a private mount namespace"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "bash", "-c",
         'd=$(mktemp -d) && mkdir "$d/u" "$d/w" && '
         'mount -t overlay overlay -o "lowerdir=/etc,upperdir=$d/u,workdir=$d/w" /etc; rc=$?; '
         'umount /etc 2>/dev/null; rm -rf "$d"; exit $rc'],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    if probe.returncode != 0:
        return f"no private mount namespace with an overlay on /etc here: {probe.stderr.strip()}"
    return None


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wheels of gatewayd and its dependencies, built once from the package index pip is
    set up with (as ./scripts/test builds .venv), so the installs below run offline."""
    problem = _namespaces_problem()
    if problem:
        pytest.skip(problem)
    wheels = tmp_path_factory.mktemp("wheels")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(wheels), str(ROOT)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return wheels


@dataclass
class Sandbox:
    path: Path

    def out(self, name: str) -> str:
        return (self.path / f"{name}.out").read_text()

    def rc(self, name: str) -> int:
        return int((self.path / f"{name}.rc").read_text())

    def etc(self, relative: str) -> Path:
        """A file the script wrote under /etc (it lands in the overlay's upper directory)."""
        return self.path / "etc" / "upper" / relative


@pytest.fixture(scope="module")
def installed(wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    """``scripts/install --no-start`` twice, then ``gatewayd check`` as the gatewayd user."""
    sandbox = tmp_path_factory.mktemp("install")
    env = {
        "PATH": SYSTEM_PATH, "HOME": str(sandbox), "LANG": "C.UTF-8",
        "SANDBOX": str(sandbox), "INSTALL": str(INSTALL),
        "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheelhouse), "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_CACHE_DIR": "1",
    }  # fmt: skip
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "bash", "-c", SANDBOX + RUN_TWICE],
        capture_output=True, text=True, timeout=240, check=False, env=env, cwd=sandbox,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return Sandbox(sandbox)


def test_install_completes_without_udev_and_systemd(installed: Sandbox) -> None:
    out = installed.out("first")
    assert installed.rc("first") == 0, out
    assert "creating system user gatewayd" in out
    assert "gatewayd is installed." in out
    assert [line for line in out.splitlines() if line.startswith(("error", "warning"))] == [], out


def test_install_writes_the_unit_config_and_state_dir(installed: Sandbox) -> None:
    unit = installed.etc("systemd/system/gatewayd.service")
    assert "ExecStart=/opt/gatewayd/venv/bin/gatewayd run --config /etc/gatewayd/gatewayd.toml" in unit.read_text()
    # Enabled without a running systemd: the [Install] symlink, for when the image boots.
    wants = installed.etc("systemd/system/multi-user.target.wants/gatewayd.service")
    assert os.readlink(wants) == "/etc/systemd/system/gatewayd.service"
    config = installed.etc("gatewayd/gatewayd.toml")
    assert config.read_text().startswith((ROOT / "config" / "gatewayd.example.toml").read_text())
    assert (installed.path / "var" / "upper" / "lib" / "gatewayd").is_dir()
    assert (installed.path / "opt" / "upper" / "gatewayd" / "venv" / "bin" / "gatewayd").exists()


def test_install_says_what_no_udev_means_for_usb_scanners(installed: Sandbox) -> None:
    out = installed.out("first")
    assert "note: no udev on this machine (/etc/udev/rules.d does not exist): udev rules not installed." in out
    assert "chgrp gatewayd /dev/hidraw0 && chmod 0660 /dev/hidraw0" in out
    assert "Permission denied" in out
    assert "Re-plug USB scanners" not in out
    assert "installing udev rules" not in out


def test_install_says_how_to_run_without_systemd(installed: Sandbox) -> None:
    out = installed.out("first")
    assert "note: systemd is not running here (PID 1 is " in out
    assert "/etc/systemd/system/gatewayd.service is installed and enabled for when this system boots" in out
    assert "sudo -u gatewayd /opt/gatewayd/venv/bin/gatewayd run --config /etc/gatewayd/gatewayd.toml" in out
    assert "journalctl" not in out
    # The command it suggests works as that user: the venv and the config are readable.
    assert installed.rc("check") == 0, installed.out("check")
    assert "configuration is valid" in installed.out("check")
    # And `status`, which the summary names, says it does not run yet.
    assert "status:  sudo /opt/gatewayd/venv/bin/gatewayd status --config /etc/gatewayd/gatewayd.toml" in out
    assert installed.rc("status") == 3, installed.out("status")
    assert installed.out("status").startswith("gatewayd is not running: no status file at /var/lib/gatewayd/")


def test_second_install_keeps_the_config_and_installs_rules_for_a_later_udev(installed: Sandbox) -> None:
    out = installed.out("second")
    assert installed.rc("second") == 0, out
    assert "keeping existing /etc/gatewayd/gatewayd.toml" in out
    assert "creating" not in out
    assert installed.etc("gatewayd/gatewayd.toml").read_text().endswith("# edited on site\n")
    # /etc/udev/rules.d exists now but udev does not run: the rules go in, with the note.
    assert (
        installed.etc("udev/rules.d/99-gatewayd.rules").read_bytes()
        == (ROOT / "config" / "99-gatewayd.rules").read_bytes()
    )
    assert "note: udev is not running here: /etc/udev/rules.d/99-gatewayd.rules is installed" in out
    assert "chgrp gatewayd /dev/hidraw0" in out
