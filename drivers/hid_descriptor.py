"""HID report descriptors: a compact parser, and the HID-POS decoded-data layout they describe.

A HID-POS scanner (usage page 0x8C, HID Point of Sale Usage Tables 1.02, chapter 3) sends
each read as input reports whose layout its *report descriptor* declares. Vendors lay out the
same usages differently: the Zebra 05e0:2100 sends a 16-bit Byte Count, so its symbology and
data sit one byte later than on the Honeywell 0c2e:1007, which adds a second vendor byte
instead (README, "Scanner settings"). So the driver reads the positions from the device's
own descriptor (hidraw ``HIDIOCGRDESC``, ``/sys/class/hidraw/hidrawN/device/report_descriptor``,
or a USB GET_DESCRIPTOR request), and :func:`layout_for_vendor` is the fallback when no
descriptor can be had.

:func:`parse_report_descriptor` implements the item grammar of the Device Class Definition
for HID 1.11, section 6.2.2 (short and long items, global state with Push/Pop, local usages
including extended 32-bit usages and usage ranges) and returns, per report, each main item
with its usages, bit offset, bit size and count. It ignores what a layout does not need:
logical/physical ranges, units, designators, strings and delimiters.

Offsets count from the first byte of the report *as hidraw returns it*: when a descriptor
uses report IDs the ID byte is byte 0 and the first field starts at bit 8.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

__all__ = [
    "BYTE_COUNT",
    "DECODED_DATA",
    "DECODED_DATA_CONTINUED",
    "GENERIC",
    "LAYOUTS",
    "SYMBOLOGY_IDENTIFIERS",
    "VENDOR_LAYOUTS",
    "DescriptorError",
    "HidPosLayout",
    "MainItem",
    "ReportDescriptor",
    "declares_usage_page",
    "hidpos_layout",
    "layout_for_vendor",
    "parse_report_descriptor",
]

# Usages (page << 16 | id). POS Usage Tables 1.02 section 3; Byte Count is Generic Desktop.
BYTE_COUNT = 0x0001_003B
SYMBOLOGY_IDENTIFIERS = (0x008C_00FB, 0x008C_00FC, 0x008C_00FD)
DECODED_DATA = 0x008C_00FE
DECODED_DATA_CONTINUED = 0x008C_00FF
VENDOR_PAGES = range(0xFF00, 0x1_0000)  # HID Usage Tables: 0xFF00-0xFFFF are vendor-defined

# Main item data bits, HID 1.11 section 6.2.2.5.
CONSTANT = 0x001
VARIABLE = 0x002
BUFFERED_BYTES = 0x100

_MAIN_KINDS = {0x8: "input", 0x9: "output", 0xB: "feature"}


class DescriptorError(ValueError):
    """The descriptor breaks the HID 1.11 item grammar, or lacks what a HID-POS layout needs."""


@dataclass(frozen=True, slots=True)
class MainItem:
    """One Input, Output or Feature item: ``count`` fields of ``bit_size`` bits each.

    ``usages`` holds 32-bit usages (page << 16 | id) in declaration order. For a variable
    item field *i* has usage ``usages[i]``, and fields beyond the list repeat the last usage
    (HID 1.11 section 6.2.2.8); for an array item they are the usages its values select.
    """

    kind: str
    report_id: int | None
    bit_offset: int
    bit_size: int
    count: int
    flags: int
    usages: tuple[int, ...]

    @property
    def is_constant(self) -> bool:
        return bool(self.flags & CONSTANT)

    @property
    def is_variable(self) -> bool:
        return bool(self.flags & VARIABLE)

    def field_usage(self, index: int) -> int | None:
        if not self.usages:
            return None
        return self.usages[min(index, len(self.usages) - 1)]


@dataclass(frozen=True, slots=True)
class ReportDescriptor:
    items: tuple[MainItem, ...]
    numbered: bool  # reports start with a report ID byte

    def input_report_ids(self) -> tuple[int | None, ...]:
        return tuple(dict.fromkeys(item.report_id for item in self.items if item.kind == "input"))

    def items_of(self, kind: str, report_id: int | None) -> tuple[MainItem, ...]:
        return tuple(item for item in self.items if item.kind == kind and item.report_id == report_id)

    def report_size(self, kind: str, report_id: int | None) -> int:
        """Size in bytes, report ID byte included, rounded up to whole bytes."""
        bits = 8 if self.numbered else 0
        bits += sum(item.bit_size * item.count for item in self.items_of(kind, report_id))
        return (bits + 7) // 8


@dataclass(slots=True)
class _Globals:
    usage_page: int = 0
    report_size: int = 0
    report_count: int = 0
    report_id: int | None = None


@dataclass(slots=True)
class _Locals:
    usages: list[int] = field(default_factory=list)
    usage_minimum: int | None = None


def _items(data: bytes, *, strict: bool = True) -> list[tuple[int, int, int, int, int]]:
    """Split into (offset, type, tag, size in bytes, unsigned value); long items are skipped.
    A descriptor cut short raises, or with ``strict=False`` ends the list there."""
    items: list[tuple[int, int, int, int, int]] = []
    i = 0
    while i < len(data):
        prefix = data[i]
        if prefix == 0xFE:  # long item (6.2.2.3): bDataSize, bLongItemTag, data; none defined
            if i + 2 >= len(data):
                if not strict:
                    break
                raise DescriptorError(f"byte {i}: long item header cut short")
            i += 3 + data[i + 1]
            continue
        size = (0, 1, 2, 4)[prefix & 0x03]  # 6.2.2.2: bSize 3 means 4 bytes
        if i + 1 + size > len(data):
            if not strict:
                break
            raise DescriptorError(f"byte {i}: item {prefix:#04x} needs {size} data bytes, {len(data) - i - 1} left")
        value = int.from_bytes(data[i + 1 : i + 1 + size], "little")
        items.append((i, (prefix >> 2) & 0x03, prefix >> 4, size, value))
        i += 1 + size
    return items


def declares_usage_page(data: bytes, page: int) -> bool:
    """Whether a Usage Page item of ``data`` names ``page`` (``gatewayd devices`` tells a
    HID-POS interface, page 0x8C, from a keyboard by it); never raises."""
    return any(type_ == 1 and tag == 0x0 and value & 0xFFFF == page for _, type_, tag, _, value in
               _items(data, strict=False))  # fmt: skip


def parse_report_descriptor(data: bytes) -> ReportDescriptor:
    """Every Input, Output and Feature item of ``data`` with its position (HID 1.11 6.2.2).

    Raises:
        DescriptorError: naming the byte offset of what breaks the grammar.
    """
    glob, stack, local = _Globals(), list[_Globals](), _Locals()
    offsets: dict[tuple[str, int | None], int] = {}
    result: list[MainItem] = []
    depth = 0
    items = _items(data)
    numbered = any(type_ == 1 and tag == 0x8 for _, type_, tag, _, _ in items)
    for at, type_, tag, size, value in items:
        if type_ == 0:  # main
            if tag in _MAIN_KINDS:
                if numbered and glob.report_id is None:
                    raise DescriptorError(f"byte {at}: main item before the first Report ID (HID 1.11 6.2.2.7)")
                kind = _MAIN_KINDS[tag]
                key = (kind, glob.report_id)
                start = offsets.setdefault(key, 8 if numbered else 0)
                item = MainItem(
                    kind, glob.report_id, start, glob.report_size, glob.report_count, value, tuple(local.usages)
                )
                offsets[key] = start + glob.report_size * glob.report_count
                if item.bit_size and item.count:
                    result.append(item)
            elif tag == 0xA:  # Collection: consumes the usages declared for it
                depth += 1
            elif tag == 0xC:
                depth -= 1
                if depth < 0:
                    raise DescriptorError(f"byte {at}: End Collection without Collection")
            else:
                raise DescriptorError(f"byte {at}: unknown main item tag {tag:#x}")
            local = _Locals()  # 6.2.2.8: local items apply up to the next main item
        elif type_ == 1:  # global
            if tag == 0x0:
                glob.usage_page = value
            elif tag == 0x7:
                glob.report_size = value
            elif tag == 0x8:
                if not 1 <= value <= 255:
                    raise DescriptorError(f"byte {at}: Report ID {value}: must be 1-255 (HID 1.11 6.2.2.7)")
                glob.report_id = value
            elif tag == 0x9:
                glob.report_count = value
            elif tag == 0xA:  # Push
                stack.append(_Globals(glob.usage_page, glob.report_size, glob.report_count, glob.report_id))
            elif tag == 0xB:  # Pop
                if not stack:
                    raise DescriptorError(f"byte {at}: Pop without Push")
                glob = stack.pop()
            # 0x1-0x6 (logical/physical range, unit): not needed for positions
        elif type_ == 2:  # local
            # A 4-byte usage carries its own page (extended usage, 6.2.2.8); shorter ones take
            # the current Usage Page, as Windows and the Linux hid core apply it.
            full = value if size == 4 else (glob.usage_page << 16) | value
            if tag == 0x0:
                local.usages.append(full)
            elif tag == 0x1:
                local.usage_minimum = full
            elif tag == 0x2:
                if local.usage_minimum is None:
                    raise DescriptorError(f"byte {at}: Usage Maximum without Usage Minimum")
                if full < local.usage_minimum or full - local.usage_minimum > 0xFFFF:
                    raise DescriptorError(f"byte {at}: usage range {local.usage_minimum:#x}-{full:#x} is invalid")
                local.usages.extend(range(local.usage_minimum, full + 1))
                local.usage_minimum = None
        else:
            raise DescriptorError(f"byte {at}: reserved item type 3")
    if depth != 0:
        raise DescriptorError(f"{depth} Collection(s) not closed")
    return ReportDescriptor(tuple(result), numbered)


@dataclass(frozen=True, slots=True)
class HidPosLayout:
    """Where the parts of a HID-POS decoded-data input report are: byte offsets into the
    report as read (report ID byte included when ``report_id`` is not None)."""

    report_id: int | None
    report_size: int
    count_offset: int | None  # Byte Count (0x01:0x3B), little-endian (HID 1.11 5.8)
    count_size: int
    symbology_offsets: tuple[int, ...]  # Symbology Identifier 1-3 (0x8C:0xFB-0xFD)
    data_offset: int  # Decoded Data (0x8C:0xFE)
    data_length: int
    continuation_offset: int  # Decoded Data Continued (0x8C:0xFF)
    continuation_mask: int
    vendor_offsets: tuple[int, ...]  # vendor-page bytes, e.g. Honeywell's code ID
    name: str = field(default="descriptor", compare=False)  # a LAYOUTS key, or "descriptor"
    source: str = field(default="the device's report descriptor", compare=False)  # the evidence

    def describe(self) -> str:
        """For logs and ``gatewayd capture``: ``zebra (recorded: Zebra 05e0:2100)``."""
        return f"{self.name} ({self.source})"


def hidpos_layout(descriptor: bytes | ReportDescriptor, report_id: int | None = None) -> HidPosLayout:
    """The decoded-data layout of the input report that carries Decoded Data (or ``report_id``).

    Raises:
        DescriptorError: when the descriptor is malformed or the report cannot be represented
            (no Decoded Data or Decoded Data Continued field, fields not on byte boundaries,
            a split data area), saying which.
    """
    parsed = descriptor if isinstance(descriptor, ReportDescriptor) else parse_report_descriptor(descriptor)
    candidates = [
        rid
        for rid in parsed.input_report_ids()
        if any(DECODED_DATA in item.usages for item in parsed.items_of("input", rid))
    ]
    if report_id is not None:
        candidates = [rid for rid in candidates if rid == report_id]
    if not candidates:
        raise DescriptorError("no input report carries Decoded Data (0x8C:0xFE)")
    rid = candidates[0]
    fields: list[tuple[int, int, int]] = []  # (usage, bit offset, bit size) of each variable field
    for item in parsed.items_of("input", rid):
        if item.is_variable and not item.is_constant:
            if item.flags & BUFFERED_BYTES:  # one field of count bytes (6.2.2.5)
                fields.append((item.usages[0] if item.usages else 0, item.bit_offset, item.bit_size * item.count))
            else:
                fields.extend(
                    (item.field_usage(i) or 0, item.bit_offset + i * item.bit_size, item.bit_size)
                    for i in range(item.count)
                )

    def byte_aligned(usage: int) -> list[tuple[int, int]]:
        found = [(offset, size) for u, offset, size in fields if u == usage]
        for offset, size in found:
            if offset % 8 or size % 8:
                raise DescriptorError(f"usage {usage:#010x} at bit {offset} ({size} bits) is not byte-aligned")
        return [(offset // 8, size // 8) for offset, size in found]

    data = byte_aligned(DECODED_DATA)
    start, length = data[0]
    for offset, size in data[1:]:  # 56 one-byte fields, or one buffered field
        if offset != start + length:
            raise DescriptorError(f"Decoded Data is split: byte {offset} does not follow byte {start + length - 1}")
        length += size
    count = byte_aligned(BYTE_COUNT)
    if count and count[0][1] > 4:
        raise DescriptorError(f"Byte Count of {count[0][1]} bytes")
    flag = [(offset, size) for u, offset, size in fields if u == DECODED_DATA_CONTINUED]
    if not flag:
        raise DescriptorError("no Decoded Data Continued (0x8C:0xFF) field")
    flag_offset, flag_size = flag[0]
    if flag_offset // 8 != (flag_offset + flag_size - 1) // 8:
        raise DescriptorError(f"Decoded Data Continued at bit {flag_offset} spans two bytes")
    return HidPosLayout(
        report_id=rid,
        report_size=parsed.report_size("input", rid),
        count_offset=count[0][0] if count else None,
        count_size=count[0][1] if count else 0,
        symbology_offsets=tuple(offset for usage in SYMBOLOGY_IDENTIFIERS for offset, _ in byte_aligned(usage)),
        data_offset=start,
        data_length=length,
        continuation_offset=flag_offset // 8,
        continuation_mask=((1 << flag_size) - 1) << (flag_offset % 8),
        vendor_offsets=tuple(offset // 8 for u, offset, size in fields if u >> 16 in VENDOR_PAGES and size == 8),
    )


def _layout(
    name: str, source: str, *, count: tuple[int, int], aim: int | None, data: tuple[int, int], vendor: tuple[int, ...]
) -> HidPosLayout:
    """A 64-byte report with ID 2 and the flag in bit 0 of byte 63, as every vendor's is."""
    symbology = tuple(range(aim, aim + 3)) if aim is not None else ()
    return HidPosLayout(2, 64, count[0], count[1], symbology, data[0], data[1], 63, 0x01, vendor, name, source)


# The layout the POS Usage Tables suggest and Access-IS documents (LSR116/118, ATR110 manuals):
# ID, count, 3 AIM bytes, 56 data bytes, 1 vendor symbology byte, 1 reserved byte, flag byte.
GENERIC = _layout(
    "generic", "documented: HID POS Usage Tables, Access-IS manuals",
    count=(1, 1), aim=2, data=(5, 56), vendor=(61,),
)  # fmt: skip
ZEBRA = _layout(  # a 16-bit count in bytes 1-2 moves everything after it by one byte
    "zebra", "recorded: Zebra 05e0:2100", count=(1, 2), aim=3, data=(6, 56), vendor=(62,)
)
HONEYWELL = _layout(  # the generic positions; byte 61 is the Honeywell code ID, 62 a second vendor byte
    "honeywell", "recorded: Honeywell 0c2e:1007", count=(1, 1), aim=2, data=(5, 56), vendor=(61, 62)
)
NEWLAND = _layout(  # no AIM bytes: data 2-57, reserved 58-61, Newland's own symbology ID in 62
    "newland", "documented, not recorded: Newland FM420 integration guide",
    count=(1, 1), aim=None, data=(2, 56), vendor=(62,),
)  # fmt: skip
DATALOGIC = replace(GENERIC, name="datalogic", source="hypothesis: no Datalogic recording or document; generic")

LAYOUTS: dict[str, HidPosLayout] = {layout.name: layout for layout in (GENERIC, ZEBRA, HONEYWELL, DATALOGIC, NEWLAND)}
"""Every known layout by name (``gatewayd decode --layout``)."""

VENDOR_LAYOUTS: dict[int, HidPosLayout] = {0x05E0: ZEBRA, 0x0C2E: HONEYWELL, 0x05F9: DATALOGIC, 0x1EAB: NEWLAND}
"""The layout per USB vendor ID, for a device whose report descriptor cannot be read."""


def layout_for_vendor(vid: int | None) -> HidPosLayout:
    """The known layout of ``vid``'s scanners; the documented generic layout for any other."""
    return VENDOR_LAYOUTS.get(vid, GENERIC) if vid is not None else GENERIC
