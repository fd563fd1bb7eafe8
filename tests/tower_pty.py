"""A serial tower light played through a real pseudo-terminal: the test reads what the gateway wrote."""

from __future__ import annotations

import os
import select
import time
from pathlib import Path

from tests.pty_scanner import PtyScanner


class PtyTowerLight(PtyScanner):
    """The gateway opens ``path``; :meth:`read` collects the bytes it wrote to the light."""

    def __init__(self, workdir: Path, name: str = "tower") -> None:
        super().__init__(workdir, name)
        self.received = bytearray()

    def read(self) -> bytes:
        """Everything written since the last call (non-blocking)."""
        while self.master >= 0 and select.select([self.master], [], [], 0)[0]:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                break
            if not chunk:
                break
            self.received += chunk
        return bytes(self.received)

    def wait_for(self, wanted: bytes, *, since: int = 0, timeout: float = 10.0) -> bytes:
        """Block until ``wanted`` appears in what was written after offset ``since``."""
        deadline = time.monotonic() + timeout
        while wanted not in self.read()[since:]:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"tower light: {wanted.hex()} not written within {timeout:g} s; got {self.received[since:].hex()}"
                )
            time.sleep(0.005)
        return bytes(self.received[since:])

    async def await_for(self, wanted: bytes, *, since: int = 0, timeout: float = 10.0) -> bytes:
        """:meth:`wait_for` for tests whose gateway runs in this event loop."""
        import asyncio

        deadline = time.monotonic() + timeout
        while wanted not in self.read()[since:]:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"tower light: {wanted.hex()} not written within {timeout:g} s; got {self.received[since:].hex()}"
                )
            await asyncio.sleep(0.005)
        return bytes(self.received[since:])
