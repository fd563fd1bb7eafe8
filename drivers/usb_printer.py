"""A USB printer driven directly through libusb (pyusb), for hosts without ``usblp``.

Where the kernel's ``usblp`` driver is loaded the printer also appears as
``/dev/usb/lpN``; ``file:///dev/usb/lp0`` is then the simpler choice. This transport claims
the printer-class interface (USB class 7), writes to its bulk OUT endpoint and reads status
answers from its bulk IN endpoint. pyusb is imported on first use, so hosts without USB
printers do not need it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from gatewayd_drivers.base import DeviceUnavailable
from gatewayd_drivers.transport_base import TransportLifecycle, read_answer

__all__ = ["UsbPrinter"]

USB_CLASS_PRINTER = 7
CHUNK = 16384  # bytes per bulk transfer, so each blocking call stays short
UDEV_HINT = (
    "the udev rule config/99-gatewayd.rules grants the gatewayd user access "
    "(copy it to /etc/udev/rules.d/ and replug the printer)"
)


class UsbPrinter(TransportLifecycle):
    """``async with UsbPrinter(id=..., vid=0x0A5F, pid=0x0164) as t: await t.send(zpl)``.

    Every transfer is bounded by ``timeout``. The device is claimed on first use and again
    after a failure (an unplug).
    """

    def __init__(self, *, id: str, vid: int, pid: int, timeout: float = 10.0) -> None:
        for name, value in (("vid", vid), ("pid", pid)):
            if not 0 <= value <= 0xFFFF:
                raise ValueError(f"USB printer {id!r}: {name} {value:#x} is outside 0-0xffff")
        if timeout <= 0:
            raise ValueError(f"USB printer {id!r}: timeout must be > 0 s, got {timeout}")
        self.id = id
        self.vid = vid
        self.pid = pid
        self.timeout = timeout
        self._dev: Any = None
        self._out: Any = None
        self._in: Any = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"UsbPrinter(id={self.id!r}, vid={self.vid:#06x}, pid={self.pid:#06x})"

    @property
    def _where(self) -> str:
        return f"printer {self.id} at usb://{self.vid:04x}:{self.pid:04x}"

    async def _release(self) -> None:
        await asyncio.to_thread(self._dispose)

    def _dispose(self) -> None:
        dev, self._dev, self._out, self._in = self._dev, None, None, None
        if dev is None:
            return
        try:
            import usb.util

            usb.util.dispose_resources(dev)
        except Exception:  # noqa: S110 - releasing a device that is already gone
            pass

    def _explain(self, exc: BaseException, doing: str) -> DeviceUnavailable:
        errno = getattr(exc, "errno", None)
        if errno == 13 or "Access denied" in str(exc):
            return DeviceUnavailable(f"{self._where}: permission denied while {doing}; {UDEV_HINT}")
        if errno == 16 or "Resource busy" in str(exc):
            return DeviceUnavailable(
                f"{self._where}: busy while {doing} (the usblp driver or another program "
                "holds it; use file:///dev/usb/lp0 instead, or unbind usblp)"
            )
        if errno == 19 or "No such device" in str(exc):
            return DeviceUnavailable(f"{self._where}: unplugged while {doing}")
        return DeviceUnavailable(f"{self._where}: USB error while {doing} ({exc})")

    def _claim(self) -> None:
        """Find and claim the printer (blocking; runs in a worker thread)."""
        if self._dev is not None:
            return
        try:
            import usb.core
            import usb.util
        except ImportError:
            raise DeviceUnavailable(
                f"{self._where}: pyusb is not installed (pip install 'gatewayd[usb]')"
            ) from None
        try:
            dev = usb.core.find(idVendor=self.vid, idProduct=self.pid)
        except usb.core.NoBackendError:
            raise DeviceUnavailable(
                f"{self._where}: libusb is not installed (apt install libusb-1.0-0)"
            ) from None
        except usb.core.USBError as exc:
            raise self._explain(exc, "looking for the device") from exc
        if dev is None:
            raise DeviceUnavailable(
                f"{self._where}: no such device on the USB bus (is it plugged in and on?)"
            )
        try:
            cfg = dev.get_active_configuration()
            interfaces = list(cfg)
            intf = next(
                (i for i in interfaces if i.bInterfaceClass == USB_CLASS_PRINTER), None
            ) or (interfaces[0] if interfaces else None)
            if intf is None:
                raise DeviceUnavailable(f"{self._where}: the device has no interface")
            number = intf.bInterfaceNumber
            try:
                if dev.is_kernel_driver_active(number):
                    dev.detach_kernel_driver(number)
            except NotImplementedError:
                pass
            usb.util.claim_interface(dev, number)

            def direction(wanted: int) -> Any:
                return usb.util.find_descriptor(
                    intf,
                    custom_match=lambda e: (
                        usb.util.endpoint_direction(e.bEndpointAddress) == wanted
                        and usb.util.endpoint_type(e.bmAttributes) == usb.util.ENDPOINT_TYPE_BULK
                    ),
                )

            out_ep = direction(usb.util.ENDPOINT_OUT)
            in_ep = direction(usb.util.ENDPOINT_IN)
        except usb.core.USBError as exc:
            usb.util.dispose_resources(dev)
            raise self._explain(exc, "claiming the printer interface") from exc
        if out_ep is None:
            usb.util.dispose_resources(dev)
            raise DeviceUnavailable(
                f"{self._where}: the printer interface has no bulk OUT endpoint"
            )
        self._dev, self._out, self._in = dev, out_ep, in_ep

    def _write(self, data: bytes) -> None:
        self._claim()
        import usb.core

        ms = int(self.timeout * 1000)
        for start in range(0, len(data), CHUNK):
            chunk = data[start : start + CHUNK]
            try:
                written = self._out.write(chunk, timeout=ms)
            except usb.core.USBTimeoutError:
                self._dispose()
                raise DeviceUnavailable(
                    f"{self._where}: the printer took no data for {self.timeout:g} s "
                    f"({start} of {len(data)} bytes written)"
                ) from None
            except usb.core.USBError as exc:
                self._dispose()
                raise self._explain(exc, f"sending {len(data)} bytes") from exc
            if written != len(chunk):
                self._dispose()
                raise DeviceUnavailable(
                    f"{self._where}: short write ({start + written} of {len(data)} bytes)"
                )

    def _read(self, wait: float) -> bytes:
        import usb.core

        try:
            return bytes(self._in.read(4096, timeout=max(1, int(wait * 1000))))
        except usb.core.USBTimeoutError:
            return b""
        except usb.core.USBError as exc:
            self._dispose()
            raise self._explain(exc, "reading the answer") from exc

    async def _bounded(self, fn: Any, *args: Any) -> Any:
        # pyusb bounds each transfer itself; this outer bound only guards the claim.
        async with asyncio.timeout(self.timeout * 2 + 5):
            return await asyncio.to_thread(fn, *args)

    async def send(self, data: bytes) -> None:
        """Write every byte of ``data`` or raise :class:`DeviceUnavailable`."""
        async with self._lock:
            try:
                await self._bounded(self._write, data)
            except TimeoutError:
                raise DeviceUnavailable(f"{self._where}: USB transfer hung") from None

    async def query(self, data: bytes, *, timeout: float) -> bytes | None:
        """The printer's answer (``b""`` if silent), or ``None`` without a bulk IN endpoint."""
        async with self._lock:
            try:
                await self._bounded(self._claim)
                if self._in is None:
                    return None
                await self._bounded(self._write, data)

                async def read(wait: float) -> bytes:
                    result: bytes = await self._bounded(self._read, wait)
                    return result

                return await read_answer(read, data, timeout=timeout)
            except TimeoutError:
                raise DeviceUnavailable(f"{self._where}: USB transfer hung") from None
