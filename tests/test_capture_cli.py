"""`gatewayd capture` recording a serial scanner on a real pseudo-terminal, then
`gatewayd decode --capture` reading the file back: the whole support loop, as subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import serial

from gatewayd_drivers.capture import parse_capture
from tests.pty_scanner import PtyScanner

GS1_READ = b"]C1010950600013435210ABC123\x1d17271231\r"
WAIT = 20.0  # seconds; only reached when something is broken


def write_config(tmp_path: Path, port: Path) -> Path:
    config = tmp_path / "gatewayd.toml"
    config.write_text(
        f'[gateway]\nid = "dock-pi-03"\nstate_dir = "state"\n'
        f'[[stations]]\nid = "dock-03"\nstep = "receiving"\n'
        f'[[scanners]]\nid = "dock-03-left"\nstation = "dock-03"\ndriver = "serial"\nport = "{port}"\n'
        f'[[scanners]]\nid = "dock-03-replay"\nstation = "dock-03"\ndriver = "replay"\npath = "reads.txt"\n'
    )
    return config


def gatewayd(*args: str) -> list[str]:
    return [sys.executable, "-m", "gatewayd", *args]


def environment(cwd: Path) -> dict[str, str]:
    """No config of this machine leaks in: GATEWAYD_CONFIG names a file that does not exist."""
    return {k: v for k, v in os.environ.items() if k != "GATEWAYD_CONFIG"} | {
        "GATEWAYD_CONFIG": str(cwd / "no-such-config.toml")}


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(gatewayd(*args), capture_output=True, text=True, timeout=60, cwd=cwd, env=environment(cwd),
                          check=False)  # fmt: skip


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def records_in(path: Path) -> bytes:
    if not path.exists():
        return b""
    return b"".join(p for _, p in parse_capture(path.read_text()).records if isinstance(p, bytes))


@pytest.fixture
def pty(tmp_path: Path) -> Iterator[PtyScanner]:
    scanner = PtyScanner(tmp_path)
    yield scanner
    scanner.close()


def test_record_a_serial_scanner_then_decode_the_file(tmp_path: Path, pty: PtyScanner) -> None:
    config = write_config(tmp_path, pty.path)
    out = tmp_path / "dock-03-left.capture"
    proc = subprocess.Popen(gatewayd("capture", "--config", str(config), "--scanner", "dock-03-left", "-o", str(out)),
                            cwd=tmp_path, env=environment(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        wait_until(lambda: out.exists() and "# kind: serial" in out.read_text(), "the capture header")
        pty.write(GS1_READ[:20])
        wait_until(lambda: records_in(out) == GS1_READ[:20], "the first chunk")
        pty.write(GS1_READ[20:])
        wait_until(lambda: records_in(out) == GS1_READ, "the whole read")
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    capture = parse_capture(out.read_text())
    assert capture.kind == "serial" and capture.device == f"{pty.path} at 9600 8N1"
    headers = dict(capture.headers)
    assert headers["scanner"] == "dock-03-left" and "recorded" in headers and "gatewayd" in headers
    assert all(offset is not None for offset, _ in capture.records)
    assert capture.records[0][0] == 0.0
    assert f"recording scanner dock-03-left (serial, {pty.path} at 9600 8N1) to {out} until Ctrl-C" in stderr
    assert f"stopped: {len(capture.records)} record(s) written to {out}" in stderr
    assert "serial capture, terminator b'\\r': 1 read(s)" in stderr
    assert "  1: '" in stderr and "ABC123\\x1d17271231'" in stderr

    decoded = run("decode", "--config", str(config), "--capture", str(out), "--scanner", "dock-03-left",
                  cwd=tmp_path)  # fmt: skip
    assert decoded.returncode == 0, decoded.stderr
    [scan] = [json.loads(line) for line in decoded.stdout.splitlines()]
    assert (scan["raw"], scan["symbology"], scan["kind"], scan["lot"]) == (GS1_READ[:-1].decode(), "]C1", "gs1",
                                                                           "ABC123")
    assert (scan["scanner"], scan["station"]) == ("dock-03-left", "dock-03")


def test_record_for_a_number_of_seconds(tmp_path: Path, pty: PtyScanner) -> None:
    config = write_config(tmp_path, pty.path)
    out = tmp_path / "quiet.capture"
    result = run("capture", "--config", str(config), "--scanner", "dock-03-left", "--seconds", "0.2", "-o", str(out),
                 cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "0.2 s passed: 0 record(s) written to" in result.stderr
    assert parse_capture(out.read_text()).records == ()


def test_a_port_the_gateway_holds_is_busy_and_the_message_says_to_stop_it(tmp_path: Path, pty: PtyScanner) -> None:
    config = write_config(tmp_path, pty.path)
    with serial.Serial(str(pty.path), exclusive=True):  # as the running gateway holds it
        result = run("capture", "--config", str(config), "--scanner", "dock-03-left", "--seconds", "1", "-o",
                     str(tmp_path / "x.capture"), cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == (f"gatewayd capture: scanner dock-03-left: {pty.path} is in use by another program: stop "
                             "the gatewayd service first (sudo systemctl stop gatewayd), then record again\n")
    assert not (tmp_path / "x.capture").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--scanner", "dock-03-replay"), "gatewayd capture: scanner dock-03-replay uses the replay driver: there is "
         "no device to record\n"),
        (("--scanner", "dock-9"), "--scanner: no scanner 'dock-9' in"),
        (("--scanner", "dock-03-left", "--seconds", "0"), "--seconds: expected a number of seconds above 0, got 0"),
    ],
)
def test_what_cannot_be_recorded(tmp_path: Path, pty: PtyScanner, args: tuple[str, ...], message: str) -> None:
    config = write_config(tmp_path, pty.path)
    result = run("capture", "--config", str(config), *args, "-o", str(tmp_path / "x.capture"), cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "decode: give RAW reads or --capture FILE (one of them)"),
        (("X", "--capture", "f.capture"), "decode: give RAW reads or --capture FILE (one of them)"),
        (("X", "--layout", "de"), "--layout and --scanner apply to --capture FILE only"),
        (("--capture", "missing.capture"), "--capture: cannot read missing.capture (No such file or directory)"),
        (("--capture", "bad.capture"), "--capture: bad.capture: line 3: expected TYPE CODE VALUE"),
        (("--capture", "bad-layout.capture", "--layout", "dvorak"),
         "--capture: bad-layout.capture: unknown keyboard layout 'dvorak'"),
    ],
)
def test_decode_capture_mistakes_exit_2_saying_what(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    (tmp_path / "bad.capture").write_text("# gatewayd capture v1\n# kind: evdev\n1 28\n")
    (tmp_path / "bad-layout.capture").write_text("# gatewayd capture v1\n# kind: evdev\n1 28 1\n")
    result = run("decode", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
