from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gatewayd.local_broker import LocalBroker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A real broker (mosquitto, else amqtt) on a free port of 127.0.0.1."""
    with LocalBroker(workdir=tmp_path / "broker") as b:
        yield b
