"""The HID report-descriptor parser (HID 1.11 6.2.2) and the HID-POS layouts it finds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatewayd_drivers.hid_descriptor import (
    BUFFERED_BYTES,
    GENERIC,
    LAYOUTS,
    VENDOR_LAYOUTS,
    DescriptorError,
    hidpos_layout,
    layout_for_vendor,
    parse_report_descriptor,
)
from tests.hidpos_descriptors import GENERIC_DESCRIPTOR, HONEYWELL_DESCRIPTOR, NEWLAND_DESCRIPTOR, ZEBRA_DESCRIPTOR

# HID 1.11 Appendix B.1, the boot keyboard descriptor every keyboard-wedge scanner carries.
BOOT_KEYBOARD = bytes.fromhex(
    "05 01 09 06 a1 01 05 07 19 e0 29 e7 15 00 25 01 75 01 95 08 81 02 95 01 75 08 81 01"
    " 95 05 75 01 05 08 19 01 29 05 91 02 95 01 75 03 91 01 95 06 75 08 15 00 25 65 05 07"
    " 19 00 29 65 81 00 c0"
)


def test_the_boot_keyboard_descriptor_parses_as_the_spec_describes_it() -> None:
    parsed = parse_report_descriptor(BOOT_KEYBOARD)
    assert not parsed.numbered
    assert parsed.input_report_ids() == (None,)
    modifiers, reserved, keys = parsed.items_of("input", None)
    assert (modifiers.bit_offset, modifiers.bit_size, modifiers.count) == (0, 1, 8)
    assert modifiers.usages == tuple(range(0x0007_00E0, 0x0007_00E8))
    assert reserved.is_constant and reserved.bit_offset == 8
    assert (keys.bit_offset, keys.bit_size, keys.count, keys.is_variable) == (16, 8, 6, False)
    assert keys.usages[0] == 0x0007_0000 and keys.usages[-1] == 0x0007_0065
    assert parsed.report_size("input", None) == 8
    assert parsed.report_size("output", None) == 1  # 5 LED bits and 3 padding bits


def test_the_zebra_descriptor_gives_one_item_per_main_item_with_its_offset() -> None:
    items = parse_report_descriptor(ZEBRA_DESCRIPTOR).items_of("input", 2)
    described = [(i.bit_offset, i.bit_size, i.count, i.usages) for i in items]
    assert described == [
        (8, 16, 1, (0x0001_003B,)),
        (24, 8, 3, (0x008C_00FB, 0x008C_00FC, 0x008C_00FD)),
        (48, 8, 56, (0x008C_00FE,)),
        (496, 8, 1, (0xFF66_0004,)),
        (504, 1, 1, (0x008C_00FF,)),
        (505, 7, 1, ()),
    ]
    assert items[2].flags & BUFFERED_BYTES
    # Fields past the usage list repeat the last usage (HID 1.11 6.2.2.8).
    assert items[2].field_usage(55) == 0x008C_00FE


@pytest.mark.parametrize(
    ("descriptor", "vid"), [(ZEBRA_DESCRIPTOR, 0x05E0), (HONEYWELL_DESCRIPTOR, 0x0C2E), (NEWLAND_DESCRIPTOR, 0x1EAB)]
)
def test_the_layout_read_from_a_descriptor_is_the_vendor_table_entry(descriptor: bytes, vid: int) -> None:
    layout = hidpos_layout(descriptor)
    assert layout == layout_for_vendor(vid)
    assert layout.describe() == "descriptor (the device's report descriptor)"


def test_the_generic_descriptor_gives_the_documented_default() -> None:
    layout = hidpos_layout(GENERIC_DESCRIPTOR)
    assert layout == GENERIC
    assert (layout.report_size, layout.count_offset, layout.symbology_offsets) == (64, 1, (2, 3, 4))
    assert (layout.data_offset, layout.data_length, layout.vendor_offsets) == (5, 56, (61,))
    assert (layout.continuation_offset, layout.continuation_mask) == (63, 0x01)


def test_vendor_table() -> None:
    assert layout_for_vendor(0x1234) is GENERIC
    assert layout_for_vendor(None) is GENERIC
    assert layout_for_vendor(0x05E0).describe() == "zebra (recorded: Zebra 05e0:2100)"
    assert sorted(LAYOUTS) == ["datalogic", "generic", "honeywell", "newland", "zebra"]
    newland = layout_for_vendor(0x1EAB)
    assert newland.symbology_offsets == () and (newland.data_offset, newland.vendor_offsets) == (2, (62,))
    assert layout_for_vendor(0x05F9) == GENERIC and "hypothesis" in layout_for_vendor(0x05F9).source
    assert set(VENDOR_LAYOUTS) == {0x05E0, 0x0C2E, 0x05F9, 0x1EAB}
    for layout in VENDOR_LAYOUTS.values():  # every table entry fits a 64-byte report
        assert layout.data_offset + layout.data_length <= layout.continuation_offset < layout.report_size


def test_push_pop_extended_usages_and_long_items() -> None:
    descriptor = bytes.fromhex(
        "05 8c 09 02 a1 01 85 02 75 08 95 01"
        " a4 05 01 09 3b 81 02 b4"  # Push, Generic Desktop Byte Count, Pop: page is 0x8C again
        " fe 02 10 aa bb"  # a long item (HID 1.11 6.2.2.3), skipped
        " 95 03 0b fb 00 8c 00 0b fc 00 8c 00 0b fd 00 8c 00 81 02"  # extended 32-bit usages
        " 95 38 09 fe 82 02 01 95 01 75 01 09 ff 81 02 75 07 81 03 c0"
    )
    layout = hidpos_layout(descriptor)
    assert (layout.count_offset, layout.symbology_offsets, layout.data_offset) == (1, (2, 3, 4), 5)
    assert (layout.continuation_offset, layout.report_size, layout.vendor_offsets) == (61, 62, ())


def test_a_continuation_flag_elsewhere_in_its_byte_gives_its_mask() -> None:
    descriptor = bytes.fromhex(
        "05 8c 09 02 a1 01 85 02 75 08 95 01 05 01 09 3b 81 02 05 8c 95 38 09 fe 82 02 01"
        " 75 03 95 01 81 03 75 01 09 ff 81 02 75 04 81 03 c0"
    )
    layout = hidpos_layout(descriptor)
    assert (layout.continuation_offset, layout.continuation_mask) == (58, 0x08)
    assert layout.symbology_offsets == ()


@pytest.mark.parametrize(
    ("descriptor", "message"),
    [
        ("05 8c 09", "needs 1 data bytes"),
        ("05 8c a1 01 b4", "Pop without Push"),
        ("c0", "End Collection without Collection"),
        ("05 8c a1 01", "not closed"),
        ("75 08 95 01 81 02 85 02 81 02", "before the first Report ID"),
        ("85 00", "Report ID 0"),
        ("05 8c 29 05", "Usage Maximum without Usage Minimum"),
        ("05 01 85 01 75 08 95 01 09 30 81 02", "no input report carries Decoded Data"),
        ("05 8c 85 02 75 08 95 38 09 fe 82 02 01 c0", "End Collection without"),
        ("05 8c 85 02 75 08 95 38 09 fe 82 02 01", "no Decoded Data Continued"),
        ("05 8c 85 02 75 04 95 01 81 03 75 08 95 38 09 fe 82 02 01", "not byte-aligned"),
    ],
)
def test_broken_descriptors_say_what_is_wrong(descriptor: str, message: str) -> None:
    with pytest.raises(DescriptorError, match=message):
        hidpos_layout(bytes.fromhex(descriptor))


def _item(prefix: int, value: int) -> bytes:
    size = 1 if value < 0x80 else 2  # HID 1.11 6.2.2.2: bSize 1 or 2 bytes of data
    return bytes([prefix | size]) + value.to_bytes(size, "little")


@given(
    report_id=st.one_of(st.none(), st.integers(1, 255)),
    items=st.lists(st.tuples(st.integers(1, 32), st.integers(1, 300), st.booleans()), min_size=1, max_size=12),
)
def test_offsets_are_the_running_sum_of_size_times_count(
    report_id: int | None, items: list[tuple[int, int, bool]]
) -> None:
    descriptor = bytearray(b"\x05\x8c\x09\x02\xa1\x01")
    if report_id is not None:
        descriptor += bytes([0x85, report_id])
    for size, count, constant in items:
        descriptor += _item(0x74, size) + _item(0x94, count)
        descriptor += b"" if constant else b"\x09\x10"
        descriptor += bytes([0x81, 0x03 if constant else 0x02])
    descriptor += b"\xc0"
    parsed = parse_report_descriptor(bytes(descriptor))
    offset = 0 if report_id is None else 8
    parsed_items = parsed.items_of("input", report_id)
    assert len(parsed_items) == len(items)
    for item, (size, count, constant) in zip(parsed_items, items, strict=True):
        assert (item.bit_offset, item.bit_size, item.count, item.is_constant) == (offset, size, count, constant)
        offset += size * count
    assert parsed.report_size("input", report_id) == (offset + 7) // 8


def test_decoded_data_as_56_plain_fields_and_other_report_types_do_not_shift_inputs() -> None:
    # A Newland-style report (documented in the FM420 guide: no AIM bytes, symbology ID at
    # byte 62) with Decoded Data as a plain variable item, next to output and feature reports.
    descriptor = bytes.fromhex(
        "05 8c 09 02 a1 01 85 02 15 00 26 ff 00 75 08 95 01 05 01 09 3b 81 02"
        " 95 04 85 04 05 8c 09 16 91 02 b1 02"  # output and feature report 4 in between
        " 85 02 95 38 09 fe 81 02 95 04 81 03 95 01 06 00 ff 09 01 81 02"
        " 05 8c 09 ff 25 01 75 01 81 02 75 07 81 03 c0"
    )
    assert hidpos_layout(descriptor) == layout_for_vendor(0x1EAB)
    parsed = parse_report_descriptor(descriptor)
    assert parsed.report_size("output", 4) == 5 and parsed.report_size("feature", 4) == 5
