"""A printer behind a raw CUPS queue, printed to with ``lp -d QUEUE -o raw``.

The ``zebra`` package on PyPI only pipes data into ``lpr -P QUEUE``; running ``lp``
directly (no shell, data on stdin) is the same thing without the dependency. CUPS cannot
relay a printer's status answer, so ``query`` answers ``None``.
"""

from __future__ import annotations

import asyncio
import re

from gatewayd_drivers.base import DeviceUnavailable
from gatewayd_drivers.transport_base import TransportLifecycle

__all__ = ["QUEUE_NAME_RE", "CupsPrinter"]

# CUPS queue names: printable characters except space, tab, '/', '\\', quote and '#'.
QUEUE_NAME_RE = re.compile(r"^[^\s/\\'\"#]{1,127}$")


class CupsPrinter(TransportLifecycle):
    """``async with CupsPrinter(id=..., queue="zebra_raw") as t: await t.send(zpl)``.

    Each :meth:`send` is one CUPS job; it succeeds when ``lp`` accepted the data.
    """

    def __init__(self, *, id: str, queue: str, timeout: float = 10.0, lp: str = "lp") -> None:
        if not QUEUE_NAME_RE.match(queue) or queue.startswith("-"):
            raise ValueError(
                f"CUPS printer {id!r}: {queue!r} is not a CUPS queue name "
                "(printable, no spaces, '/', '\\\\', quotes or '#', not starting with '-')"
            )
        if timeout <= 0:
            raise ValueError(f"CUPS printer {id!r}: timeout must be > 0 s, got {timeout}")
        self.id = id
        self.queue = queue
        self.timeout = timeout
        self.lp = lp

    def __repr__(self) -> str:
        return f"CupsPrinter(id={self.id!r}, queue={self.queue!r})"

    async def send(self, data: bytes) -> None:
        """Submit ``data`` as one raw job, or raise :class:`DeviceUnavailable`."""
        where = f"printer {self.id} on CUPS queue {self.queue}"
        try:
            proc = await asyncio.create_subprocess_exec(
                self.lp, "-d", self.queue, "-o", "raw", "-s",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError:
            raise DeviceUnavailable(
                f"{where}: the CUPS client command {self.lp!r} is not installed "
                "(install cups-client)"
            ) from None
        except OSError as exc:
            raise DeviceUnavailable(f"{where}: cannot run {self.lp!r} ({exc})") from exc
        try:
            async with asyncio.timeout(self.timeout):
                _, err = await proc.communicate(data)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise DeviceUnavailable(
                f"{where}: {self.lp!r} did not finish within {self.timeout:g} s"
            ) from None
        if proc.returncode != 0:
            message = err.decode("utf-8", "replace").strip()[:300] or "no message"
            raise DeviceUnavailable(
                f"{where}: {self.lp!r} refused the job (exit {proc.returncode}: {message})"
            )

    async def query(self, data: bytes, *, timeout: float) -> bytes | None:
        """CUPS does not relay status answers: always ``None``."""
        return None
