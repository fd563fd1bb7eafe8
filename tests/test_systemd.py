"""The systemd unit and the sd_notify protocol, with the real daemon.

``systemd-analyze verify`` checks the shipped unit (with ExecStart pointed at this venv's
``gatewayd``, since /opt/gatewayd does not exist here) and ``systemd-analyze security``
pins its hardening. The daemon is run as ``Type=notify`` would run it: a notification
socket in ``$NOTIFY_SOCKET`` and ``$WATCHDOG_USEC``, and the datagrams it sends are read
with the sender's credentials, as systemd does for ``NotifyAccess=main``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gatewayd.demo.local_broker import LocalBroker
from tests.mqtt_tools import DaemonProcess, wait_until, write_config

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "gatewayd.service"
SHIPPED_EXEC = "/opt/gatewayd/venv/bin/gatewayd"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze") or (
    "/usr/bin/systemd-analyze" if os.access("/usr/bin/systemd-analyze", os.X_OK) else None
)
needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None,
    reason="systemd-analyze is not installed (apt-get install systemd): cannot verify the unit here",
)


def unit_directives() -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def gatewayd_executable() -> str:
    exe = Path(sys.executable).parent / "gatewayd"
    if not exe.exists():
        pytest.skip(f"no gatewayd console script beside {sys.executable} (pip install -e .)")
    return str(exe)


def local_unit(tmp_path: Path, text: str | None = None) -> Path:
    """The shipped unit, with ExecStart pointing at an executable that exists here."""
    text = UNIT.read_text() if text is None else text
    assert SHIPPED_EXEC in text
    path = tmp_path / "gatewayd.service"
    path.write_text(text.replace(SHIPPED_EXEC, gatewayd_executable()))
    return path


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None
    env = dict(os.environ, SYSTEMD_LOG_COLOR="0", SYSTEMD_PAGER="", SYSTEMD_LOG_LEVEL="notice")
    return subprocess.run([SYSTEMD_ANALYZE, *args], capture_output=True, text=True, timeout=60, env=env, check=False)


# -- the unit file ---------------------------------------------------------------------------


def test_unit_declares_what_the_daemon_relies_on() -> None:
    d = unit_directives()
    expected = {
        "Type": ["notify"],
        "NotifyAccess": ["main"],
        "ExecStart": [f"{SHIPPED_EXEC} run --config /etc/gatewayd/gatewayd.toml"],
        "User": ["gatewayd"],
        "Group": ["gatewayd"],
        "WatchdogSec": ["30"],
        "Restart": ["always"],
        "StateDirectory": ["gatewayd"],
        "ConfigurationDirectory": ["gatewayd"],
        "Environment": ["PYTHONUNBUFFERED=1"],
        "CapabilityBoundingSet": [""],
        "NoNewPrivileges": ["yes"],
        "ProtectSystem": ["strict"],
        "RestrictAddressFamilies": ["AF_UNIX AF_INET AF_INET6 AF_NETLINK"],
        "WantedBy": ["multi-user.target"],
    }
    assert {k: d.get(k) for k in expected} == expected
    # Config errors (exit 2) are not retried; anything else is.
    assert d["RestartPreventExitStatus"] == ["2"]
    # Serial ports and printers by group; scanners' event/hidraw nodes via group gatewayd in
    # the udev rules, which deliberately keep the service out of group input.
    assert set(d["SupplementaryGroups"][0].split()) == {"dialout", "lp"}
    rules = (ROOT / "config" / "99-gatewayd.rules").read_text()
    assert 'GROUP="gatewayd"' in rules and 'GROUP="input"' not in rules
    # Hot-plugged devices must stay reachable: no device cgroup filter (see the unit's comment).
    assert "PrivateDevices" not in d and "DevicePolicy" not in d and "DeviceAllow" not in d
    # The read-only adjtimex(2) clock check must stay allowed.
    assert "ProtectClock" not in d
    assert any("adjtimex" in v.split() for v in d["SystemCallFilter"])


@needs_systemd_analyze
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    unit = local_unit(tmp_path)
    result = analyze("verify", "--man=no", str(unit))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # verify reports unknown directives and bad values as warnings with exit 0: none allowed.
    assert unit.name not in output, output
    for word in ("Unknown", "unknown", "Ignoring", "ignoring", "Failed", "Invalid", "invalid"):
        assert word not in output, output


@needs_systemd_analyze
def test_verify_would_catch_a_typo(tmp_path: Path) -> None:
    # The check above is only as good as verify: a misspelt directive must show up.
    text = UNIT.read_text().replace("ProtectHome=yes", "ProtectHomes=yes")
    result = analyze("verify", "--man=no", str(local_unit(tmp_path, text)))
    assert "ProtectHomes" in result.stdout + result.stderr


@needs_systemd_analyze
def test_unit_hardening_exposure_stays_low(tmp_path: Path) -> None:
    unit = local_unit(tmp_path)
    result = analyze("security", "--offline=true", "--threshold=30", "--no-pager", str(unit))
    if "--offline" in result.stderr and "unrecognized" in result.stderr:
        pytest.skip(f"this systemd-analyze has no offline security review: {result.stderr.strip()}")
    # Exposure 0-10 (lower is better); 3.0 or more means the hardening above was weakened.
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr


# -- sd_notify with the real daemon ----------------------------------------------------------


@dataclass
class Notification:
    fields: dict[str, str]
    pid: int | None
    at: float


class NotifyListener:
    """A notification socket like systemd's: SOCK_DGRAM, sender credentials on each message."""

    def __init__(self, address: str) -> None:
        self.address = address  # what goes into $NOTIFY_SOCKET
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.received: list[Notification] = []

    def close(self) -> None:
        self.sock.close()

    def _receive(self, timeout: float) -> None:
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data, ancdata, _flags, _addr = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        except TimeoutError:
            return
        pid = None
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", payload[:12])[0]
        fields = dict(line.partition("=")[::2] for line in data.decode().splitlines() if line)
        self.received.append(Notification(fields, pid, time.monotonic()))

    def wait_for(
        self, predicate: Callable[[list[Notification]], bool], *, timeout: float = 20.0, what: str
    ) -> list[Notification]:
        deadline = time.monotonic() + timeout
        while not predicate(self.received):
            left = deadline - time.monotonic()
            if left <= 0:
                got = [n.fields for n in self.received]
                raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; received {got}")
            self._receive(min(left, 0.5))
        return self.received

    def with_key(self, key: str) -> list[Notification]:
        return [n for n in self.received if key in n.fields]


@pytest.fixture(params=["path", "abstract"])
def listener(request: pytest.FixtureRequest) -> Iterator[NotifyListener]:
    if request.param == "path":
        # A short directory: AF_UNIX paths are limited to 107 bytes, pytest's tmp_path is long.
        with tempfile.TemporaryDirectory(prefix="gwnotify-") as d:
            lst = NotifyListener(os.path.join(d, "notify.sock"))
            yield lst
            lst.close()
    else:
        lst = NotifyListener(f"@gatewayd-test-{os.getpid()}-{secrets.token_hex(4)}")
        yield lst
        lst.close()


SYSTEMD_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM", "LISTEN_FDS", "LISTEN_PID")


def start_daemon(daemons: list[DaemonProcess], cfg: Path, tmp_path: Path, env: dict[str, str]) -> DaemonProcess:
    """``gatewayd run`` with exactly the systemd variables given (none inherited from the test run)."""
    d = DaemonProcess(cfg, tmp_path)
    d.env = {k: v for k, v in d.env.items() if k not in SYSTEMD_ENV} | env
    daemons.append(d.start())
    return d


def gateway_config(tmp_path: Path, broker: LocalBroker) -> Path:
    state_dir = tmp_path / "state"
    return write_config(
        tmp_path / "gatewayd.toml",
        f"""
[gateway]
id = "notify-gw"
state_dir = "{state_dir}"

[mqtt]
brokers = ["{broker.url}"]
protocol = {broker.protocol}
reconnect_min_s = 0.1
reconnect_max_s = 0.5

[[stations]]
id = "dock-03"
step = "receiving"
""",
    )


def test_notify_ready_status_watchdog_stopping(
    broker: LocalBroker, tmp_path: Path, listener: NotifyListener, daemons: list[DaemonProcess]
) -> None:
    env = {"NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": "1000000"}  # 1 s: a ping every 0.5 s
    d = start_daemon(daemons, gateway_config(tmp_path, broker), tmp_path, env)
    assert d.proc is not None

    listener.wait_for(lambda ns: any("READY" in n.fields for n in ns) or not d.alive(), what="READY=1")
    assert d.alive(), d.log()
    [ready] = listener.with_key("READY")
    assert ready.fields["READY"] == "1"
    # READY carries a STATUS line saying what the gateway is doing, in plain words.
    assert "outbox 0 undelivered, last seq 0" in ready.fields["STATUS"]

    # Once connected, STATUS says so (systemctl status shows it).
    listener.wait_for(
        lambda ns: any("connected to" in n.fields.get("STATUS", "") for n in ns), what="STATUS after connecting"
    )
    # Watchdog pings keep coming at half WATCHDOG_USEC.
    start = len(listener.received)
    listener.wait_for(
        lambda ns: sum("WATCHDOG" in n.fields for n in ns[start:]) >= 4, what="four WATCHDOG=1 after READY"
    )
    assert all(n.fields["WATCHDOG"] == "1" for n in listener.with_key("WATCHDOG"))
    assert not listener.with_key("STOPPING")

    d.proc.send_signal(signal.SIGTERM)
    listener.wait_for(lambda ns: any("STOPPING" in n.fields for n in ns), what="STOPPING=1 after SIGTERM")
    assert d.proc.wait(timeout=15) == 0, d.log()
    [stopping] = listener.with_key("STOPPING")
    assert stopping.fields == {"STOPPING": "1"}

    # NotifyAccess=main: every notification comes from the main process, not a child.
    assert {n.pid for n in listener.received} == {d.proc.pid}
    # Order: READY first, STOPPING after every STATUS update that preceded the signal.
    kinds = [next(iter(n.fields)) for n in listener.received]
    assert kinds.index("READY") < kinds.index("STOPPING")
    assert all("READY" not in n.fields for n in listener.received[1:])
    log = d.log()
    assert "Traceback" not in log, log
    assert "stopped" in log

    # systemctl status names the broker it is connected to.
    connected = next(n.fields["STATUS"] for n in listener.received if "connected to" in n.fields.get("STATUS", ""))
    assert f"connected to {broker.url}" in connected


def test_no_watchdog_pings_for_another_process(
    broker: LocalBroker, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    # sd_watchdog_enabled(3): WATCHDOG_PID names the process meant to ping; a child that
    # inherited the environment (here: the daemon, told the pid is someone else's) must not.
    with tempfile.TemporaryDirectory(prefix="gwnotify-") as tmp:
        listener = NotifyListener(os.path.join(tmp, "notify.sock"))
        try:
            env = {"NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"}
            d = start_daemon(daemons, gateway_config(tmp_path, broker), tmp_path, env)
            listener.wait_for(lambda ns: any("READY" in n.fields for n in ns) or not d.alive(), what="READY=1")
            assert d.alive(), d.log()
            # READY went out; by the time the broker STATUS arrives (a full round trip), a
            # 0.1 s ping loop would have sent several: none may come.
            listener.wait_for(
                lambda ns: any("connected to" in n.fields.get("STATUS", "") for n in ns), what="STATUS connected"
            )
            assert d.terminate() == 0
            listener.wait_for(lambda ns: any("STOPPING" in n.fields for n in ns), what="STOPPING=1")
            assert not listener.with_key("WATCHDOG")
        finally:
            listener.close()


def test_without_notify_socket_the_daemon_runs_and_stops_cleanly(
    broker: LocalBroker, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    # Outside systemd (a terminal, a container) the notifier is a no-op.
    d = start_daemon(daemons, gateway_config(tmp_path, broker), tmp_path, {})
    # Wait for the broker connection: a SIGTERM racing the first CONNACK can hang shutdown on
    # Python 3.11 (asyncio.wait_for swallowing the cancellation; reported with its fix).
    wait_until(lambda: "mqtt: connected to" in d.log() or not d.alive(), timeout=20, what="connected")
    assert d.alive(), d.log()
    assert d.terminate() == 0
    assert "Traceback" not in d.log()


# -- scripts/install (never run for real here: it installs system-wide) ----------------------

INSTALL = ROOT / "scripts" / "install"


def run_install(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(INSTALL), *args], capture_output=True, text=True, timeout=30, check=False)


def test_install_script_is_valid_bash_and_executable() -> None:
    assert os.access(INSTALL, os.X_OK)
    result = subprocess.run(["bash", "-n", str(INSTALL)], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr


def test_install_script_help_and_bad_option() -> None:
    result = run_install("--help")
    assert result.returncode == 0, result.stderr
    for option in ("--no-start", "--evdev", "--prefix", "--help"):
        assert option in result.stdout
    assert "/etc/gatewayd/gatewayd.toml" in result.stdout
    result = run_install("--frobnicate")
    assert result.returncode == 2
    assert "unknown option --frobnicate" in result.stderr


def test_install_script_matches_the_unit() -> None:
    text = INSTALL.read_text()
    # It rewrites the unit's ExecStart for --prefix, installs the example config and the
    # udev rules, and puts the user in the unit's supplementary groups.
    assert SHIPPED_EXEC in text
    assert "config/gatewayd.example.toml" in text and "config/99-gatewayd.rules" in text
    groups = unit_directives()["SupplementaryGroups"][0]
    assert f"for g in {groups}; do" in text


# Applies the kernel's own MemoryDenyWriteExecute (prctl PR_SET_MDWE, Linux 6.3+), which
# survives exec, then runs the daemon: what the unit's MemoryDenyWriteExecute=yes enforces.
MDWE_EXEC = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
    sys.exit(77)
os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
"""


def test_daemon_runs_with_memory_deny_write_execute(broker: LocalBroker, tmp_path: Path) -> None:
    probe = subprocess.run([sys.executable, "-c", MDWE_EXEC, "-c", "pass"], timeout=30, check=False)
    if probe.returncode == 77:
        pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3+): cannot emulate MemoryDenyWriteExecute=yes")
    with tempfile.TemporaryDirectory(prefix="gwnotify-") as tmp:
        listener = NotifyListener(os.path.join(tmp, "notify.sock"))
        log_path = tmp_path / "gatewayd.log"
        env = {k: v for k, v in os.environ.items() if k not in SYSTEMD_ENV} | {
            "NOTIFY_SOCKET": listener.address, "PYTHONUNBUFFERED": "1",
        }  # fmt: skip
        cfg = gateway_config(tmp_path, broker)
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-c", MDWE_EXEC, "-m", "gatewayd", "run", "--config", str(cfg)],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env, cwd=ROOT, start_new_session=True,
            )  # fmt: skip
        try:
            listener.wait_for(
                lambda ns: any("connected to" in n.fields.get("STATUS", "") for n in ns) or proc.poll() is not None,
                what="READY and a broker connection under MDWE",
            )
            assert proc.poll() is None, log_path.read_text()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0, log_path.read_text()
            assert "Traceback" not in log_path.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            listener.close()
