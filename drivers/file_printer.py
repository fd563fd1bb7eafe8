"""A printer reached through a file: a device node such as ``/dev/usb/lp0``, or a plain file.

A plain file is appended to (handy for tests and for printing to a spool directory); a
missing plain file is created, a missing device node is not. On a character device that
can be opened for reading (``/dev/usb/lp*`` reads back on some printers; a serial port or
pty always does) ``query`` writes the request and reads the answer; otherwise it answers
``None``: this transport cannot know the printer's state.
"""

from __future__ import annotations

import asyncio
import errno
import os
import stat

from gatewayd_drivers.base import DeviceUnavailable
from gatewayd_drivers.transport_base import TransportLifecycle, read_answer

__all__ = ["FilePrinter"]

_NOT_THERE = {errno.ENOENT, errno.ENODEV, errno.ENXIO, errno.EIO}


class FilePrinter(TransportLifecycle):
    """``async with FilePrinter(id=..., path="/dev/usb/lp0") as t: await t.send(data)``.

    The file is opened on first use and again after a failure (an unplugged USB printer
    makes its node vanish). Writes to a device use non-blocking I/O, so a printer that
    stops taking data raises :class:`DeviceUnavailable` after ``timeout`` seconds rather
    than hanging a thread.
    """

    def __init__(self, *, id: str, path: str | os.PathLike[str], timeout: float = 10.0) -> None:
        if timeout <= 0:
            raise ValueError(f"file printer {id!r}: timeout must be > 0 s, got {timeout}")
        self.id = id
        self.path = os.fspath(path)
        self.timeout = timeout
        self._fd: int | None = None
        self._readable = False
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"FilePrinter(id={self.id!r}, path={self.path!r})"

    @property
    def _where(self) -> str:
        return f"printer {self.id} at {self.path}"

    async def _release(self) -> None:
        self.close()

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _open(self) -> int:
        if self._fd is not None:
            return self._fd
        try:
            is_device = stat.S_ISCHR(os.stat(self.path).st_mode)
        except FileNotFoundError:
            is_device = False
            if self.path.startswith("/dev/"):
                raise DeviceUnavailable(
                    f"{self._where}: no such device (is the printer plugged in and on?)"
                ) from None
        except OSError as exc:
            raise DeviceUnavailable(f"{self._where}: cannot inspect the path ({exc})") from exc
        flags = os.O_NONBLOCK | os.O_NOCTTY
        try:
            if is_device:
                try:
                    fd = os.open(self.path, flags | os.O_RDWR)
                    self._readable = True
                except PermissionError:
                    fd = os.open(self.path, flags | os.O_WRONLY)
                    self._readable = False
            else:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                self._readable = False
        except PermissionError as exc:
            raise DeviceUnavailable(
                f"{self._where}: permission denied ({exc}); the gatewayd user needs write "
                "access, which the udev rule config/99-gatewayd.rules grants for printers"
            ) from exc
        except OSError as exc:
            raise DeviceUnavailable(f"{self._where}: cannot open ({exc})") from exc
        self._fd = fd
        return fd

    async def _wait(self, fd: int, *, write: bool, wait: float) -> bool:
        """Wait until ``fd`` is writable (or readable); False when ``wait`` ran out."""
        loop = asyncio.get_running_loop()
        ready = loop.create_future()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        if write:
            loop.add_writer(fd, wake)
        else:
            loop.add_reader(fd, wake)
        try:
            async with asyncio.timeout(wait):
                await ready
        except TimeoutError:
            return False
        finally:
            if write:
                loop.remove_writer(fd)
            else:
                loop.remove_reader(fd)
        return True

    async def _write_all(self, data: bytes) -> None:
        fd = self._open()
        view = memoryview(data)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while view:
            try:
                written = os.write(fd, view)
            except BlockingIOError:
                remaining = deadline - loop.time()
                if remaining <= 0 or not await self._wait(fd, write=True, wait=remaining):
                    raise DeviceUnavailable(
                        f"{self._where}: the printer took no data for {self.timeout:g} s "
                        f"({len(data) - len(view)} of {len(data)} bytes written)"
                    ) from None
                continue
            except OSError as exc:
                gone = " (unplugged?)" if exc.errno in _NOT_THERE else ""
                raise DeviceUnavailable(f"{self._where}: write failed{gone} ({exc})") from exc
            view = view[written:]

    async def send(self, data: bytes) -> None:
        """Write every byte of ``data`` or raise :class:`DeviceUnavailable`."""
        async with self._lock:
            try:
                await self._write_all(data)
            except DeviceUnavailable:
                self.close()
                raise

    async def query(self, data: bytes, *, timeout: float) -> bytes | None:
        """The device's answer (``b""`` if silent), or ``None`` if it cannot be read back."""
        async with self._lock:
            try:
                fd = self._open()
                if not self._readable:
                    return None
                self._drain(fd)
                await self._write_all(data)
                return await read_answer(
                    lambda wait: self._read(fd, wait), data, timeout=timeout
                )
            except DeviceUnavailable:
                self.close()
                raise

    def _drain(self, fd: int) -> None:
        """Forget unread input, such as a late answer to an earlier query."""
        for _ in range(64):
            try:
                if not os.read(fd, 4096):
                    return
            except (BlockingIOError, OSError):
                return

    def _read_now(self, fd: int) -> bytes | None:
        """What can be read without waiting; ``None`` if nothing is there yet."""
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return None
        except OSError as exc:
            raise DeviceUnavailable(f"{self._where}: read failed ({exc})") from exc
        if not data:
            raise DeviceUnavailable(f"{self._where}: the device hung up while answering")
        return data

    async def _read(self, fd: int, wait: float) -> bytes:
        data = self._read_now(fd)
        if data is None and await self._wait(fd, write=False, wait=wait):
            data = self._read_now(fd)
        return data or b""
