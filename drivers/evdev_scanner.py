"""USB keyboard-wedge scanners read through Linux evdev, grabbed exclusively.

The scanner is matched by a stable path (``/dev/input/by-id/...``, ``by-path``), by its
input device name, or by ``VID:PID``; the event node is opened and grabbed (``EVIOCGRAB``)
so its key presses reach only gatewayd, not a console or a desktop session. Key events go
through :class:`drivers.keymaps.KeyTranslator`; a read ends on the first key of its
``suffix`` (Enter by default) or after ``key_timeout`` seconds without a key. Keys that type
nothing outside a read (the Down Arrow some wedges send after Enter, a lone Shift) make no
read; :attr:`EvdevScanner.ignored_keys` counts them.

Unplugging the scanner (``ENODEV`` on read) reports ``disconnected``; the driver polls
for the same match with backoff and grabs it again when it returns. A grab that fails
with ``EBUSY`` (another process holds the device) reports ``error`` and is retried.

python-evdev is an optional extra (``gatewayd[evdev]``) imported only when a device is
opened; the translation itself needs no module. Tests inject an :class:`EventSource`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import importlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Protocol

from gatewayd_drivers.background_scanner import BackgroundScanner
from gatewayd_drivers.backoff import Backoff
from gatewayd_drivers.base import DeviceState, DeviceUnavailable, DriverError, RawRead, StateListener, ignore_state
from gatewayd_drivers.capture import BUSY_HINT, Capture, OpenedStream, RawStream
from gatewayd_drivers.device_discovery import DeviceDiscovery
from gatewayd_drivers.framing import StateReporter
from gatewayd_drivers.keymaps import KeyRead, KeyTranslator

__all__ = [
    "EVDEV_MISSING",
    "EvdevEventSource",
    "EvdevMissing",
    "EvdevScanner",
    "EventSource",
    "open_evdev",
]

EVDEV_MISSING = (
    "python-evdev is not installed: pip install 'gatewayd[evdev]' (needs gcc and linux "
    "headers) or apt-get install python3-evdev and create the venv with "
    "--system-site-packages"
)
PERMISSION_HINT = (
    "install config/99-gatewayd.rules (udevadm control --reload && udevadm trigger) and "
    "add the gatewayd user to group gatewayd"
)

Event = tuple[int, int, int]


class EvdevMissing(DriverError):
    """python-evdev cannot be imported."""


class EventSource(Protocol):
    """An opened input device: ``(type, code, value)`` events, exclusive grab, close."""

    def grab(self) -> None: ...

    def close(self) -> None: ...

    def events(self) -> AsyncIterator[Event]: ...


class EvdevEventSource:
    """:class:`EventSource` over python-evdev's ``InputDevice``."""

    def __init__(self, path: str) -> None:
        try:
            evdev: Any = importlib.import_module("evdev")
        except ImportError:
            raise EvdevMissing(EVDEV_MISSING) from None
        self.path = path
        self._device: Any = evdev.InputDevice(path)

    def grab(self) -> None:
        self._device.grab()

    def close(self) -> None:
        self._device.close()  # closing the descriptor releases the grab

    async def events(self) -> AsyncIterator[Event]:
        async for event in self._device.async_read_loop():
            yield (int(event.type), int(event.code), int(event.value))


def open_evdev(path: str) -> EventSource:
    return EvdevEventSource(path)


class EvdevScanner(BackgroundScanner):
    """One wedge scanner. ``async with scanner:`` then ``async for read in scanner.reads():``."""

    kind = "evdev scanner"

    def __init__(
        self,
        *,
        id: str,
        path: str | None = None,
        name: str | None = None,
        usb: str | None = None,
        layout: str = "us",
        suffix: Sequence[str] = ("enter",),
        gs_substitute: str | None = None,
        key_timeout: float = 0.1,
        on_state: StateListener = ignore_state,
        backoff: Backoff | None = None,
        discovery: DeviceDiscovery | None = None,
        opener: Callable[[str], EventSource] | None = None,
    ) -> None:
        if path is None and name is None and usb is None:
            raise ValueError(f"evdev scanner {id!r}: expected path, name or usb to match")
        if key_timeout <= 0:
            raise ValueError(f"evdev scanner {id!r}: key_timeout {key_timeout}: expected > 0")
        self.id = id
        self._match = {"path": path, "name": name, "usb": usb}
        self._translator = KeyTranslator(layout=layout, suffix=suffix, gs_substitute=gs_substitute)
        self._key_timeout = key_timeout
        self._report = StateReporter(id, on_state)
        self._backoff = backoff or Backoff()
        self._discovery = discovery or DeviceDiscovery()
        self._opener = opener or open_evdev

    @property
    def match(self) -> str:
        """How the device is matched, for messages: ``usb=0c2e:0b61``."""
        return ", ".join(f"{k}={v}" for k, v in self._match.items() if v is not None)

    @property
    def ignored_keys(self) -> int:
        """Keys that typed nothing outside a read since the scanner was made (``health``)."""
        return self._translator.ignored_keys

    # -- internals -----------------------------------------------------------------------

    def _emit(self, read: KeyRead | None, *extra_errors: str) -> None:
        if read is not None:
            assert self._queue is not None  # set by __aenter__, before _run starts
            self._queue.put(
                RawRead(data=read.data, device=self.id, errors=read.errors + extra_errors)
            )

    async def _wait(self) -> None:
        await asyncio.sleep(self._backoff.next_delay())

    async def _run(self) -> None:
        while True:
            node = self._discovery.find_input(**self._match)
            if node is None:
                self._report(DeviceState.DISCONNECTED, f"no input device matches {self.match}")
                await self._wait()
                continue
            try:
                source = self._opener(node)
            except EvdevMissing as exc:
                self._report(DeviceState.ERROR, str(exc))
                await self._wait()
                continue
            except FileNotFoundError:
                continue  # unplugged between discovery and open: look again
            except PermissionError:
                self._report(DeviceState.ERROR, f"permission denied on {node}: {PERMISSION_HINT}")
                await self._wait()
                continue
            except OSError as exc:
                self._report(DeviceState.ERROR, f"cannot open {node}: {exc.strerror or exc}")
                await self._wait()
                continue
            try:
                try:
                    source.grab()
                except OSError as exc:
                    if exc.errno == errno.EBUSY:
                        detail = (f"{node} is grabbed by another process (EBUSY): stop it "
                                  "(another gatewayd, a kiosk or a desktop session)")
                    else:
                        detail = f"cannot grab {node}: {exc.strerror or exc}"
                    self._report(DeviceState.ERROR, detail)
                    await self._wait()
                    continue
                self._translator.reset()
                self._report(DeviceState.CONNECTED, node)
                self._backoff.reset()
                reason = await self._pump(source)
            finally:
                source.close()
            self._emit(self._translator.flush(), f"device disconnected mid-read ({reason})")
            self._report(DeviceState.DISCONNECTED, f"{node}: {reason}")
            await self._wait()

    async def _pump(self, source: EventSource) -> str:
        """Translate events until the device goes away; returns why it went away."""
        events: asyncio.Queue[Event | OSError | None] = asyncio.Queue()

        async def pump() -> None:
            try:
                async for event in source.events():
                    events.put_nowait(event)
            except OSError as exc:
                events.put_nowait(exc)
            else:
                events.put_nowait(None)

        task = asyncio.create_task(pump(), name=f"gatewayd[scanner {self.id}].events")
        try:
            while True:
                timeout = self._key_timeout if self._translator.pending else None
                try:
                    item = await asyncio.wait_for(events.get(), timeout)
                except TimeoutError:
                    self._emit(self._translator.flush())
                    continue
                if item is None:
                    return "event stream ended"
                if isinstance(item, OSError):
                    if item.errno == errno.ENODEV:
                        return "device removed (ENODEV)"
                    return f"read failed: {item.strerror or item}"
                self._emit(self._translator.feed(*item))
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- recording (gatewayd capture) -----------------------------------------------------

    async def open_raw(self) -> RawStream:
        """The device's input events as they come, grabbed as the gateway grabs it, so a
        running gateway makes this fail with EBUSY and a hint to stop it."""
        node = self._discovery.find_input(**self._match)
        if node is None:
            raise DeviceUnavailable(f"no input device matches {self.match}: is the scanner plugged in?")
        try:
            source = self._opener(node)
        except EvdevMissing as exc:
            raise DeviceUnavailable(str(exc)) from None
        except PermissionError:
            raise DeviceUnavailable(f"permission denied on {node}: {PERMISSION_HINT}") from None
        except OSError as exc:
            raise DeviceUnavailable(f"cannot open {node}: {exc.strerror or exc}") from None
        try:
            source.grab()
        except OSError as exc:
            source.close()
            if exc.errno == errno.EBUSY:
                raise DeviceUnavailable(
                    f"{node} is grabbed by another process (EBUSY), most likely the running gateway: {BUSY_HINT}"
                ) from None
            raise DeviceUnavailable(f"cannot grab {node}: {exc.strerror or exc}") from None
        info = self._discovery.input_device(node)
        vid = int(info.vendor, 16) if info is not None and info.vendor else None
        pid = int(info.product, 16) if info is not None and info.product else None
        device = ", ".join(part for part in (info.name if info else None, node) if part)
        header = Capture(
            "evdev", usb_vid=vid, usb_pid=pid, layout=self._translator.layout, device=device,
            headers=(("scanner", self.id),),
        )  # fmt: skip

        async def close() -> None:
            source.close()

        return OpenedStream(header, source.events(), close)
