"""``gatewayd status`` against the real daemon: running, with the broker down, stopped, killed.

The daemon runs as a subprocess on a real broker with a pty scanner and a printer that does
not answer; ``gatewayd status`` runs as an engineer runs it, reading the status file the
daemon keeps in its state directory. The not-responding and pid-reuse cases use a status
file naming a live process (this one) with an old time or another start time.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from gatewayd.demo.local_broker import LocalBroker
from gatewayd.status_file import STATUS_FILE, ProcessId, write_status
from tests.mqtt_tools import DaemonProcess, Subscriber, gateway_config, start_daemon, wait_online, wait_until
from tests.pty_scanner import PtyScanner

GW = "gw-status"
P = f"gatewayd/{GW}"
GS1 = b"]C1010950600013435210ABC123\x1d17271231\r"


def status(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "JOURNAL_STREAM", "GATEWAYD_CONFIG")}
    return subprocess.run(
        [sys.executable, "-m", "gatewayd", "status", "--config", str(cfg), *args],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip


def status_json(cfg: Path) -> dict[str, Any]:
    result = status(cfg, "--json")
    return dict(json.loads(result.stdout))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(tmp_path: Path, broker: LocalBroker, scanner: PtyScanner, *, outbox: str = "") -> Path:
    cfg = gateway_config(tmp_path, [broker.url], scanner, gateway_id=GW, protocol=broker.protocol, outbox=outbox)
    # A printer nobody answers on: its state shows up as offline.
    with cfg.open("a") as f:
        f.write(
            f'\n[[printers]]\nid = "dock-03-zebra"\ndriver = "zpl"\n'
            f'transport = "tcp://127.0.0.1:{closed_port()}"\nstatus_interval_s = 0.2\ntimeout_s = 0.5\n'
        )
    return cfg


def started(
    broker: LocalBroker, scanner: PtyScanner, daemons: list[DaemonProcess], tmp_path: Path, **kw: str
) -> tuple[Path, DaemonProcess]:
    cfg = config(tmp_path, broker, scanner, **kw)
    d = start_daemon(daemons, cfg, tmp_path)
    with Subscriber(broker.port, [f"{P}/#"], protocol=broker.protocol) as sub:
        wait_online(sub, d, root=P)
        sub.wait_for(f"{P}/devices/dock-03-left/state", lambda p: p["state"] == "connected")
    return cfg, d


def test_status_of_a_running_gateway(
    broker: LocalBroker, scanner: PtyScanner, daemons: list[DaemonProcess], tmp_path: Path
) -> None:
    cfg, d = started(broker, scanner, daemons, tmp_path)
    scanner.write(GS1)

    def read_delivered() -> dict[str, Any] | None:
        s = status_json(cfg)
        st = s.get("status") or {}
        last = st.get("stations", {}).get("dock-03", {}).get("last_read")
        printer = st.get("printer_states", {}).get("dock-03-zebra", {})
        done = last and st["outbox"]["depth"] == 0 and printer.get("state") == "offline"
        return s if done else None

    s = wait_until(read_delivered, timeout=20, what="the read, delivered, and the printer's state in the status")
    assert (s["running"], s["liveness"]) == (True, "running")
    body = s["status"]
    assert d.proc is not None
    assert body["process"]["pid"] == d.proc.pid
    assert body["stations"]["dock-03"]["last_read"] | {"at": None} == {
        "at": None, "seq": 1, "scanner": "dock-03-left", "kind": "gs1",
    }  # fmt: skip
    assert body["mqtt"]["connected"] is True and body["mqtt"]["broker"] == broker.url

    result = status(cfg)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"gatewayd {GW}: running since 20")
    assert lines[0].endswith(f"pid {d.proc.pid}, version {body['version']}")
    assert lines[1] == f"broker:    connected to {broker.url}"
    assert lines[2] == "outbox:    all delivered; last seq 1"
    assert lines[3] == "stations:"
    assert lines[4].startswith("  dock-03  receiving  last read 20")
    assert lines[4].endswith(" ago): seq 1 by dock-03-left, gs1")
    assert lines[5] == "scanners:"
    assert lines[6].startswith("  dock-03-left  connected since 20") and lines[6].endswith("scanner.tty: open")
    assert lines[7] == "printers:"
    assert lines[8].startswith("  dock-03-zebra  offline since 20") and "cannot connect" in lines[8]
    assert lines[-1] == "alarms:    none"
    assert result.stderr == ""


def test_status_with_the_broker_down(
    broker: LocalBroker, scanner: PtyScanner, daemons: list[DaemonProcess], tmp_path: Path
) -> None:
    # What the engineer runs `status` for: the broker is gone and reads pile up.
    cfg, _ = started(broker, scanner, daemons, tmp_path, outbox="max_events = 1")
    broker.stop()
    wait_until(lambda: not status_json(cfg)["status"]["mqtt"]["connected"], timeout=20, what="broker down in status")
    scanner.write(GS1)
    scanner.write(b"SUP1-20261127-0002\r")  # refused: the outbox holds one event at most
    s = wait_until(lambda: (j := status_json(cfg))["status"]["alarms"] and j, timeout=20, what="the outbox_full alarm")
    assert s["status"]["outbox"]["depth"] == 1
    result = status(cfg)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "broker:    NOT CONNECTED (" in text and "reads are kept in the outbox" in text
    assert "outbox:    1 undelivered, oldest seq 1 read 20" in text
    assert "; last seq 1; FULL: new reads are refused" in text
    assert "alarms:\n  outbox_full: outbox full: 1 undelivered events" in text


def test_status_after_an_orderly_stop(
    broker: LocalBroker, scanner: PtyScanner, daemons: list[DaemonProcess], tmp_path: Path
) -> None:
    cfg, d = started(broker, scanner, daemons, tmp_path)
    assert d.terminate() == 0
    result = status(cfg)
    assert result.returncode == 3
    assert result.stdout.startswith(f"gatewayd {GW}: not running: stopped in order at 20")
    assert "last known state:" in result.stdout
    s = json.loads(status(cfg, "--json").stdout)
    assert (s["running"], s["liveness"], s["status"]["state"]) == (False, "stopped", "stopped")


def test_status_after_kill_9(
    broker: LocalBroker, scanner: PtyScanner, daemons: list[DaemonProcess], tmp_path: Path
) -> None:
    cfg, d = started(broker, scanner, daemons, tmp_path)
    pid = d.proc.pid if d.proc else 0
    d.kill9()
    result = status(cfg)
    assert result.returncode == 3
    assert result.stdout.startswith(f"gatewayd {GW}: not running: pid {pid} is gone (killed, crashed")
    assert json.loads(status(cfg, "--json").stdout)["liveness"] == "gone"


def test_status_of_a_gateway_that_never_ran(tmp_path: Path, scanner: PtyScanner) -> None:
    cfg = gateway_config(tmp_path, ["mqtt://127.0.0.1:1"], scanner, gateway_id=GW)
    result = status(cfg)
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr == (
        f"gatewayd is not running: no status file at {tmp_path / 'state' / STATUS_FILE} (the gateway writes it "
        f"while it runs; is {cfg} the config it runs with?)\n"
    )
    s = json.loads(status(cfg, "--json").stdout)
    assert s["running"] is False and "no status file" in s["error"]


def own_status_file(tmp_path: Path, scanner: PtyScanner, process: dict[str, Any]) -> Path:
    (tmp_path / "state").mkdir(parents=True)
    cfg = gateway_config(tmp_path, ["mqtt://127.0.0.1:1"], scanner, gateway_id=GW)
    body = {"schema": "gatewayd.status/1", "state": "running", "gateway": GW, "process": process, "refresh_s": 1.0}
    write_status(tmp_path / "state" / STATUS_FILE, body)
    return cfg


def test_status_of_a_gateway_that_stopped_responding(tmp_path: Path, scanner: PtyScanner) -> None:
    me = ProcessId.of(os.getpid())
    assert me is not None
    cfg = own_status_file(tmp_path, scanner, me.to_dict())
    path = tmp_path / "state" / STATUS_FILE
    assert status(cfg).returncode == 0  # fresh: running
    old = time.time() - 30
    os.utime(path, (old, old))  # 30 refreshes missed
    result = status(cfg)
    assert result.returncode == 1
    assert result.stdout.startswith(f"gatewayd {GW}: NOT RESPONDING: pid {os.getpid()} runs but has not written")


def test_a_reused_pid_is_not_the_gateway(tmp_path: Path, scanner: PtyScanner) -> None:
    # The file names this pid, but a process that started at another time: not this one.
    me = ProcessId.of(os.getpid())
    assert me is not None and me.start_ticks is not None
    cfg = own_status_file(tmp_path, scanner, me.to_dict() | {"start_ticks": me.start_ticks - 1})
    assert status(cfg).returncode == 3
    cfg = own_status_file(tmp_path / "b", scanner, me.to_dict() | {"boot_id": "another-boot"})
    assert status(cfg).returncode == 3


def test_an_unreadable_status_file_is_unknown(tmp_path: Path, scanner: PtyScanner) -> None:
    cfg = gateway_config(tmp_path, ["mqtt://127.0.0.1:1"], scanner, gateway_id=GW)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / STATUS_FILE).write_text("{not json")
    result = status(cfg)
    assert result.returncode == 4
    assert result.stderr.startswith(f"gatewayd: cannot read {tmp_path / 'state' / STATUS_FILE} (")
