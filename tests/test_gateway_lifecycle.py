"""Gateway.run closes what it opened, says offline and unregisters its commands on every exit."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gatewayd.config import parse
from gatewayd.daemon import Gateway
from gatewayd.demo.local_broker import LocalBroker
from gatewayd.errors import ConfigError
from tests.mqtt_tools import Subscriber

ROOT = Path(__file__).resolve().parent.parent


def settings(broker: LocalBroker, tmp_path: Path, **mqtt: Any) -> Any:
    return parse(
        {
            "gateway": {"id": "gw-life", "state_dir": str(tmp_path / "state")},
            "mqtt": {"brokers": [broker.url], "protocol": broker.protocol, **mqtt},
            "stations": [{"id": "dock-03", "step": "receiving"}],
        }
    )


def open_files(path: Path) -> list[str]:
    found = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(path)):
            found.append(target)
    return found


async def test_a_failure_at_start_closes_the_outbox(broker: LocalBroker, tmp_path: Path) -> None:
    # The password file is read when the MQTT link is built, after the outbox is open.
    gw = Gateway(settings(broker, tmp_path, username="u", password_file=str(tmp_path / "missing")))
    with pytest.raises(ConfigError, match="password_file"):
        await gw.run(asyncio.Event())
    assert gw.outbox is None
    assert open_files(tmp_path / "state") == []
    with sqlite3.connect(tmp_path / "state" / "outbox.sqlite3") as db:
        db.execute("BEGIN EXCLUSIVE")  # nothing else holds it


async def test_offline_is_published_when_run_is_cancelled(broker: LocalBroker, tmp_path: Path) -> None:
    gw = Gateway(settings(broker, tmp_path))
    with Subscriber(broker.port, ["gatewayd/gw-life/status"], protocol=broker.protocol) as sub:
        task = asyncio.create_task(gw.run(asyncio.Event()))
        await sub.await_for("gatewayd/gw-life/status", lambda p: p["state"] == "online")
        assert sorted(gw.requests.commands()) == ["feedback", "health", "rebirth", "replay", "station/step"]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # A clean DISCONNECT suppresses the Last Will: only the gateway itself can say offline.
        await sub.await_for("gatewayd/gw-life/status", lambda p: p["state"] == "offline")
    assert gw.requests.commands() == []
    assert gw.outbox is None
    assert open_files(tmp_path / "state") == []


def test_starting_the_daemon_spawns_no_process(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "spawned = []\n"
        "sys.addaudithook(lambda event, args: spawned.append(event) if event in "
        "('subprocess.Popen', 'os.posix_spawn', 'os.exec', 'os.spawn', 'os.system') else None)\n"
        "import gatewayd.cli.main\n"
        "from gatewayd.config import parse\n"
        "from gatewayd.daemon import Gateway\n"
        f"gw = Gateway(parse({{'gateway': {{'id': 'g', 'state_dir': {str(tmp_path)!r}}}, "
        "'mqtt': {'brokers': ['mqtt://127.0.0.1:1']}, 'stations': [{'id': 's', 'step': 'receiving'}]}))\n"
        "gw.clock.synced()\n"
        "print(spawned)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "GATEWAYD_CLOCK_SYNCED"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
