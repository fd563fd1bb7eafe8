"""HID-POS report descriptors written for the tests: reconstructions, not device dumps.

No public source holds the report-descriptor bytes of a real HID-POS scanner. These three
are written from the HID Point of Sale Usage Tables 1.02, chapter 3 (Bar Code Scanner page
0x8C: Symbology Identifier 1-3 0xFB-0xFD, Decoded Data 0xFE, Decoded Data Continued 0xFF;
Byte Count is Generic Desktop 0x3B) and from the field positions Windows' HidP_* functions
read out of two real devices' own descriptors in a public recording (the Zebra 05e0:2100 and
Honeywell 0c2e:1007 reports that tests/test_real_captures.py replays). They reproduce those
*positions*; the real descriptors may differ in what does not move a field (collections,
logical ranges, whether the Zebra's byte 2 is the high byte of its count or padding).
"""

from __future__ import annotations

__all__ = ["GENERIC_DESCRIPTOR", "HONEYWELL_DESCRIPTOR", "NEWLAND_DESCRIPTOR", "ZEBRA_DESCRIPTOR"]


def _hex(text: str) -> bytes:
    """One item per line with a comment; only the hex pairs before ``#`` count."""
    return bytes.fromhex(" ".join(line.split("#")[0] for line in text.splitlines()))


# The documented layout (Access-IS manuals): ID 2, count, 3 AIM bytes, 56 data bytes,
# 1 vendor byte, 1 reserved byte, flag byte.
GENERIC_DESCRIPTOR = _hex("""
05 8c        # Usage Page (Bar Code Scanner)
09 02        # Usage (Bar Code Scanner)
a1 01        # Collection (Application)
09 12        #   Usage (Scanned Data Report)
a1 02        #   Collection (Logical)
85 02        #     Report ID (2)
15 00        #     Logical Minimum (0)
26 ff 00     #     Logical Maximum (255)
75 08        #     Report Size (8)
95 01        #     Report Count (1)
05 01        #     Usage Page (Generic Desktop)
09 3b        #     Usage (Byte Count)
81 02        #     Input (Data, Variable, Absolute)
95 03        #     Report Count (3)
05 8c        #     Usage Page (Bar Code Scanner)
09 fb        #     Usage (Symbology Identifier 1)
09 fc        #     Usage (Symbology Identifier 2)
09 fd        #     Usage (Symbology Identifier 3)
81 02        #     Input (Data, Variable, Absolute)
95 38        #     Report Count (56)
09 fe        #     Usage (Decoded Data)
82 02 01     #     Input (Data, Variable, Absolute, Buffered Bytes)
95 01        #     Report Count (1)
06 66 ff     #     Usage Page (Vendor 0xFF66)
09 04        #     Usage (0x04): vendor symbology identifier
81 02        #     Input (Data, Variable, Absolute)
81 03        #     Input (Constant): reserved byte
05 8c        #     Usage Page (Bar Code Scanner)
09 ff        #     Usage (Decoded Data Continued)
25 01        #     Logical Maximum (1)
75 01        #     Report Size (1)
81 02        #     Input (Data, Variable, Absolute)
75 07        #     Report Size (7)
81 03        #     Input (Constant): padding to the byte
c0           #   End Collection
c0           # End Collection
""")

# Honeywell 0c2e:1007: as generic, but byte 62 is a second vendor usage (0xFF66:0x00).
HONEYWELL_DESCRIPTOR = _hex("""
05 8c 09 02 a1 01 09 12 a1 02 85 02 15 00 26 ff 00 75 08 95 01
05 01 09 3b 81 02          # Byte Count, byte 1
95 03 05 8c 09 fb 09 fc 09 fd 81 02   # Symbology Identifier 1-3, bytes 2-4
95 38 09 fe 82 02 01       # Decoded Data, bytes 5-60
95 01 06 66 ff 09 04 81 02 # vendor 0xFF66:0x04 (Honeywell code ID), byte 61
09 00 81 02                # vendor 0xFF66:0x00, byte 62
05 8c 09 ff 25 01 75 01 81 02 75 07 81 03   # Decoded Data Continued, byte 63 bit 0
c0 c0
""")

# Zebra 05e0:2100: the Byte Count is 16 bits (bytes 1-2), so everything after it moves by
# one byte and only one vendor byte (0xFF66:0x04, byte 62) fits before the flag.
ZEBRA_DESCRIPTOR = _hex("""
05 8c 09 02 a1 01 09 12 a1 02 85 02
15 00 27 ff ff 00 00 75 10 95 01
05 01 09 3b 81 02          # Byte Count, 16 bits, bytes 1-2
26 ff 00 75 08 95 03 05 8c 09 fb 09 fc 09 fd 81 02   # Symbology Identifier 1-3, bytes 3-5
95 38 09 fe 82 02 01       # Decoded Data, bytes 6-61
95 01 06 66 ff 09 04 81 02 # vendor 0xFF66:0x04, byte 62
05 8c 09 ff 25 01 75 01 81 02 75 07 81 03   # Decoded Data Continued, byte 63 bit 0
c0 c0
""")

# Newland (FM420 integration guide): no AIM bytes; Decoded Data as 56 plain fields in bytes
# 2-57, reserved 58-61, Newland's symbology ID in byte 62; an output and a feature report
# (ID 4) declared between the input items must not move them.
NEWLAND_DESCRIPTOR = _hex("""
05 8c 09 02 a1 01 85 02 15 00 26 ff 00 75 08 95 01 05 01 09 3b 81 02
95 04 85 04 05 8c 09 16 91 02 b1 02    # output and feature report 4
85 02 95 38 09 fe 81 02 95 04 81 03    # Decoded Data, bytes 2-57; reserved 58-61
95 01 06 00 ff 09 01 81 02             # vendor 0xFF00:0x01, byte 62
05 8c 09 ff 25 01 75 01 81 02 75 07 81 03 c0
""")
