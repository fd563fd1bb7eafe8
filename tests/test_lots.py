"""Lot-id convention formatting."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatewayd.errors import PayloadError
from gatewayd.printing.lots import format_lot, validate_supplier

FMT = "{supplier}-{date:%Y%m%d}-{seq:04d}"


@pytest.mark.parametrize(
    ("fmt", "supplier", "seq", "lot"),
    [
        (FMT, "SUP1", 1, "SUP1-20261127-0001"),
        (FMT, "A", 9999, "A-20261127-9999"),
        ("{supplier}{date:%y%j}{seq:05d}", "ZZ9", 42, "ZZ92633100042"),
    ],
)
def test_format_lot(fmt: str, supplier: str, seq: int, lot: str) -> None:
    assert format_lot(fmt, supplier=supplier, date=date(2026, 11, 27), seq=seq) == lot


@pytest.mark.parametrize(
    ("fmt", "supplier", "seq", "message"),
    [
        (FMT, "sup1", 1, "supplier code: expected 1-8 upper-case letters or digits (A-Z, 0-9), "
                         "got 'sup1'"),
        (FMT, "SUPPLIER9", 1, "supplier code: expected 1-8 upper-case letters or digits "
                              "(A-Z, 0-9), got 'SUPPLIER9'"),
        (FMT, "S", 0, "lot sequence: expected a whole number from 1 to 999999, got 0"),
        ("{supplier} {seq}", "S", 1, "lot id 'S 1' from lot_format '{supplier} {seq}': expected "
                                     "1-20 characters of GS1 character set 82 (it goes into GS1 AI (10))"),
        (FMT, "SUPPLIE8", 1, "lot id 'SUPPLIE8-20261127-0001' from lot_format "
                             "'{supplier}-{date:%Y%m%d}-{seq:04d}': expected 1-20 characters of "
                             "GS1 character set 82 (it goes into GS1 AI (10))"),
        ("{nope}", "S", 1, "lot_format '{nope}': cannot format with supplier, date and seq "
                           "(KeyError('nope'))"),
        # Set 82 is gatewayd.gs1's: a trailing newline is outside it (the old "[...]+$" let it in).
        ("{supplier}\n", "S", 1, "lot id 'S\\n' from lot_format '{supplier}\\n': expected 1-20 "
                                 "characters of GS1 character set 82 (it goes into GS1 AI (10))"),
    ],
)
def test_format_lot_refuses(fmt: str, supplier: str, seq: int, message: str) -> None:
    with pytest.raises(PayloadError) as err:
        format_lot(fmt, supplier=supplier, date=date(2026, 11, 27), seq=seq)
    assert str(err.value) == message


# The default format fits GS1 AI (10) (20 characters) for supplier codes of up to 6.
@given(st.from_regex(r"[A-Z0-9]{1,6}", fullmatch=True), st.dates(), st.integers(1, 9999))
def test_default_format_is_gs1_safe_and_distinct(supplier: str, day: date, seq: int) -> None:
    lot = format_lot(FMT, supplier=supplier, date=day, seq=seq)
    assert validate_supplier(supplier) == supplier
    assert len(lot) <= 20
    assert lot.endswith(f"-{seq:04d}")
    assert lot != format_lot(FMT, supplier=supplier, date=day, seq=seq % 9999 + 1)
