from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gatewayd.demo.local_broker import LocalBroker
from tests.epcis_support import assert_valid, ref_dir, schema, validator  # noqa: F401  (shared fixtures)
from tests.mqtt_tools import DaemonProcess
from tests.pty_scanner import PtyScanner


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A real broker (mosquitto, else amqtt) on a free port of 127.0.0.1."""
    with LocalBroker(workdir=tmp_path / "broker") as b:
        yield b


@pytest.fixture
def scanner(tmp_path: Path) -> Iterator[PtyScanner]:
    """A serial scanner on a real pseudo-terminal; the gateway opens ``scanner.path``."""
    s = PtyScanner(tmp_path)
    yield s
    s.close()


@pytest.fixture
def daemons() -> Iterator[list[DaemonProcess]]:
    """Daemons a test started; each is killed at the end if still running."""
    started: list[DaemonProcess] = []
    yield started
    for d in started:
        d.stop()
