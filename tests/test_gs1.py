"""gatewayd.gs1: character set 82, predefined lengths from biip's AI table, the FNC1 chunker."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatewayd.gs1 import CSET82, CSET82_CHARACTERS, CSET82_CLASS, GS, fnc1_chunks, is_cset82, predefined_length

GTIN = "09506000134352"


def test_cset82_is_figure_7_11_1() -> None:
    # GS1 General Specifications figure 7.11-1, written out here independently.
    figure = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
    assert figure == CSET82_CHARACTERS
    assert frozenset(figure) == CSET82 and len(CSET82) == 82


@given(st.text(max_size=30))
def test_is_cset82_and_the_regex_class_agree(value: str) -> None:
    expected = all(char in CSET82 for char in value)
    assert is_cset82(value) is expected
    assert (re.fullmatch(f"{CSET82_CLASS}*", value) is not None) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("ABC-123", True), ("", True), ("A B", False), ("L1\n", False), ("#1", False), ("Ærø", False), ("$", False)],
)
def test_is_cset82(value: str, expected: bool) -> None:
    assert is_cset82(value) is expected


@pytest.mark.parametrize(
    ("code", "length"),
    [
        ("00", 18), ("01", 14), ("02", 14), ("11", 6), ("17", 6), ("20", 2), ("3103", 6), ("410", 13),
        ("10", None), ("21", None), ("37", None), ("8003", None), ("7003", None),  # separator required
        ("04", None), ("99", None), ("", None), ("0", None), ("011", None),  # not an AI
    ],
)  # fmt: skip
def test_predefined_length(code: str, length: int | None) -> None:
    # GS1 General Specifications figure 7.8.5-2, through biip's AI table.
    assert predefined_length(code) == length


@pytest.mark.parametrize(
    ("elements", "chunks"),
    [
        ([], []),
        ([("01", GTIN)], [f"01{GTIN}"]),
        ([("10", "L-1")], ["10L-1"]),
        ([("01", GTIN), ("17", "271231")], [f"01{GTIN}17271231"]),
        ([("10", "L-1"), ("37", "40")], ["10L-1", "3740"]),
        ([("01", GTIN), ("10", "L-1"), ("17", "271231"), ("21", "S1")], [f"01{GTIN}10L-1", "1727123121S1"]),
        ([("21", "S1"), ("10", "L-1"), ("01", GTIN)], ["21S1", "10L-1", f"01{GTIN}"]),
    ],
)
def test_fnc1_chunks(elements: list[tuple[str, str]], chunks: list[str]) -> None:
    # GS1 General Specifications 7.8.5: FNC1 after a value of no predefined length, but the last.
    assert fnc1_chunks(elements) == chunks


def test_gs_is_the_group_separator() -> None:
    assert GS == "\x1d"
