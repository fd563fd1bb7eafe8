"""Every verb ends quietly when the reader of its output goes away (``gatewayd check | head``).

Real pipes: either the read end is closed before the verb starts, so its first write fails,
or a reader takes one line and closes while the verb still has far more to write than the
pipe holds. Either way the verb must exit with 141 (128 + SIGPIPE, what a shell reports for
``git log | head``) and print no traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from gatewayd.config import OutboxSettings
from gatewayd.delivery.outbox import Outbox
from tests.mqtt_tools import write_config

CONFIG = """
[gateway]
id = "dock-pi-03"
state_dir = "state"

[[stations]]
id = "dock-03"
step = "receiving"
"""

GS1 = "]C1010950600013435210ABC123<GS>17271231"


def env(tmp_path: Path, *, unbuffered: bool = False) -> dict[str, str]:
    """This environment, without a config from this machine; stdout block-buffered (as a
    shell user has it) unless ``unbuffered`` (as under the unit's PYTHONUNBUFFERED=1)."""
    drop = ("NOTIFY_SOCKET", "JOURNAL_STREAM", "PYTHONUNBUFFERED")
    base = {k: v for k, v in os.environ.items() if k not in drop}
    return (
        base
        | {"GATEWAYD_CONFIG": str(tmp_path / "no-such-config.toml")}
        | ({"PYTHONUNBUFFERED": "1"} if unbuffered else {})
    )


def run_into_closed_pipe(
    args: Sequence[str], tmp_path: Path, *, unbuffered: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run ``gatewayd ARGS`` with stdout on a pipe whose reader is already gone."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "gatewayd", *args],
            stdout=write_end, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            text=True, timeout=60, cwd=tmp_path, env=env(tmp_path, unbuffered=unbuffered), check=False,
        )  # fmt: skip
    finally:
        os.close(write_end)


def read_one_line_then_close(args: Sequence[str], tmp_path: Path, timeout: float = 120) -> tuple[bytes, int, str]:
    """Run ``gatewayd ARGS``, read its first line, close the pipe; (line, exit status, stderr)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "gatewayd", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        cwd=tmp_path, env=env(tmp_path),
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    try:
        line = b""
        while b"\n" not in line:
            chunk = os.read(proc.stdout.fileno(), 256)  # small reads: the rest stays unread
            assert chunk, "the verb ended before writing a whole line"
            line += chunk
        proc.stdout.close()
        status = proc.wait(timeout=timeout)
        return line.split(b"\n", 1)[0], status, proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stderr.close()


def test_check_into_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "site.toml", CONFIG)
    result = run_into_closed_pipe(["check", "--config", str(cfg)], tmp_path)
    assert (result.returncode, result.stderr) == (141, "")


def test_invalid_config_still_exits_2_into_a_closed_pipe(tmp_path: Path) -> None:
    # The problems go to stderr, which is still read: exit 2 and the list, as without a pipe.
    cfg = write_config(tmp_path / "site.toml", CONFIG.replace('"receiving"', '"recieving"'))
    result = run_into_closed_pipe(["check", "--config", str(cfg)], tmp_path)
    assert result.returncode == 2
    assert "stations[0].step: expected one of" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args", [["--help"], ["check", "--help"], ["decode", GS1]], ids=["help", "check-help", "decode"]
)
def test_short_output_into_a_closed_pipe_is_quiet(tmp_path: Path, args: list[str]) -> None:
    result = run_into_closed_pipe(args, tmp_path)
    assert (result.returncode, result.stderr) == (141, "")


def test_unbuffered_output_into_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    # Unbuffered, the first write fails at once, inside the verb rather than at the end.
    cfg = write_config(tmp_path / "site.toml", CONFIG)
    for args in (["check", "--config", str(cfg)], ["decode", GS1, GS1]):
        result = run_into_closed_pipe(args, tmp_path, unbuffered=True)
        assert (result.returncode, result.stderr) == (141, ""), args


def test_decode_piped_into_head_is_quiet(tmp_path: Path) -> None:
    # About 1 MB of JSON lines: far more than a pipe holds once the reader has gone.
    line, status, stderr = read_one_line_then_close(["decode", *[GS1] * 2000], tmp_path)
    assert json.loads(line)["lot"] == "ABC123"
    assert (status, stderr) == (141, "")


def test_outbox_dump_piped_into_head_is_quiet(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "site.toml", CONFIG)
    with Outbox.open(tmp_path / "state" / "outbox.sqlite3", OutboxSettings()) as box:
        for _ in range(3000):
            box.capture(
                topic="gatewayd/dock-pi-03/scans/dock-03",
                build=lambda seq, eid: json.dumps({"seq": seq, "event_id": eid, "raw": "R" * 300}).encode(),
            )
    line, status, stderr = read_one_line_then_close(["outbox", "--config", str(cfg), "--dump", "1"], tmp_path)
    assert json.loads(line)["seq"] == 1
    assert (status, stderr) == (141, "")


def test_demo_piped_into_head_stops_in_order(tmp_path: Path) -> None:
    # The demo's WMS view writes from the MQTT thread; a closed pipe there ends the demo
    # the way Ctrl-C does (gateway offline, broker stopped), not with a dead view.
    out = tmp_path / "demo-out"
    line, status, stderr = read_one_line_then_close(
        ["demo", "--speed", "5", "--out", str(out), "--http-port", "0"], tmp_path, timeout=60
    )
    assert line.startswith(b"gatewayd demo: ")
    assert status == 141
    assert "Traceback" not in stderr and "Exception" not in stderr, stderr
    assert "stopped" in (out / "gatewayd.log").read_text()
