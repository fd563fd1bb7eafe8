"""Writes the HID-POS report files in this folder (run from the repository root).

One report per line, hex. The layout is the 64-byte decoded-data input report that
Honeywell, Zebra and Access-IS document for HID-POS mode: id 0x02, data length, three AIM
symbology bytes, 56 data bytes zero padded, vendor code id, reserved, flags (bit 0 =
continuation). Synthesised in that layout, not captured from a particular unit.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent
DATA_BYTES = 56


def reports(data: bytes, *, aim: bytes, vendor_id: int, size: int = 64) -> list[bytes]:
    room = size - 8
    chunks = [data[i : i + room] for i in range(0, len(data), room)] or [b""]
    out = []
    for n, chunk in enumerate(chunks):
        more = n < len(chunks) - 1
        body = chunk.ljust(room, b"\0")
        out.append(bytes([0x02, len(chunk)]) + aim + body + bytes([vendor_id, 0, int(more)]))
    return out


def write(name: str, rows: list[bytes]) -> None:
    (HERE / name).write_text("".join(r.hex() + "\n" for r in rows))


GS1 = b"010950600013435210ABC123\x1d17271231"
LONG_QR = (
    b"https://id.gs1.org/01/09506000134352/10/ABC123?17=271231&3103=000189"
    b"&lot_note=received-at-dock-03-from-supplier-SUP1-pallet-0042"
)


def main() -> None:
    # Honeywell: AIM id in bytes 2..4, Honeywell code id in byte 61 ('j' = Code 128).
    write("hidpos_honeywell_gs1_128.hex", reports(GS1, aim=b"]C1", vendor_id=ord("j")))
    # Honeywell: a long QR code split over three reports with the continuation flag.
    write("hidpos_honeywell_qr_continued.hex", reports(LONG_QR, aim=b"]Q1", vendor_id=ord("s")))
    # Zebra with AIM transmission off: zero symbology bytes, no vendor code id.
    write("hidpos_zebra_no_aim.hex", reports(b"SUP1-20261127-0001", aim=b"\0\0\0", vendor_id=0))
    # Zebra DataMatrix GS1 (AIM ]d2), two reports.
    write("hidpos_zebra_datamatrix_continued.hex",
          reports(GS1 * 3, aim=b"]d2", vendor_id=0))


if __name__ == "__main__":
    main()
