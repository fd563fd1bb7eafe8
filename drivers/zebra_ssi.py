"""Zebra (Symbol) Simple Serial Interface host commands: the beeper and the LEDs.

An SSI packet is ``length, opcode, message source, status, data..., checksum``: ``length``
counts every byte but the two checksum bytes, the source is ``0x04`` (the host), status
``0x00`` on a first transmission, and the checksum is the 16-bit two's complement of the
sum of the other bytes, high byte first (Zebra *Simple Serial Interface Programmer's
Guide*, 72E-40451, chapter 2). So ``BEEP`` one short high tone is ``05 E6 04 00 00 FF 11``.

The scanner must be in SSI mode with *Decode Data Packet Format* set to *send raw decode
data* (parameter 0xEE = 0) so its reads still arrive as plain text with their suffix, and
with *ACK/NAK handshaking* disabled (0x9F = 0) so no acknowledgement lands in the read
stream. The LED bits and beep codes below are from the guide's tables; they are a
hypothesis until a recording from a real scanner confirms them.
"""

from __future__ import annotations

__all__ = ["BEEP", "BEEP_CODES", "LED_BITS", "LED_OFF", "LED_ON", "SOURCE_HOST", "ssi_packet"]

BEEP = 0xE6
LED_ON = 0xE7
LED_OFF = 0xE8
SOURCE_HOST = 0x04

# Beep codes (SSI BEEP data byte).
BEEP_CODES = {
    "short_high": 0x00,  # one short high tone
    "two_short_high": 0x01,
    "long_low": 0x0F,
    "high_low_high": 0x18,  # the error pattern a reject uses
}

# LED_ON / LED_OFF data bits: bit 0 the green decode LED, bit 1 the red LED.
LED_BITS = {"green": 0x01, "red": 0x02}


def ssi_packet(opcode: int, data: bytes = b"") -> bytes:
    """One host → scanner SSI packet with its checksum."""
    if not 0 <= opcode <= 0xFF:
        raise ValueError(f"SSI opcode must be a byte, got {opcode}")
    body = bytes([4 + len(data), opcode, SOURCE_HOST, 0x00]) + data
    if len(body) > 0xFF:
        raise ValueError(f"SSI packet of {len(body)} bytes is longer than 255")
    checksum = (-sum(body)) & 0xFFFF
    return body + checksum.to_bytes(2, "big")
