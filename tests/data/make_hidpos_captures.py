"""Writes the HID-POS capture fixtures in tests/data/captures (run from the repository root:
``.venv/bin/python -m tests.data.make_hidpos_captures``).

Each reproduces one vendor's report layout and quirk with data of our own: where the Byte
Count, the AIM identifier, the data, the vendor bytes and the continuation flag sit, as the
recorded Zebra 05e0:2100 and Honeywell 0c2e:1007 place them and as the Newland FM420 guide
and the Access-IS manuals document. Synthesised, not captured from a unit.
"""

from __future__ import annotations

from pathlib import Path

from gatewayd_drivers.capture import Capture, Record, format_capture
from gatewayd_drivers.hid_descriptor import LAYOUTS, HidPosLayout
from tests.hidpos_descriptors import HONEYWELL_DESCRIPTOR, NEWLAND_DESCRIPTOR, ZEBRA_DESCRIPTOR

OUT = Path(__file__).parent / "captures"

GS1_128 = b"010950600013435210ABC123\x1d17271231"
LONG_QR = (
    b"https://id.gs1.org/01/09506000134352/10/ABC123?17=271231&3103=000189"
    b"&lot_note=received-at-dock-03-from-supplier-SUP1-pallet-0042"
)
DATAMATRIX = b"0109506000134352\x1d10LOT-0042\x1d21SN-000123456789\x1d17271231" * 3


def reports(layout: HidPosLayout, data: bytes, *, aim: bytes, vendor: bytes) -> list[bytes]:
    """The reports a device with ``layout`` sends for one read of ``data``."""
    chunks = [data[i : i + layout.data_length] for i in range(0, len(data), layout.data_length)] or [b""]
    out = []
    for n, chunk in enumerate(chunks):
        report = bytearray(layout.report_size)
        report[0] = layout.report_id or 0
        assert layout.count_offset is not None
        report[layout.count_offset : layout.count_offset + layout.count_size] = len(chunk).to_bytes(
            layout.count_size, "little")
        for offset, byte in zip(layout.symbology_offsets, aim, strict=False):
            report[offset] = byte
        report[layout.data_offset : layout.data_offset + len(chunk)] = chunk
        for offset, byte in zip(layout.vendor_offsets, vendor, strict=False):
            report[offset] = byte
        if n < len(chunks) - 1:
            report[layout.continuation_offset] |= layout.continuation_mask
        out.append(bytes(report))
    return out


def timed(*reads: list[bytes], gap: float = 1.5, step: float = 0.008) -> tuple[Record, ...]:
    """Reports 8 ms apart (a full-speed HID interrupt interval), reads ``gap`` s apart."""
    records: list[Record] = []
    at = 0.0
    for read in reads:
        for report in read:
            records.append((round(at, 6), report))
            at += step
        at += gap
    return tuple(records)


def write(name: str, capture: Capture) -> None:
    (OUT / name).write_text(format_capture(capture))


def main() -> None:
    zebra, honeywell, newland = LAYOUTS["zebra"], LAYOUTS["honeywell"], LAYOUTS["newland"]
    # Zebra: 16-bit count, AIM at 3-5; a UPC-A reported as "]Xg" with vendor byte 'c', as the
    # recorded unit does; no descriptor in the capture, so the vendor table decides.
    write("hidpos_zebra_upca_xg.capture", Capture(
        "hidpos", timed(reports(zebra, b"012345678905", aim=b"]Xg", vendor=b"c")), 0x05E0, 0x2100,
        device="Zebra, our own UPC-A in the recorded unit's layout and symbology"))
    # Zebra with its descriptor: a GS1 DataMatrix with GS over three reports.
    write("hidpos_zebra_datamatrix_continued.capture", Capture(
        "hidpos", timed(reports(zebra, DATAMATRIX, aim=b"]d2", vendor=b"d")), 0x05E0, 0x2100, ZEBRA_DESCRIPTOR,
        device="Zebra layout, reconstructed descriptor"))
    # Zebra with AIM transmission off: zero symbology bytes.
    write("hidpos_zebra_no_aim.capture", Capture(
        "hidpos", timed(reports(zebra, b"SUP1-20261127-0001", aim=b"\0\0\0", vendor=b"j")), 0x05E0, 0x2100,
        ZEBRA_DESCRIPTOR, device="Zebra layout, AIM identifiers off"))
    # Honeywell: generic positions, code ID in 61 ('j' Code 128, 's' QR), a second vendor byte in 62.
    write("hidpos_honeywell_gs1_128.capture", Capture(
        "hidpos", timed(reports(honeywell, GS1_128, aim=b"]C1", vendor=b"j1")), 0x0C2E, 0x1007,
        HONEYWELL_DESCRIPTOR, device="Honeywell layout, reconstructed descriptor"))
    write("hidpos_honeywell_qr_continued.capture", Capture(
        "hidpos", timed(reports(honeywell, LONG_QR, aim=b"]Q1", vendor=b"s1"),
                        reports(honeywell, GS1_128, aim=b"]C1", vendor=b"j1")), 0x0C2E, 0x1007,
        device="Honeywell layout, no descriptor: two reads"))
    # Newland: no AIM bytes, data from byte 2, its own symbology ID in 62.
    write("hidpos_newland_code128.capture", Capture(
        "hidpos", timed(reports(newland, b"SUP1-20261127-0002", aim=b"", vendor=b"\x02")), 0x1EAB, 0x1D06,
        NEWLAND_DESCRIPTOR, device="Newland layout, reconstructed descriptor"))


if __name__ == "__main__":
    main()
