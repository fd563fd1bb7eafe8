"""Lot-id convention: supplier code + production date + sequence (``[labels] lot_format``).

Pure formatting only; the persisted per-supplier sequence lives with the print jobs.
"""

from __future__ import annotations

import re
from datetime import date as Date

from gatewayd.errors import PayloadError
from gatewayd.gs1 import is_cset82

__all__ = ["MAX_LOT_LENGTH", "MAX_SEQ", "format_lot", "validate_supplier"]

SUPPLIER_RE = re.compile(r"^[A-Z0-9]{1,8}$")
MAX_SEQ = 999_999
MAX_LOT_LENGTH = 20  # GS1 AI (10) is X..20 (GS1 General Specifications 3.2)


def validate_supplier(code: object) -> str:
    """A supplier code: 1-8 upper-case letters or digits; raise :class:`PayloadError`."""
    if not isinstance(code, str) or not SUPPLIER_RE.match(code):
        raise PayloadError(
            f"supplier code: expected 1-8 upper-case letters or digits (A-Z, 0-9), got {code!r}"
        )
    return code


def format_lot(lot_format: str, *, supplier: str, date: Date, seq: int) -> str:
    """The lot id for ``seq`` of ``supplier``'s run on ``date``.

    The result must fit GS1 AI (10): 1-20 characters of character set 82, since lot ids go
    into GS1-128 barcodes and Digital Link URIs.
    """
    validate_supplier(supplier)
    if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq <= MAX_SEQ:
        raise PayloadError(f"lot sequence: expected a whole number from 1 to {MAX_SEQ}, got {seq!r}")
    try:
        lot = lot_format.format(supplier=supplier, date=date, seq=seq)
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise PayloadError(
            f"lot_format {lot_format!r}: cannot format with supplier, date and seq ({exc!r})"
        ) from None
    if not lot or len(lot) > MAX_LOT_LENGTH or not is_cset82(lot):
        raise PayloadError(
            f"lot id {lot!r} from lot_format {lot_format!r}: expected 1-{MAX_LOT_LENGTH} "
            "characters of GS1 character set 82 (it goes into GS1 AI (10))"
        )
    return lot
