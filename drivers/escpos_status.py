"""ESC/POS real-time status (``DLE EOT n``), parsed. Pure functions, no I/O.

Epson ESC/POS Command Reference, "DLE EOT n: Transmit real-time status": the printer
answers one byte per request at once, even while offline. Every status byte has bit 1 and
bit 4 set and bits 0 and 7 clear, which is how an answer is told from noise.

    n=1 printer status      bit 3: offline
    n=2 offline cause       bit 2: cover open; bit 3: paper fed by the FEED button;
                            bit 5: printing stopped at paper end; bit 6: an error occurred
    n=3 error cause         bit 3: auto-cutter error; bit 5: unrecoverable error;
                            bit 6: auto-recoverable error (bit 2 varies by model)
    n=4 roll paper sensor   bits 2-3: paper near end; bits 5-6: paper end
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gatewayd_drivers.zebra_status import StatusParseError

__all__ = [
    "STATUS_REQUESTS",
    "EscposStatus",
    "parse_dle_eot",
    "parse_status",
    "request",
    "state_of",
]

STATUS_REQUESTS = (1, 2, 3, 4)
_FIXED_MASK, _FIXED_BITS = 0x93, 0x12


def request(n: int) -> bytes:
    """The ``DLE EOT n`` request bytes."""
    if n not in STATUS_REQUESTS:
        raise ValueError(f"DLE EOT n must be 1, 2, 3 or 4, got {n}")
    return bytes((0x10, 0x04, n))


@dataclass(frozen=True, slots=True)
class EscposStatus:
    """What the four ``DLE EOT`` answers say; a flag is ``None`` when its byte was missing."""

    offline: bool | None = None
    cover_open: bool | None = None
    paper_end: bool | None = None
    paper_near_end: bool | None = None
    error: bool | None = None
    cutter_error: bool | None = None
    unrecoverable_error: bool | None = None


def parse_dle_eot(n: int, answer: bytes) -> int:
    """The status byte answering ``DLE EOT n``; :class:`StatusParseError` if malformed."""
    request(n)
    if len(answer) != 1:
        raise StatusParseError(
            f"Failed to parse DLE EOT {n} answer {answer!r}: expected exactly 1 byte"
        )
    value = answer[0]
    if value & _FIXED_MASK != _FIXED_BITS:
        raise StatusParseError(
            f"Failed to parse DLE EOT {n} answer 0x{value:02x}: expected bits 1 and 4 set "
            "and bits 0 and 7 clear"
        )
    return value


def parse_status(answers: Mapping[int, bytes]) -> EscposStatus:
    """Combine the answers to ``DLE EOT 1..4`` (any subset) into one :class:`EscposStatus`."""
    kw: dict[str, bool] = {}
    for n, answer in answers.items():
        value = parse_dle_eot(n, answer)
        if n == 1:
            kw["offline"] = bool(value & 0x08)
        elif n == 2:
            kw["cover_open"] = bool(value & 0x04)
            kw["paper_end"] = kw.get("paper_end", False) or bool(value & 0x20)
            kw["error"] = kw.get("error", False) or bool(value & 0x40)
        elif n == 3:
            kw["cutter_error"] = bool(value & 0x08)
            kw["unrecoverable_error"] = bool(value & 0x20)
            kw["error"] = kw.get("error", False) or bool(value & 0x68)
        else:
            kw["paper_near_end"] = bool(value & 0x0C)
            kw["paper_end"] = kw.get("paper_end", False) or bool(value & 0x60)
    return EscposStatus(**kw)


def state_of(status: EscposStatus) -> tuple[str, str]:
    """The contract's printer state and a plain-words detail."""
    if status.cover_open:
        return "head_open", "cover open (close it to resume)"
    if status.paper_end:
        return "paper_out", "paper end (load a roll to resume)"
    if status.cutter_error:
        return "error", "auto-cutter error"
    if status.unrecoverable_error:
        return "error", "unrecoverable error (power-cycle the printer)"
    if status.error:
        return "error", "printer error"
    if status.offline:
        return "offline", "printer reports offline"
    if status.paper_near_end:
        return "ready", "ready, paper near end"
    if status.offline is None and status.paper_end is None:
        return "unknown", "no status answers"
    return "ready", "ready"
