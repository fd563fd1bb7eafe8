"""The CLI's one error path: expected failures are one ``gatewayd: error:`` line, not a traceback.

Each case here printed a traceback before: a broken label template passed ``check``,
``outbox --replay`` crashed with two ``mqtts://`` brokers, a broker refusing the
connection or never sending SUBACK, and ``label preview`` crashed on ``-o x.zpl`` or an
output directory that does not exist.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gatewayd.config import OutboxSettings
from gatewayd.delivery.outbox import Outbox
from tests.test_cli import gatewayd, write


def config(tmp_path: Path, brokers: list[str], extra: str = "") -> Path:
    brokers_toml = ", ".join(f'"{b}"' for b in brokers)
    cfg = write(
        tmp_path / "gatewayd.toml",
        f'[gateway]\nid = "gw"\nstate_dir = "state"\n\n[mqtt]\nbrokers = [{brokers_toml}]\n{extra}',
    )
    Outbox.open(tmp_path / "state" / "outbox.sqlite3", OutboxSettings()).close()
    return cfg


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FakeBroker:
    """Answers CONNECT with ``connack`` and then ignores everything (no SUBACK, ever)."""

    def __init__(self, connack: bytes, *, v311_only: bool = False) -> None:
        self.connack = connack
        self.v311_only = v311_only  # close on an MQTT 5 CONNECT, as RabbitMQ 3.x does
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self._conns.append(conn)
            connect = conn.recv(4096)  # the CONNECT packet (small enough for one read on loopback)
            # Fixed header, one length byte, then "\x00\x04MQTT" and the protocol level.
            if self.v311_only and connect[8:9] == b"\x05":
                conn.close()
                continue
            conn.sendall(self.connack)

    def close(self) -> None:
        self.server.close()
        for conn in self._conns:
            conn.close()


@pytest.fixture
def fake_broker(request: pytest.FixtureRequest) -> Iterator[FakeBroker]:
    b = FakeBroker(request.param)
    yield b
    b.close()


def assert_one_error_line(stderr: str, *fragments: str) -> None:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gatewayd: error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0], stderr


def test_replay_with_two_unreachable_tls_brokers(tmp_path: Path) -> None:
    a, b = closed_port(), closed_port()
    cfg = config(tmp_path, [f"mqtts://127.0.0.1:{a}", f"mqtts://127.0.0.1:{b}"])
    result = gatewayd("outbox", "--config", str(cfg), "--replay", "1:1", tmp_path=tmp_path)
    assert result.returncode == 1
    assert_one_error_line(
        result.stderr, "cannot reach any broker", f"mqtts://127.0.0.1:{a}: ", f"mqtts://127.0.0.1:{b}: ", "refused"
    )


@pytest.mark.parametrize("fake_broker", [b"\x20\x03\x00\x87\x00"], indirect=True)  # MQTT 5 CONNACK: 0x87
def test_replay_with_a_broker_that_refuses_the_connection(tmp_path: Path, fake_broker: FakeBroker) -> None:
    cfg = config(tmp_path, [f"mqtt://127.0.0.1:{fake_broker.port}"])
    result = gatewayd("outbox", "--config", str(cfg), "--replay", "1:1", tmp_path=tmp_path)
    assert result.returncode == 1
    refusal = f"mqtt://127.0.0.1:{fake_broker.port} (MQTT 5): refused the connection (Not authorized)"
    assert_one_error_line(result.stderr, refusal)


@pytest.mark.parametrize("fake_broker", [b"\x20\x03\x00\x00\x00"], indirect=True)  # MQTT 5 CONNACK: success
def test_replay_with_a_broker_that_never_sends_suback(tmp_path: Path, fake_broker: FakeBroker) -> None:
    cfg = config(tmp_path, [f"mqtt://127.0.0.1:{fake_broker.port}"])
    result = gatewayd("outbox", "--config", str(cfg), "--replay", "1:1", tmp_path=tmp_path)
    assert result.returncode == 1
    assert_one_error_line(result.stderr, "no SUBACK for gatewayd/gw/response/replay within 10 s")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    cfg = config(tmp_path, [f"mqtt://127.0.0.1:{closed_port()}"])
    result = gatewayd("--debug", "outbox", "--config", str(cfg), "--replay", "1:1", tmp_path=tmp_path)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "RequestFailed: cannot reach any broker" in result.stderr


def test_check_loads_the_label_templates(tmp_path: Path) -> None:
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "broken.toml").write_text('name = "broken"\nwidth_mm = "wide"\n')
    cfg = config(tmp_path, ["mqtt://127.0.0.1"], '\n[labels]\ntemplates_dir = "labels"\n')
    result = gatewayd("check", "--config", str(cfg), tmp_path=tmp_path)
    assert result.returncode == 2, result.stdout
    assert "Traceback" not in result.stderr
    assert "broken.toml" in result.stderr


def test_label_preview_writes_zpl(tmp_path: Path) -> None:
    result = gatewayd("label", "preview", "--set", "lot=SUP1-20261127-0001", "-o", "x.zpl", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    zpl = (tmp_path / "x.zpl").read_bytes()
    assert zpl.startswith(b"^XA") and b"SUP1-20261127-0001" in zpl


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("x.txt", "--output: expected a file ending in .png, .svg, .pdf, .zpl, got 'x.txt'"),
        ("missing/x.png", "--output: the directory 'missing' does not exist"),
    ],
)
def test_label_preview_bad_output_is_one_error(tmp_path: Path, output: str, message: str) -> None:
    result = gatewayd("label", "preview", "--set", "lot=A-1", "-o", output, tmp_path=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"  {message}" in result.stderr.splitlines()
    assert not (tmp_path / output).exists()


def test_replay_falls_back_to_mqtt_311_with_protocol_auto(tmp_path: Path) -> None:
    """protocol = "auto" (the default): a broker that closes on MQTT 5 is asked in 3.1.1;
    this one then never sends SUBACK, which proves the 3.1.1 connection was accepted."""
    b = FakeBroker(b"\x20\x02\x00\x00", v311_only=True)  # MQTT 3.1.1 CONNACK: accepted
    try:
        cfg = config(tmp_path, [f"mqtt://127.0.0.1:{b.port}"])
        result = gatewayd("outbox", "--config", str(cfg), "--replay", "1:1", tmp_path=tmp_path)
    finally:
        b.close()
    assert result.returncode == 1
    assert_one_error_line(result.stderr, "no SUBACK for gatewayd/gw/response/replay within 10 s")
