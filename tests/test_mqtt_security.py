"""MQTT security with the real daemon and mosquitto: TLS with client certificates, and
username with a password file.

A failure to connect must be said plainly in the log (which certificate, which refusal),
without a traceback, and the gateway must keep running and keep retrying. The password
never appears on a command line, in ``gatewayd check`` output or in the log.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gatewayd.demo.local_broker import LocalBroker, find_mosquitto, free_port
from tests.certs import Pki, make_pki, openssl
from tests.mqtt_tools import ROOT, DaemonProcess, Subscriber, start_daemon, wait_until
from tests.mqtt_tools import gateway_config as shared_gateway_config
from tests.mqtt_tools import wait_online as shared_wait_online
from tests.pty_scanner import PtyScanner
from tests.tcp_proxy import TcpProxy

GW = "sec-gw"
P = f"gatewayd/{GW}"

pytestmark = pytest.mark.skipif(find_mosquitto() is None, reason="needs mosquitto (TLS and password files)")


def gateway_config(tmp_path: Path, brokers: list[str], scanner: PtyScanner, **kwargs: Any) -> Path:
    return shared_gateway_config(tmp_path, brokers, scanner, **{"gateway_id": GW, **kwargs})


def wait_online(sub: Subscriber, d: DaemonProcess, *, root: str = P, since: int = 0) -> None:
    shared_wait_online(sub, d, root=root, since=since)


def scan_end_to_end(sub: Subscriber, scanner: PtyScanner, data: str = "SUP1-20261127-0001") -> None:
    sub.wait_for(f"{P}/devices/dock-03-left/state", lambda p: p["state"] == "connected")
    scanner.write(data.encode() + b"\r")
    scan = sub.wait_for(f"{P}/scans/dock-03", lambda p: p["raw"] == data)
    assert scan["seq"] >= 1 and scan["station"] == "dock-03"


def log_line_with(d: DaemonProcess, *needles: str, timeout: float = 15.0) -> str:
    """The first log line holding every needle (case-insensitive)."""

    def find() -> str | None:
        for line in d.log().splitlines():
            if all(n.lower() in line.lower() for n in needles):
                return line
        return None

    return str(wait_until(find, timeout=timeout, what=f"a log line with {needles!r}"))


# -- TLS ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if openssl() is None:
        pytest.skip("needs the openssl command to make test certificates")
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_listener(pki: Pki, port: int, *, require_certificate: bool = True, identity_as_username: bool = False) -> str:
    return (
        f"listener {port} 127.0.0.1\n"
        f"cafile {pki.ca}\ncertfile {pki.server_cert}\nkeyfile {pki.server_key}\n"
        f"require_certificate {'true' if require_certificate else 'false'}\n"
        f"use_identity_as_username {'true' if identity_as_username else 'false'}\n"
    )


@pytest.fixture
def tls_broker(tmp_path: Path, pki: Pki) -> Iterator[tuple[LocalBroker, int]]:
    """mosquitto with a plain listener (for the test's subscriber) and a TLS one."""
    tls_port = free_port()
    conf = tls_listener(pki, tls_port, identity_as_username=True)
    with LocalBroker(workdir=tmp_path / "broker", extra_conf=conf) as b:
        yield b, tls_port


def tls_settings(ca: Path, cert: Path, key: Path) -> str:
    return f'ca_file = "{ca}"\ncert_file = "{cert}"\nkey_file = "{key}"'


def test_tls_with_client_certificate_end_to_end(
    tls_broker: tuple[LocalBroker, int], pki: Pki, tmp_path: Path, scanner: PtyScanner, daemons: list[DaemonProcess]
) -> None:
    broker, tls_port = tls_broker
    cfg = gateway_config(tmp_path, [f"mqtts://127.0.0.1:{tls_port}"], scanner,
                         mqtt=tls_settings(pki.ca, pki.client_cert, pki.client_key))
    with Subscriber(broker.port, [f"{P}/#"]) as sub:
        d = start_daemon(daemons, cfg, tmp_path)
        wait_online(sub, d)
        scan_end_to_end(sub, scanner)
        assert d.terminate() == 0
        assert sub.on(f"{P}/status")[-1].json()["state"] == "offline"
    log = d.log()
    assert f"connected to mqtts://127.0.0.1:{tls_port}" in log
    assert "Traceback" not in log


def test_tls_without_use_identity_as_username(
    tmp_path: Path, pki: Pki, scanner: PtyScanner, daemons: list[DaemonProcess]
) -> None:
    tls_port = free_port()
    with LocalBroker(workdir=tmp_path / "broker", extra_conf=tls_listener(pki, tls_port)) as broker, \
            Subscriber(broker.port, [f"{P}/#"]) as sub:
        cfg = gateway_config(tmp_path, [f"mqtts://localhost:{tls_port}"], scanner,
                             mqtt=tls_settings(pki.ca, pki.client_cert, pki.client_key))
        d = start_daemon(daemons, cfg, tmp_path)
        wait_online(sub, d)
        scan_end_to_end(sub, scanner)


def test_tls_server_signed_by_unknown_ca_is_rejected_plainly_and_retried(
    tls_broker: tuple[LocalBroker, int], pki: Pki, tmp_path: Path, scanner: PtyScanner, daemons: list[DaemonProcess]
) -> None:
    _, tls_port = tls_broker
    with TcpProxy(tls_port) as proxy:
        cfg = gateway_config(tmp_path, [f"mqtts://127.0.0.1:{proxy.port}"], scanner,
                             mqtt=tls_settings(pki.other_ca, pki.client_cert, pki.client_key))
        d = start_daemon(daemons, cfg, tmp_path)
        line = log_line_with(d, "cannot connect", "certificate was rejected")
        assert f"mqtts://127.0.0.1:{proxy.port}" in line
        assert "self-signed certificate in certificate chain" in line or "unable to get local issuer" in line, line
        assert "mqtt.ca_file" in line
        wait_until(lambda: proxy.accepted >= 3, timeout=15, what="three connection attempts")
        assert d.alive()
        # The same problem is logged once, not once per attempt.
        assert d.log().count("certificate was rejected") == 1
        assert "Traceback" not in d.log()
        assert d.terminate() == 0


def test_tls_client_certificate_from_unknown_ca_is_refused_plainly_and_retried(
    tls_broker: tuple[LocalBroker, int], pki: Pki, tmp_path: Path, scanner: PtyScanner, daemons: list[DaemonProcess]
) -> None:
    _, tls_port = tls_broker
    with TcpProxy(tls_port) as proxy:
        cfg = gateway_config(tmp_path, [f"mqtts://127.0.0.1:{proxy.port}"], scanner,
                             mqtt=tls_settings(pki.ca, pki.other_client_cert, pki.other_client_key))
        d = start_daemon(daemons, cfg, tmp_path)
        line = log_line_with(d, "cannot connect", "rejected our tls client certificate")
        assert f"mqtts://127.0.0.1:{proxy.port}" in line
        assert "mqtt.cert_file" in line
        wait_until(lambda: proxy.accepted >= 3, timeout=15, what="three connection attempts")
        assert d.alive()
        assert d.log().count("cannot connect") == 1, "every attempt must fail the same way, logged once"
        assert "Traceback" not in d.log()
        assert d.terminate() == 0


def test_tls_and_plain_brokers_in_one_list(
    tls_broker: tuple[LocalBroker, int], pki: Pki, tmp_path: Path, scanner: PtyScanner, daemons: list[DaemonProcess]
) -> None:
    """Failover from an mqtts:// broker that is down to a plain mqtt:// one, and back."""
    broker, tls_port = tls_broker
    with TcpProxy(tls_port) as tls_proxy, TcpProxy(broker.port) as plain_proxy:
        tls_proxy.cut()
        cfg = gateway_config(tmp_path, [f"mqtts://127.0.0.1:{tls_proxy.port}", f"mqtt://127.0.0.1:{plain_proxy.port}"],
                             scanner, mqtt=tls_settings(pki.ca, pki.client_cert, pki.client_key))
        with Subscriber(broker.port, [f"{P}/#"]) as sub:
            d = start_daemon(daemons, cfg, tmp_path)
            wait_online(sub, d)
            log_line_with(d, f"connected to mqtt://127.0.0.1:{plain_proxy.port}")
            scan_end_to_end(sub, scanner, "PLAIN-1")
            seen = len(sub.on(f"{P}/status"))
            tls_proxy.restore()
            plain_proxy.cut()
            wait_online(sub, d, since=seen)
            log_line_with(d, f"connected to mqtts://127.0.0.1:{tls_proxy.port}")
            scan_end_to_end(sub, scanner, "TLS-1")
            assert "Traceback" not in d.log()


# -- username and password file ------------------------------------------------------------

MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
needs_passwd = pytest.mark.skipif(
    not Path(MOSQUITTO_PASSWD).exists(), reason="needs mosquitto_passwd to make the broker's password file"
)

SECRET = "s3cret-Dock-Pi-pw"


def broker_passwords(path: Path, users: dict[str, str]) -> Path:
    path.unlink(missing_ok=True)
    for i, (user, password) in enumerate(users.items()):
        flags = ["-b", "-c"] if i == 0 else ["-b"]
        subprocess.run([MOSQUITTO_PASSWD, *flags, str(path), user, password], check=True, capture_output=True)
    return path


@pytest.fixture
def auth_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    pw = broker_passwords(tmp_path / "broker.passwd", {"dock-pi": SECRET, "wms": "wms-pw"})
    with LocalBroker(workdir=tmp_path / "broker", allow_anonymous=False, extra_conf=f"password_file {pw}\n") as b:
        yield b


def wms(broker: LocalBroker) -> Subscriber:
    sub = Subscriber(broker.port, [f"{P}/#"])
    sub.client.username_pw_set("wms", "wms-pw")
    return sub


def password_settings(tmp_path: Path, password: str) -> str:
    pw = tmp_path / "mqtt.password"
    pw.write_text(password + "\n")
    pw.chmod(0o600)
    return f'username = "dock-pi"\npassword_file = "{pw}"'


@needs_passwd
def test_password_file_connects_and_secret_stays_out_of_sight(
    auth_broker: LocalBroker, tmp_path: Path, scanner: PtyScanner, daemons: list[DaemonProcess]
) -> None:
    cfg = gateway_config(tmp_path, [auth_broker.url], scanner, mqtt=password_settings(tmp_path, SECRET))
    with wms(auth_broker) as sub:
        d = start_daemon(daemons, cfg, tmp_path)
        wait_online(sub, d)
        scan_end_to_end(sub, scanner)
        assert d.proc is not None
        cmdline = Path(f"/proc/{d.proc.pid}/cmdline").read_bytes().decode(errors="replace")
        assert SECRET not in cmdline
        check = subprocess.run([sys.executable, "-m", "gatewayd", "check", "--config", str(cfg)],
                               capture_output=True, text=True, cwd=ROOT, timeout=30, check=False)
        assert check.returncode == 0, check.stderr
        assert "password_file" in check.stdout
        assert SECRET not in check.stdout + check.stderr
        assert d.terminate() == 0
    assert SECRET not in d.log()
    assert "Traceback" not in d.log()


@needs_passwd
@pytest.mark.parametrize("protocol", [5, 3])
def test_wrong_password_is_refused_plainly_retried_and_recovers(
    auth_broker: LocalBroker, tmp_path: Path, scanner: PtyScanner, daemons: list[DaemonProcess], protocol: int
) -> None:
    with TcpProxy(auth_broker.port) as proxy, wms(auth_broker) as sub:
        cfg = gateway_config(tmp_path, [f"mqtt://127.0.0.1:{proxy.port}"], scanner, protocol=protocol,
                             mqtt=password_settings(tmp_path, "not-the-password"))
        d = start_daemon(daemons, cfg, tmp_path)
        line = log_line_with(d, "cannot connect", "refused")
        assert "bad user name or password" in line.lower() or "not authorized" in line.lower(), line
        assert "check mqtt.username and mqtt.password_file" in line
        wait_until(lambda: proxy.accepted >= 3, timeout=15, what="three connection attempts")
        assert d.alive()
        assert "not-the-password" not in d.log()
        # The broker admin fixes the account; the gateway, still retrying, gets in.
        broker_passwords(tmp_path / "broker.passwd", {"dock-pi": "not-the-password", "wms": "wms-pw"})
        assert auth_broker.proc is not None
        auth_broker.proc.send_signal(signal.SIGHUP)  # mosquitto reloads its password file
        wait_online(sub, d)
        scan_end_to_end(sub, scanner)
        assert "Traceback" not in d.log()


# -- unusable credential files ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ('ca_file = "{d}/missing-ca.crt"', "mqtt.ca_file: cannot load {d}/missing-ca.crt (no such file or directory)"),
        ('ca_file = "{d}/not-a-cert.pem"',
         "mqtt.ca_file: cannot load {d}/not-a-cert.pem (no PEM certificate or key found in it)"),
        ('cert_file = "{client_cert}"\nkey_file = "{other_key}"',
         "mqtt.cert_file: cannot load {client_cert} with mqtt.key_file {other_key} "
         "(the key does not belong to the certificate)"),
        ('username = "dock-pi"\npassword_file = "{d}/missing.password"',
         "mqtt.password_file: cannot read {d}/missing.password (no such file or directory)"),
    ],
    ids=["missing-ca", "garbage-ca", "key-not-matching-cert", "missing-password-file"],
)
def test_unusable_credential_files_stop_the_daemon_with_the_key_path(
    tmp_path: Path, pki: Pki, scanner: PtyScanner, settings: str, expected: str
) -> None:
    (tmp_path / "not-a-cert.pem").write_text("this is not PEM\n")
    values = {"d": tmp_path, "client_cert": pki.client_cert, "other_key": pki.other_client_key}
    cfg = gateway_config(tmp_path, [f"mqtts://127.0.0.1:{free_port()}"], scanner, mqtt=settings.format(**values))
    run = subprocess.run([sys.executable, "-m", "gatewayd", "run", "--config", str(cfg)],
                         capture_output=True, text=True, cwd=ROOT, timeout=30, check=False)
    assert run.returncode == 2, run.stderr
    assert expected.format(**values) in run.stderr
    assert "Traceback" not in run.stderr
