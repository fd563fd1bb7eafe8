"""A serial barcode scanner played through a real pseudo-terminal pair."""

from __future__ import annotations

import os
import termios
import tty
from pathlib import Path


class PtyScanner:
    """The test writes reads to the master; the gateway opens ``path`` (a stable symlink)."""

    def __init__(self, workdir: Path, name: str = "scanner") -> None:
        self.path = workdir / f"{name}.tty"
        self.master = -1
        self.slave = -1
        self.plug()

    def plug(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        attrs = termios.tcgetattr(self.slave)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(self.slave, termios.TCSANOW, attrs)
        if self.path.is_symlink():
            self.path.unlink()
        self.path.symlink_to(os.ttyname(self.slave))

    def unplug(self) -> None:
        if self.path.is_symlink():
            self.path.unlink()
        for fd in (self.master, self.slave):
            if fd >= 0:
                os.close(fd)
        self.master = self.slave = -1

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.master, view)
            view = view[n:]

    def close(self) -> None:
        self.unplug()
