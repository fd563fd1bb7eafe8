"""Find scanners and printers by reading ``/sys`` and ``/dev``, under an injectable root.

Everything here only lists directories, reads small sysfs attributes and resolves
symlinks, so it works without root where the files are world-readable, and a test can
build a fake ``sys/`` and ``dev/`` tree in a temporary directory and pass it as ``root``.
What could not be read is returned as a problem ("permission denied on ..."), never
raised.

Sources: ``/sys/class/input/event*/device`` (``name``, ``uniq``, ``id/vendor``,
``id/product``, ``capabilities/ev`` and ``capabilities/key``), ``/dev/input/by-id`` and
``by-path`` (udev's stable links), ``/sys/class/hidraw/hidraw*/device`` (``uevent`` with
``HID_ID``, ``HID_NAME``, ``HID_UNIQ``; ``report_descriptor``), ``/dev/serial/by-id``,
``/sys/bus/usb/devices/*`` (``bInterfaceClass`` 07 = printer) and ``/dev/usb/lp*``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from gatewayd_drivers.hid_descriptor import declares_usage_page

__all__ = [
    "HID_POS_USAGE_PAGE",
    "KNOWN_SCANNER_VENDORS",
    "PRINTER_VENDORS",
    "DeviceDiscovery",
    "DeviceReport",
    "HidrawDevice",
    "InputDevice",
    "PrinterDevice",
    "SerialPort",
    "has_usage_page",
]

# USB vendor ids of barcode scanner makers (usb.ids).
KNOWN_SCANNER_VENDORS: dict[str, str] = {
    "0c2e": "Honeywell (Metrologic)",
    "0536": "Honeywell (Hand Held Products)",
    "05e0": "Zebra (Symbol)",
    "05f9": "Datalogic",
    "1eab": "Newland",
    "065a": "Opticon",
}
PRINTER_VENDORS: dict[str, str] = {"0a5f": "Zebra"}
# HID Usage Tables: usage page 0x8C is "Bar Code Scanner" (HID Point of Sale).
HID_POS_USAGE_PAGE = 0x8C

_EV_KEY_BIT = 1
# KEY_1 (2), KEY_ENTER (28) and KEY_A (30) all sit in the lowest word of the
# capabilities/key bitmap whether the kernel's long is 32 or 64 bits wide.
_KEYBOARD_KEYS = (2, 28, 30)


@dataclass(frozen=True, slots=True)
class InputDevice:
    node: str  # /dev/input/eventN
    name: str
    vendor: str | None  # 4 lowercase hex digits
    product: str | None
    serial: str | None
    by_id: tuple[str, ...] = ()
    by_path: tuple[str, ...] = ()
    keyboard: bool = False
    readable: bool = False

    @property
    def usb(self) -> str | None:
        return f"{self.vendor}:{self.product}" if self.vendor and self.product else None

    @property
    def scanner_vendor(self) -> str | None:
        return KNOWN_SCANNER_VENDORS.get(self.vendor or "")

    @property
    def stable_path(self) -> str | None:
        """The path to put in the config: by-id survives re-plugging, by-path the port."""
        return (self.by_id or self.by_path or (None,))[0]


@dataclass(frozen=True, slots=True)
class HidrawDevice:
    node: str  # /dev/hidrawN
    name: str
    vendor: str | None
    product: str | None
    serial: str | None
    hid_pos: bool | None  # None: the report descriptor could not be read
    readable: bool = False

    @property
    def usb(self) -> str | None:
        return f"{self.vendor}:{self.product}" if self.vendor and self.product else None

    @property
    def scanner_vendor(self) -> str | None:
        return KNOWN_SCANNER_VENDORS.get(self.vendor or "")


@dataclass(frozen=True, slots=True)
class SerialPort:
    path: str  # /dev/serial/by-id/...
    node: str  # what it points at, /dev/ttyACM0


@dataclass(frozen=True, slots=True)
class PrinterDevice:
    name: str
    vendor: str | None
    product: str | None
    serial: str | None
    node: str | None  # /dev/usb/lpN when the usblp driver is bound
    writable: bool = False

    @property
    def usb(self) -> str | None:
        return f"{self.vendor}:{self.product}" if self.vendor and self.product else None

    @property
    def transport(self) -> str:
        return f"file://{self.node}" if self.node else f"usb://{self.usb}"


@dataclass(frozen=True, slots=True)
class DeviceReport:
    inputs: tuple[InputDevice, ...] = ()
    hidraw: tuple[HidrawDevice, ...] = ()
    serial_ports: tuple[SerialPort, ...] = ()
    printers: tuple[PrinterDevice, ...] = ()
    problems: tuple[str, ...] = ()


def has_usage_page(descriptor: bytes, page: int) -> bool:
    """Whether a HID report descriptor declares ``page`` (HID 1.11, 6.2.2: short items)."""
    return declares_usage_page(descriptor, page)


@dataclass(slots=True)
class _Problems:
    items: list[str] = field(default_factory=list)

    def add(self, message: str) -> None:
        if message not in self.items:
            self.items.append(message)


class DeviceDiscovery:
    """Enumerates devices below ``root`` ("/" on a real system)."""

    def __init__(self, *, root: str | os.PathLike[str] = "/") -> None:
        self.root = Path(root)

    # -- paths -------------------------------------------------------------------------

    def host(self, path: str) -> Path:
        """``path`` (as the system names it, "/dev/...") inside ``root``."""
        return self.root / path.lstrip("/")

    def exists(self, path: str) -> bool:
        return self.host(path).exists()

    # -- scans ---------------------------------------------------------------------------

    def scan(self) -> DeviceReport:
        problems = _Problems()
        return DeviceReport(
            inputs=tuple(self._inputs(problems)),
            hidraw=tuple(self._hidraw(problems)),
            serial_ports=tuple(self._serial_ports(problems)),
            printers=tuple(self._printers(problems)),
            problems=tuple(problems.items),
        )

    def input_devices(self) -> list[InputDevice]:
        return self._inputs(_Problems())

    def hidraw_devices(self) -> list[HidrawDevice]:
        return self._hidraw(_Problems())

    def find_input(
        self, *, path: str | None = None, name: str | None = None, usb: str | None = None
    ) -> str | None:
        """The event node to open for a configured scanner, or ``None`` while it is absent.

        ``path`` (a by-id / by-path link or an event node) is returned as given when it
        exists, so the stable name is what gets opened. ``name`` and ``usb`` pick among
        the keyboard-capable event nodes; a scanner that exposes several (keyboard,
        consumer keys) matches on its keyboard node.
        """
        if path is not None:
            return path if self.exists(path) else None
        wanted_usb = usb.lower() if usb else None
        for device in self._inputs(_Problems()):
            if name is not None and device.name != name:
                continue
            if wanted_usb is not None and device.usb != wanted_usb:
                continue
            if device.keyboard:
                return device.stable_path or device.node
        return None

    def input_device(self, path: str) -> InputDevice | None:
        """The input device behind ``path`` (an event node or a by-id / by-path link)."""
        target = os.path.basename(os.path.realpath(self.host(path)))
        return next((d for d in self._inputs(_Problems()) if os.path.basename(d.node) == target), None)

    def find_hidraw(self, *, usb: str, serial_number: str | None = None) -> str | None:
        """The hidraw node of a HID-POS scanner by ``VID:PID`` (and serial), or ``None``.

        Prefers the interface whose report descriptor declares the bar code scanner usage
        page, since composite scanners also expose keyboard or vendor interfaces.
        """
        wanted = usb.lower()
        matches = [
            d for d in self._hidraw(_Problems())
            if d.usb == wanted and (serial_number is None or d.serial == serial_number)
        ]
        matches.sort(key=lambda d: (d.hid_pos is not True, d.node))
        return matches[0].node if matches else None

    def hidraw_descriptor(self, node: str) -> bytes | None:
        """The report descriptor of ``/dev/hidrawN`` from sysfs (world-readable), or ``None``."""
        entry = os.path.basename(node)
        return self._read_bytes(self.host(f"/sys/class/hidraw/{entry}/device/report_descriptor"), _Problems())

    def hidraw_name(self, node: str) -> str | None:
        """The HID device name of ``/dev/hidrawN`` (``HID_NAME``), or ``None``."""
        entry = os.path.basename(node)
        uevent = _uevent(self._read(self.host(f"/sys/class/hidraw/{entry}/device/uevent"), _Problems()) or "")
        return uevent.get("HID_NAME") or None

    def find_usb(self, *, usb: str, serial_number: str | None = None) -> str | None:
        """``usb://VID:PID`` when such a USB device is attached (for pyusb), else ``None``."""
        problems = _Problems()
        vendor, _, product = usb.lower().partition(":")
        for entry in self._listdir("/sys/bus/usb/devices", problems):
            dev = self.host(f"/sys/bus/usb/devices/{entry}")
            if ":" in entry or self._read(dev / "idVendor", problems) != vendor:
                continue
            if self._read(dev / "idProduct", problems) != product:
                continue
            if serial_number is None or self._read(dev / "serial", problems) == serial_number:
                return f"usb://{vendor}:{product}" + (f"/{serial_number}" if serial_number else "")
        return None

    # -- internals -----------------------------------------------------------------------

    def _read(self, path: Path, problems: _Problems) -> str | None:
        data = self._read_bytes(path, problems)
        return None if data is None else data.decode("utf-8", errors="replace").strip()

    def _read_bytes(self, path: Path, problems: _Problems) -> bytes | None:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except PermissionError:
            problems.add(f"permission denied on {self._system(path)}")
        except OSError as exc:
            problems.add(f"cannot read {self._system(path)}: {exc.strerror}")
        return None

    def _system(self, path: Path) -> str:
        """``path`` as the system names it (without the injected root)."""
        try:
            return "/" + str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def _listdir(self, path: str, problems: _Problems) -> list[str]:
        try:
            return sorted(os.listdir(self.host(path)))
        except FileNotFoundError:
            return []
        except PermissionError:
            problems.add(f"permission denied on {path}")
            return []

    def _links(self, directory: str, problems: _Problems) -> dict[str, list[str]]:
        """Target node name -> the stable links in ``directory`` pointing at it."""
        links: dict[str, list[str]] = {}
        for entry in self._listdir(directory, problems):
            try:
                target = os.readlink(self.host(f"{directory}/{entry}"))
            except OSError:
                continue
            links.setdefault(os.path.basename(target), []).append(f"{directory}/{entry}")
        return links

    def _inputs(self, problems: _Problems) -> list[InputDevice]:
        by_id = self._links("/dev/input/by-id", problems)
        by_path = self._links("/dev/input/by-path", problems)
        devices = []
        for entry in self._listdir("/sys/class/input", problems):
            if not entry.startswith("event"):
                continue
            sysdir = self.host(f"/sys/class/input/{entry}/device")
            ev = self._read(sysdir / "capabilities/ev", problems) or "0"
            keys = self._read(sysdir / "capabilities/key", problems) or "0"
            keyboard = _has_bit(ev, _EV_KEY_BIT) and all(_has_bit(keys, b) for b in _KEYBOARD_KEYS)
            node = f"/dev/input/{entry}"
            devices.append(
                InputDevice(
                    node=node,
                    name=self._read(sysdir / "name", problems) or "",
                    vendor=_hex4(self._read(sysdir / "id/vendor", problems)),
                    product=_hex4(self._read(sysdir / "id/product", problems)),
                    serial=self._read(sysdir / "uniq", problems) or None,
                    by_id=tuple(sorted(by_id.get(entry, ()))),
                    by_path=tuple(sorted(by_path.get(entry, ()))),
                    keyboard=keyboard,
                    readable=os.access(self.host(node), os.R_OK),
                )
            )
        return devices

    def _hidraw(self, problems: _Problems) -> list[HidrawDevice]:
        devices = []
        for entry in self._listdir("/sys/class/hidraw", problems):
            sysdir = self.host(f"/sys/class/hidraw/{entry}/device")
            uevent = _uevent(self._read(sysdir / "uevent", problems) or "")
            vendor = product = None
            parts = uevent.get("HID_ID", "").split(":")
            if len(parts) == 3:  # bus:vendor:product, e.g. 0003:00000C2E:00000B6A
                vendor, product = _hex4(parts[1]), _hex4(parts[2])
            descriptor = self._read_bytes(sysdir / "report_descriptor", problems)
            node = f"/dev/{entry}"
            devices.append(
                HidrawDevice(
                    node=node,
                    name=uevent.get("HID_NAME", ""),
                    vendor=vendor,
                    product=product,
                    serial=uevent.get("HID_UNIQ") or None,
                    hid_pos=None if descriptor is None
                    else has_usage_page(descriptor, HID_POS_USAGE_PAGE),
                    readable=os.access(self.host(node), os.R_OK),
                )
            )
        return devices

    def _serial_ports(self, problems: _Problems) -> list[SerialPort]:
        ports = []
        for entry in self._listdir("/dev/serial/by-id", problems):
            link = f"/dev/serial/by-id/{entry}"
            try:
                target = os.readlink(self.host(link))
            except OSError:
                continue
            ports.append(SerialPort(path=link, node=f"/dev/{os.path.basename(target)}"))
        return ports

    def _printers(self, problems: _Problems) -> list[PrinterDevice]:
        printers = []
        seen_nodes: set[str] = set()
        for entry in self._listdir("/sys/bus/usb/devices", problems):
            if ":" not in entry:
                continue  # a device, not an interface
            iface = self.host(f"/sys/bus/usb/devices/{entry}")
            if self._read(iface / "bInterfaceClass", problems) != "07":
                continue
            dev = self.host(f"/sys/bus/usb/devices/{entry.split(':')[0]}")
            lp = [n for n in self._listdir(f"/sys/bus/usb/devices/{entry}/usbmisc", problems)
                  if n.startswith("lp")]
            node = f"/dev/usb/{lp[0]}" if lp else None
            if node:
                seen_nodes.add(node)
            name = " ".join(
                part for part in (self._read(dev / "manufacturer", problems),
                                  self._read(dev / "product", problems)) if part
            )
            printers.append(
                PrinterDevice(
                    name=name or "USB printer",
                    vendor=_hex4(self._read(dev / "idVendor", problems)),
                    product=_hex4(self._read(dev / "idProduct", problems)),
                    serial=self._read(dev / "serial", problems) or None,
                    node=node,
                    writable=node is not None and os.access(self.host(node), os.W_OK),
                )
            )
        for entry in self._listdir("/dev/usb", problems):
            node = f"/dev/usb/{entry}"
            if entry.startswith("lp") and node not in seen_nodes:
                printers.append(
                    PrinterDevice(name="USB printer", vendor=None, product=None, serial=None,
                                  node=node, writable=os.access(self.host(node), os.W_OK))
                )
        return printers


def _has_bit(bitmap: str, bit: int) -> bool:
    """Test a low bit (< 32) of a sysfs capability bitmap ("120013", "3 0 0 fffffffe")."""
    words = bitmap.split()
    try:
        return bool(int(words[-1], 16) >> bit & 1) if words else False
    except ValueError:
        return False


def _hex4(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return f"{int(value, 16):04x}"
    except ValueError:
        return None


def _uevent(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
