"""GS1 rules of gatewayd.gs1 against the GS1 Barcode Syntax Engine: one table per rule, whole messages.

The engine is GS1's reference implementation (github.com/gs1/gs1-syntax-engine); the vectors
below are its own unit-test verdicts, ported, since it is not packaged for Python.

Values are GS1's own examples where there are some: GTIN 09506000134352 and SSCC
106141411234567897 (used by gatewayd's tests), the GS1 Digital Link URI Syntax examples on
the 952 prefix GS1 reserves for documentation (GTIN 09520123456788, GLN 9520123456788, SSCC
952012345678912345, GIAI 9520614141234567), the GMN 1987654Ad4X4bL5ttr2310c2K of the General
Specifications, and the unit-test vectors of the GS1 Barcode Syntax Engine (lint_csum.c,
lint_csumalpha.c, dl.c). Other keys are built on those prefixes; every check digit here was
computed (and cross-checked with BWIPP, Barcode Writer in Pure PostScript), none guessed.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from gatewayd.gs1 import (
    CHECK_DIGIT_AIS,
    DigitalLinkError,
    check_ai_check_digits,
    check_digital_link,
    check_dl_path_gtin,
    check_dl_path_qualifiers,
    check_dl_query_ais,
    check_uri_characters,
    gs1_check_digit,
    gs1_check_pair,
    is_known_ai,
    parse_dl_query,
    split_dl_path,
)

GTIN = "09506000134352"
DL_GTIN = "09520123456788"
SSCC = "106141411234567897"
GMN = "1987654Ad4X4bL5ttr2310c2K"

# --- the check digit algorithms, against the reference engine's own unit tests -------------

MOD10_VECTORS = [
    # lint_csum.c: UNIT_TEST_PASS / UNIT_TEST_FAIL (INCORRECT_CHECK_DIGIT)
    pytest.param("02345673", True, id="csum pass GTIN-8"),
    pytest.param("12345673", False, id="csum fail GTIN-8"),
    pytest.param("416000336108", True, id="csum pass GTIN-12"),
    pytest.param("416000336109", False, id="csum fail GTIN-12"),
    pytest.param("1234567890128", True, id="csum pass 13"),
    pytest.param("1234567890129", False, id="csum fail 13"),
    pytest.param("12345678901231", True, id="csum pass 14"),
    pytest.param("12345678901232", False, id="csum fail 14"),
    pytest.param("123456789012345675", True, id="csum pass 18"),
    pytest.param("123456789012345670", False, id="csum fail 18"),
]


@pytest.mark.parametrize(("data", "valid"), MOD10_VECTORS)
def test_mod10_reference_vectors(data: str, valid: bool) -> None:
    assert (gs1_check_digit(data[:-1]) == int(data[-1])) is valid


def test_mod10_rejects_non_digits() -> None:
    with pytest.raises(ValueError, match=r"^not all digits: '12a4'$"):
        gs1_check_digit("12a4")


PAIR_VECTORS = [
    # lint_csumalpha.c: every UNIT_TEST_PASS, and the INCORRECT_CHECK_PAIR failures
    *(
        pytest.param(data, True, id=f"csumalpha pass {data[:14]}")
        for data in (
            "22",
            "!22",
            "!!22",
            GMN,
            "12345678901234567890123NT",
            "12345_ABCDEFGHIJKLMCP",
            "12345_NOPQRSTUVWXYZDN",
            "12345_abcdefghijklmN3",
            "12345_nopqrstuvwxyzP2",
            "12345_!\"%&'()*+,-./LC",
            "12345_0123456789:;<=>?62",
            "7907665Bm8v2AB",
            "97850l6KZm0yCD",
            "225803106GSpEF",
            "149512464PM+GH",
            "62577B8fRG7HJK",
            "515942070CYxLM",
            "390800494sP6NP",
            "386830132uO+QR",
            "53395376X1:nST",
            "957813138Sb6UV",
            "530790no0qOgWX",
            "62185314IvwmYZ",
            "23956qk1&dB!23",
            "794394895ic045",
            "57453Uq3qA<H67",
            "0881063PhHvY89",
            "00000!HV",
            "99999zzzzzzzzzzzzzzzzzzT2",
            "1234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567HA",
        )
    ),
    pytest.param("33", False, id="csumalpha fail 33"),
    pytest.param("1987654Ad4X4bL5ttr2310cXK", False, id="csumalpha fail first character"),
    pytest.param("1987654Ad4X4bL5ttr2310c2X", False, id="csumalpha fail second character"),
]


@pytest.mark.parametrize(("data", "valid"), PAIR_VECTORS)
def test_check_pair_reference_vectors(data: str, valid: bool) -> None:
    assert (gs1_check_pair(data[:-2]) == data[-2:]) is valid


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param("AB C", r"^' ' is not in CSET 82$", id="space"),
        pytest.param(
            "1" * 98, r"^98 characters is more than the 97 the check pair is defined for here$", id="too long"
        ),
    ],
)
def test_check_pair_rejects(data: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        gs1_check_pair(data)


# --- which AIs carry a check digit: the Syntax Dictionary's csum / csumalpha linters ---------


def test_check_digit_table_is_the_syntax_dictionary() -> None:
    gln = dict.fromkeys(("410", "411", "412", "413", "414", "415", "416", "417"), (0, 13, "mod10"))
    assert dict(CHECK_DIGIT_AIS) == {
        "00": (0, 18, "mod10"),
        "01": (0, 14, "mod10"),
        "02": (0, 14, "mod10"),
        "03": (0, 14, "mod10"),
        "253": (0, 13, "mod10"),
        "255": (0, 13, "mod10"),
        "402": (0, 17, "mod10"),
        **gln,
        "8003": (1, 13, "mod10"),
        "8006": (0, 14, "mod10"),
        "8013": (0, None, "mod1021"),
        "8014": (0, None, "mod1021"),
        "8017": (0, 18, "mod10"),
        "8018": (0, 18, "mod10"),
        "8026": (0, 14, "mod10"),
    }


VALID_AI_VALUES = [
    pytest.param("00", SSCC, id="SSCC"),
    pytest.param("00", "952012345678912345", id="SSCC, DL example"),
    pytest.param("01", GTIN, id="GTIN"),
    pytest.param("01", DL_GTIN, id="GTIN, DL example"),
    pytest.param("02", "09506000134376", id="content GTIN"),
    pytest.param("03", GTIN, id="MTO GTIN"),
    pytest.param("253", "9520123456788", id="GDTI without serial"),
    pytest.param("253", "9520123456788XYZ", id="GDTI with serial"),
    pytest.param("253", "1231231231232TEST5678901234567", id="GDTI, engine dl.c example"),
    pytest.param("255", "9520123456788", id="GCN without serial"),
    pytest.param("255", "95201234567880123", id="GCN with serial"),
    pytest.param("402", "95201234567890122", id="GSIN"),
    *(
        pytest.param(ai, "9520123456788", id=f"GLN in {ai}")
        for ai in ("410", "411", "412", "413", "414", "415", "416", "417")
    ),
    pytest.param("8003", "09506000134352", id="GRAI without serial"),
    pytest.param("8003", "09506000134352ABC123", id="GRAI with serial"),
    pytest.param("8003", "09520123456788", id="GRAI on the 952 prefix"),
    pytest.param("8006", "095201234567880102", id="ITIP piece 1 of 2"),
    pytest.param("8026", "095201234567880102", id="ITIP content"),
    pytest.param("8013", GMN, id="GMN, General Specifications example"),
    pytest.param("8014", "95201234ABCSD", id="MUDI"),
    pytest.param("8017", "952012345678901233", id="GSRN provider"),
    pytest.param("8018", "952012345678901233", id="GSRN recipient"),
    pytest.param("8018", "123456789012345675", id="GSRN, engine dl.c example"),
    pytest.param("10", "ABC", id="lot: no check digit"),
    pytest.param("401", "9520123ABC-123", id="GINC: no check digit"),
    pytest.param("8004", "9520614141234567", id="GIAI: no check digit"),
    pytest.param("7040", "1ABC", id="UIC+EXT: no check digit"),
]


@pytest.mark.parametrize(("ai", "value"), VALID_AI_VALUES)
def test_valid_check_digits(ai: str, value: str) -> None:
    assert check_ai_check_digits(ai, value) is None


INVALID_AI_VALUES = [
    # The decoder's messages for 00, 01 and 41x today, unchanged (tests/test_decode.py):
    pytest.param(
        "01",
        "09506000134353",
        "AI 01: invalid GTIN check digit in '09506000134353': expected 2, got 3",
        id="GTIN, as the decoder says it today",
    ),
    pytest.param(
        "00",
        "106141411234567890",
        "AI 00: invalid SSCC check digit in '106141411234567890': expected 7, got 0",
        id="SSCC, as the decoder says it today",
    ),
    pytest.param(
        "414",
        "0950600013437",
        "AI 414: invalid GLN check digit in '0950600013437': expected 9, got 7",
        id="GLN, as the decoder says it today",
    ),
    # A check digit inside the value: its position (from 0, as the decoder counts) is given.
    pytest.param(
        "8003",
        "09506000134353ABC123",
        "AI 8003: invalid GRAI check digit in '09506000134353ABC123': expected 2 at position 13, got 3",
        id="GRAI with serial",
    ),
    pytest.param(
        "8003",
        "09506000134353",
        "AI 8003: invalid GRAI check digit in '09506000134353': expected 2, got 3",
        id="GRAI without serial",
    ),
    pytest.param(
        "253",
        "9520123456789XYZ",
        "AI 253: invalid GDTI check digit in '9520123456789XYZ': expected 8 at position 12, got 9",
        id="GDTI with serial",
    ),
    pytest.param(
        "255",
        "95201234567890123",
        "AI 255: invalid GCN check digit in '95201234567890123': expected 8 at position 12, got 9",
        id="GCN with serial",
    ),
    pytest.param(
        "402",
        "95201234567890123",
        "AI 402: invalid GSIN check digit in '95201234567890123': expected 2, got 3",
        id="GSIN",
    ),
    pytest.param(
        "415",
        "9520123456789",
        "AI 415: invalid GLN check digit in '9520123456789': expected 8, got 9",
        id="GLN in 415",
    ),
    pytest.param(
        "8006",
        "095201234567890102",
        "AI 8006: invalid ITIP check digit in '095201234567890102': expected 8 at position 13, got 9",
        id="ITIP",
    ),
    pytest.param(
        "8026",
        "095201234567890102",
        "AI 8026: invalid ITIP check digit in '095201234567890102': expected 8 at position 13, got 9",
        id="ITIP content",
    ),
    pytest.param(
        "8017",
        "952012345678901234",
        "AI 8017: invalid GSRN check digit in '952012345678901234': expected 3, got 4",
        id="GSRN provider",
    ),
    pytest.param(
        "8018",
        "952012345678901239",
        "AI 8018: invalid GSRN check digit in '952012345678901239': expected 3, got 9",
        id="GSRN recipient",
    ),
    pytest.param(
        "03",
        "09506000134353",
        "AI 03: invalid GTIN check digit in '09506000134353': expected 2, got 3",
        id="MTO GTIN",
    ),
    pytest.param(
        "8013",
        "1987654Ad4X4bL5ttr2310cXK",
        "AI 8013: invalid GMN check character pair in '1987654Ad4X4bL5ttr2310cXK': expected '2K', got 'XK'",
        id="GMN first check character",
    ),
    pytest.param(
        "8013",
        "1987654Ad4X4bL5ttr2310c2X",
        "AI 8013: invalid GMN check character pair in '1987654Ad4X4bL5ttr2310c2X': expected '2K', got '2X'",
        id="GMN second check character",
    ),
    pytest.param(
        "8013",
        "12345678901234567890123N ",
        "AI 8013: invalid GMN check character pair in '12345678901234567890123N ': expected 'NT', got 'N '",
        id="GMN check character outside CSET 32",
    ),
    pytest.param(
        "8014",
        "95201234ABCSE",
        "AI 8014: invalid MUDI check character pair in '95201234ABCSE': expected 'SD', got 'SE'",
        id="MUDI",
    ),
    # Values the format check would already reject: still a clear message, never an exception.
    pytest.param(
        "8013",
        "A",
        "AI 8013: 'A' is too short for the GMN check character pair",
        id="GMN of one character",
    ),
    pytest.param(
        "8013",
        "123456789 1234567890123NT",
        "AI 8013: invalid character ' ' at position 9 in '123456789 1234567890123NT'",
        id="GMN with a space",
    ),
    pytest.param(
        "8003",
        "0950600013",
        "AI 8003: '0950600013' is too short for the GRAI check digit at position 13",
        id="GRAI too short",
    ),
    pytest.param(
        "8006",
        "0952012345678A0102",
        "AI 8006: invalid character 'A' at position 13 in '0952012345678A0102'",
        id="ITIP with a letter",
    ),
    pytest.param(
        "01",
        "0950600013435\u0662",
        "AI 01: invalid character '\u0662' at position 13 in '0950600013435\u0662'",
        id="GTIN with a non-ASCII digit",
    ),
]


@pytest.mark.parametrize(("ai", "value", "message"), INVALID_AI_VALUES)
def test_invalid_check_digits(ai: str, value: str, message: str) -> None:
    assert check_ai_check_digits(ai, value) == message


# --- Digital Link: the primary key after any path prefix -----------------------------------

SPLIT_PATHS = [
    pytest.param("/01/09506000134352/10/ABC", "", [("01", GTIN), ("10", "ABC")], id="no prefix"),
    pytest.param(
        "/some/path/01/09506000134352/10/ABC",
        "/some/path",
        [("01", GTIN), ("10", "ABC")],
        id="prefix of two segments",
    ),
    pytest.param(
        "/products/01/09506000134352/10/L1",
        "/products",
        [("01", GTIN), ("10", "L1")],
        id="prefix of one segment (gatewayd's custom resolver test)",
    ),
    pytest.param(
        "/more/stem/00/006141411234567890",
        "/more/stem",
        [("00", "006141411234567890")],
        id="engine dl.c: custom stem",
    ),
    pytest.param(
        "/00/faux/00/006141411234567890",
        "/00/faux",
        [("00", "006141411234567890")],
        id="engine dl.c: fake AI in the stem, the rightmost key wins",
    ),
    pytest.param("/gs1/00/01/09506000134352", "/gs1/00", [("01", GTIN)], id="prefix ending in a key-like segment"),
    pytest.param(
        "/01/shop/01/09506000134352/21/S1",
        "/01/shop",
        [("01", GTIN), ("21", "S1")],
        id="prefix starting with a key-like segment",
    ),
    pytest.param(
        "/01/12312312312333/22/TEST/10/ABC/21/XYZ",
        "",
        [("01", "12312312312333"), ("22", "TEST"), ("10", "ABC"), ("21", "XYZ")],
        id="all three GTIN qualifiers",
    ),
    pytest.param(
        "/01/12312312312333/22/ABC%2d123",
        "",
        [("01", "12312312312333"), ("22", "ABC-123")],
        id="engine dl.c: percent-encoded value",
    ),
    pytest.param(
        "/01/12312312312333/22/ABC+123",
        "",
        [("01", "12312312312333"), ("22", "ABC+123")],
        id="engine dl.c: + means + in the path",
    ),
    pytest.param(
        "/01/09506000134352/10/AB%2F12%2B3",
        "",
        [("01", GTIN), ("10", "AB/12+3")],
        id="%2F is decoded after the split, so it stays in the value",
    ),
    pytest.param(
        "/414/9520123456788/254/32a%2Fb",
        "",
        [("414", "9520123456788"), ("254", "32a/b")],
        id="DL example: GLN with extension",
    ),
    pytest.param(
        "/01/09506000134352/99/X",
        "",
        [("01", GTIN), ("99", "X")],
        id="a known AI after the key is split off (the sequence check rejects it)",
    ),
    pytest.param("/01/ABC%2", "", [("01", "ABC%2")], id="an incomplete %-escape stays as written"),
]


@pytest.mark.parametrize(("path", "prefix", "pairs"), SPLIT_PATHS)
def test_split_dl_path(path: str, prefix: str, pairs: list[tuple[str, str]]) -> None:
    assert split_dl_path(path) == (prefix, pairs)


SPLIT_PATH_ERRORS = [
    pytest.param("/about", "no GS1 primary key AI (such as 01 or 00) in the path '/about'", id="not a DL"),
    pytest.param("", "no GS1 primary key AI (such as 01 or 00) in the path ''", id="empty path"),
    pytest.param("/", "no GS1 primary key AI (such as 01 or 00) in the path '/'", id="root"),
    pytest.param(
        "/10/ABC",
        "no GS1 primary key AI (such as 01 or 00) in the path '/10/ABC'",
        id="a qualifier without a key",
    ),
    pytest.param(
        "/01/09506000134352/",
        "no GS1 primary key AI (such as 01 or 00) in the path '/01/09506000134352/'",
        id="engine dl.c: can't end in a slash",
    ),
    pytest.param(
        "/01/09506000134352/foo/bar",
        "no GS1 primary key AI (such as 01 or 00) in the path '/01/09506000134352/foo/bar'",
        id="a non-AI pair after the key ends the walk",
    ),
    pytest.param(
        "/01/09520123456788/89/ABC123",
        "no GS1 primary key AI (such as 01 or 00) in the path '/01/09520123456788/89/ABC123'",
        id="engine dl.c: unknown AI 89 in the path",
    ),
    pytest.param(
        "/gtin/12312312312333",
        "no GS1 primary key AI (such as 01 or 00) in the path '/gtin/12312312312333'",
        id="engine dl.c: convenience alphas are not read",
    ),
    pytest.param("/01//10/ABC", "AI 01: empty value in the path '/01//10/ABC'", id="empty key value"),
    pytest.param(
        "/01/09506000134352/10/A%00B",
        "AI 10: the path value 'A%00B' decodes to a NUL character",
        id="percent-encoded NUL",
    ),
]


@pytest.mark.parametrize(("path", "message"), SPLIT_PATH_ERRORS)
def test_split_dl_path_errors(path: str, message: str) -> None:
    with pytest.raises(DigitalLinkError) as info:
        split_dl_path(path)
    assert str(info.value) == message


# --- Digital Link: query parameters ---------------------------------------------------------

QUERIES = [
    pytest.param("", [], [], id="no query"),
    pytest.param("17=271231", [("17", "271231")], [], id="one AI"),
    pytest.param(
        "&&&99=ABC&&&&&&98=XYZ&&&",
        [("99", "ABC"), ("98", "XYZ")],
        [],
        id="engine dl.c: extra separators",
    ),
    pytest.param(
        "singleton1&unknown1=555&99=ABC&singleton2&98=XYZ&unknown3=777",
        [("99", "ABC"), ("98", "XYZ")],
        [],
        id="engine dl.c: singletons and non-numeric keys are skipped",
    ),
    pytest.param("linkType=gs1:pip&17=271200", [("17", "271200")], [], id="linkType is not an AI"),
    pytest.param("98=XYZ%2f987", [("98", "XYZ/987")], [], id="percent-encoded"),
    pytest.param("10=A+B", [("10", "A B")], [], id="+ means a space in the query"),
    pytest.param("01=9520123456788", [("01", DL_GTIN)], [], id="GTIN-13 in the query is padded, as the engine does"),
    pytest.param("17=271231&17=271231", [("17", "271231"), ("17", "271231")], [], id="repeats are kept"),
    pytest.param("17=271231;10=ABC", [("17", "271231;10=ABC")], [], id="; is no separator for the engine"),
    pytest.param(
        "99=ABC&999=faux",
        [("99", "ABC")],
        ["unknown GS1 AI '999' in the Digital Link query"],
        id="engine dl.c: numeric key that is no AI",
    ),
    pytest.param(
        "10=A%00",
        [],
        ["AI 10: the query value 'A%00' decodes to a NUL character"],
        id="percent-encoded NUL",
    ),
]


@pytest.mark.parametrize(("query", "pairs", "problems"), QUERIES)
def test_parse_dl_query(query: str, pairs: list[tuple[str, str]], problems: list[str]) -> None:
    assert parse_dl_query(query) == (pairs, problems)


EMPTY_QUERY_VALUES = [
    pytest.param("17=", [], ["AI 17: empty value in the Digital Link query (17=)"], id="engine dl.c: 99="),
    pytest.param(
        "10=ABC&17=",
        [("10", "ABC")],
        ["AI 17: empty value in the Digital Link query (17=)"],
        id="after a good one",
    ),
    pytest.param(
        "17=&17=271231",
        [("17", "271231")],
        ["AI 17: empty value in the Digital Link query (17=)"],
        id="then given",
    ),
    pytest.param("linkType=&17=271231", [("17", "271231")], [], id="a non-AI key may be empty"),
    pytest.param("17", [], [], id="no = at all: a singleton, skipped"),
]


@pytest.mark.parametrize(("query", "pairs", "problems"), EMPTY_QUERY_VALUES)
def test_empty_query_values(query: str, pairs: list[tuple[str, str]], problems: list[str]) -> None:
    assert parse_dl_query(query) == (pairs, problems)


# --- Digital Link: the GTIN in the path is 14 digits -----------------------------------------

PATH_GTINS = [
    pytest.param([("01", GTIN)], None, id="GTIN-14"),
    pytest.param(
        [("01", "9506000134352")],
        "AI 01: '9506000134352' in the Digital Link path is a GTIN-13; "
        "GS1 Digital Link requires all 14 digits; read as '09506000134352'",
        id="GTIN-13",
    ),
    pytest.param(
        [("01", "416000336108"), ("10", "ABC")],
        "AI 01: '416000336108' in the Digital Link path is a GTIN-12; "
        "GS1 Digital Link requires all 14 digits; read as '00416000336108'",
        id="GTIN-12 (engine dl.c)",
    ),
    pytest.param(
        [("01", "02345673")],
        "AI 01: '02345673' in the Digital Link path is a GTIN-8; "
        "GS1 Digital Link requires all 14 digits; read as '00000002345673'",
        id="GTIN-8 (engine dl.c)",
    ),
    pytest.param([("01", "09506000134")], None, id="11 digits: the format check's business"),
    pytest.param([("8006", "095201234567880102")], None, id="ITIP"),
    pytest.param([("414", "9520123456788")], None, id="GLN"),
]


@pytest.mark.parametrize(("pairs", "problem"), PATH_GTINS)
def test_path_gtin_length(pairs: list[tuple[str, str]], problem: str | None) -> None:
    assert check_dl_path_gtin(pairs) == problem


# --- Digital Link: key-qualifier sequences in the path --------------------------------------

GOOD_SEQUENCES = [
    ["00"],
    ["01"],
    ["01", "22"],
    ["01", "10"],
    ["01", "21"],
    ["01", "10", "21"],
    ["01", "22", "21"],
    ["01", "22", "10", "21"],
    ["01", "235"],
    ["8006", "22", "10", "21"],
    ["414", "254"],
    ["414", "7040"],
    ["415", "8020"],
    ["417", "7040"],
    ["8004", "7040"],
    ["8010", "8011"],
    ["8017", "8019"],
    ["8018", "8019"],
    ["8003"],
    ["8013"],
]


@pytest.mark.parametrize("ais", GOOD_SEQUENCES, ids=" ".join)
def test_valid_key_qualifier_sequences(ais: list[str]) -> None:
    assert check_dl_path_qualifiers([(ai, "x") for ai in ais]) is None


BAD_SEQUENCES = [
    pytest.param(
        ["01", "10", "22"],
        "AIs 01, 10, 22 in the Digital Link path are not a valid key-qualifier sequence: "
        "01 takes only 22, 10, 21 in that order or 235",
        id="GTIN qualifiers out of order",
    ),
    pytest.param(
        ["01", "22", "235"],
        "AIs 01, 22, 235 in the Digital Link path are not a valid key-qualifier sequence: "
        "01 takes only 22, 10, 21 in that order or 235",
        id="GTIN qualifier alternatives mixed",
    ),
    pytest.param(
        ["01", "10", "10"],
        "AIs 01, 10, 10 in the Digital Link path are not a valid key-qualifier sequence: "
        "01 takes only 22, 10, 21 in that order or 235",
        id="a qualifier twice",
    ),
    pytest.param(
        ["01", "99"],
        "AIs 01, 99 in the Digital Link path are not a valid key-qualifier sequence: "
        "01 takes only 22, 10, 21 in that order or 235",
        id="an attribute in the path",
    ),
    pytest.param(
        ["00", "10"],
        "AIs 00, 10 in the Digital Link path are not a valid key-qualifier sequence: 00 takes no key qualifiers",
        id="SSCC takes none",
    ),
    pytest.param(
        ["414", "254", "7040"],
        "AIs 414, 254, 7040 in the Digital Link path are not a valid key-qualifier sequence: "
        "414 takes only 254 or 7040",
        id="GLN qualifier alternatives mixed",
    ),
]


@pytest.mark.parametrize(("ais", "problem"), BAD_SEQUENCES)
def test_invalid_key_qualifier_sequences(ais: list[str], problem: str) -> None:
    assert check_dl_path_qualifiers([(ai, "x") for ai in ais]) == problem


# --- Digital Link: AIs repeated between path and query, or within the query --------------------

REPEATS = [
    pytest.param(
        [("01", GTIN), ("10", "A")],
        [("10", "A")],
        ["AI 10: appears in both the Digital Link path and query, as 'A' and 'A'"],
        id="same value in path and query",
    ),
    pytest.param(
        [("01", GTIN), ("10", "A")],
        [("10", "B")],
        ["AI 10: appears in both the Digital Link path and query, as 'A' and 'B'"],
        id="different values in path and query",
    ),
    pytest.param(
        [("01", DL_GTIN), ("10", "ABC123")],
        [("99", "XYZ789"), ("01", DL_GTIN)],
        [f"AI 01: appears in both the Digital Link path and query, as '{DL_GTIN}' and '{DL_GTIN}'"],
        id="engine dl.c: the key again in the query",
    ),
    pytest.param(
        [("01", GTIN)],
        [("17", "271231"), ("17", "271231")],
        ["AI 17: appears twice in the Digital Link query, as '271231' and '271231'"],
        id="same value twice in the query",
    ),
    pytest.param(
        [("01", GTIN)],
        [("17", "271231"), ("17", "280101")],
        ["AI 17: appears twice in the Digital Link query, as '271231' and '280101'"],
        id="different values twice in the query",
    ),
    pytest.param(
        [("01", GTIN)],
        [("17", "271231"), ("17", "280101"), ("17", "290101")],
        [
            "AI 17: appears twice in the Digital Link query, as '271231' and '280101'",
            "AI 17: appears twice in the Digital Link query, as '271231' and '290101'",
        ],
        id="three times",
    ),
    pytest.param([("01", GTIN), ("10", "A")], [("17", "271231")], [], id="no repeat"),
]


@pytest.mark.parametrize(("path_pairs", "query_pairs", "problems"), REPEATS)
def test_repeated_ais(
    path_pairs: list[tuple[str, str]], query_pairs: list[tuple[str, str]], problems: list[str]
) -> None:
    assert check_dl_query_ais(path_pairs, query_pairs) == problems


# --- Digital Link: which AIs the query may hold ------------------------------------------------

QUERY_ATTRIBUTES = [
    pytest.param(
        [("01", DL_GTIN)],
        [("10", "ABC123")],
        ["AI 10: a key qualifier of 01; it belongs in the Digital Link path, not the query"],
        id="engine dl.c: lot in the query",
    ),
    pytest.param(
        [("01", DL_GTIN), ("235", "XYZ")],
        [("10", "ABC123")],
        [],
        id="engine dl.c: fine after the other qualifier alternative",
    ),
    pytest.param(
        [("01", GTIN), ("22", "V1")],
        [("10", "L1")],
        ["AI 10: a key qualifier of 01; it belongs in the Digital Link path, not the query"],
        id="lot that fits after the CPV",
    ),
    pytest.param(
        [("01", GTIN)],
        [("21", "S1")],
        ["AI 21: not a GS1 Digital Link data attribute, so not allowed in the query"],
        id="serial is no data attribute",
    ),
    pytest.param(
        [("414", "9520123456788")],
        [("254", "32a")],
        ["AI 254: not a GS1 Digital Link data attribute, so not allowed in the query"],
        id="GLN extension",
    ),
    pytest.param(
        [("00", "952012345678912345")],
        [("02", DL_GTIN), ("37", "25"), ("10", "ABC123")],
        [],
        id="DL example: SSCC with content, count and lot",
    ),
    pytest.param(
        [("8004", "9520614141234567")],
        [("01", DL_GTIN)],
        [],
        id="DL example: GIAI with a GTIN attribute",
    ),
    pytest.param(
        [("01", DL_GTIN)],
        [("3103", "000195"), ("3922", "0299"), ("17", "201225")],
        [],
        id="DL example: weight, price, expiry",
    ),
]


@pytest.mark.parametrize(("path_pairs", "query_pairs", "problems"), QUERY_ATTRIBUTES)
def test_query_attributes(
    path_pairs: list[tuple[str, str]], query_pairs: list[tuple[str, str]], problems: list[str]
) -> None:
    assert check_dl_query_ais(path_pairs, query_pairs) == problems


# --- Digital Link: characters a URI may hold ---------------------------------------------------

URI_CHARACTERS = [
    pytest.param("https://id.gs1.org/01/09506000134352/10/AB%2F12%2B3", None, id="all allowed"),
    pytest.param(
        "https://id.gs1.org/01/09506000134352/10/AB 1",
        "character ' ' at position 42 is not allowed in a URI; it must be percent-encoded",
        id="raw space",
    ),
    pytest.param(
        "https://id.gs1.org/01/09506000134352/10/A|B",
        "character '|' at position 41 is not allowed in a URI; it must be percent-encoded",
        id="raw |",
    ),
    pytest.param(
        "https://id.gs1.org/01/09506000134352/10/\u00e9",
        "character '\u00e9' at position 40 is not allowed in a URI; it must be percent-encoded",
        id="non-ASCII",
    ),
]


@pytest.mark.parametrize(("uri", "problem"), URI_CHARACTERS)
def test_uri_characters(uri: str, problem: str | None) -> None:
    assert check_uri_characters(uri) == problem


# --- Whole URIs: the reference engine's own dl.c test verdicts ------------------------------------

# test_dl_parseDLuri in gs1-syntax-engine src/c-lib/dl.c, default settings, limited to the rules
# drafted here (domain, scheme-case and value-format failures are left out).
ENGINE_VERDICTS = [
    ("http://a/00/006141411234567890", True),
    ("https://a/01/12312312312333", True),
    ("https://a/stem/00/006141411234567890", True),
    ("https://a/more/stem/00/006141411234567890", True),
    ("https://a/00/faux/00/006141411234567890", True),
    ("https://a/01/12312312312333/22/TEST/10/ABC/21/XYZ", True),
    ("https://a/01/12312312312333/235/TEST", True),
    ("https://a/253/1231231231232", True),
    ("https://a/253/1231231231232TEST5678901234567", True),
    ("https://a/8018/123456789012345675/8019/123", True),
    ("https://a/stem/00/006141411234567890?", True),
    ("https://a/stem/00/006141411234567890?99=ABC", True),
    ("https://a/stem/401/12345678?99=ABC", True),
    ("https://a/01/12312312312333?99=ABC&98=XYZ", True),
    ("https://a/01/12312312312333?&&&99=ABC&&&&&&98=XYZ&&&", True),
    ("https://a/01/12312312312333?singleton1&unknown1=555&99=ABC&singleton2&unknown2=6666&98=XYZ", True),
    ("https://a/01/12312312312333/22/ABC%2d123?99=ABC&98=XYZ%2f987", True),
    ("https://a/01/12312312312333/22/ABC+123?99=ABC&98=XYZ%2f987", True),
    ("https://a/01/12312312312333/22/test/10/abc/21/xyz#fragment", True),
    ("https://a/stem/00/006141411234567890?99=ABC#fragment", True),
    ("https://id.gs1.org/01/09520123456788/10/ABC1/21/12345?17=180426", True),
    ("https://example.com/01/09520123456788?3103=000195&3922=0299&17=201225", True),
    ("https://id.gs1.org/00/952012345678912345?02=09520123456788&37=25&10=ABC123", True),
    ("https://id.gs1.org/414/9520123456788/254/32a%2Fb", True),
    ("https://example.com/8004/9520614141234567?01=9520123456788", True),
    ("https://id.gs1.org/01/09520123456788/235/XYZ?10=ABC123", True),
    ("http://a/", False),
    ("http://a/b", False),
    ("http://a/b/", False),
    ("https://a/gtin/12312312312333", False),
    ("https://a/01/2112345678900", False),
    ("https://a/01/416000336108", False),
    ("https://a/01/02345673", False),
    ("https://a/stem/00/006141411234567890/", False),
    ("https://a/01/12312312312333?99=", False),
    ("https://a/01/12312312312333?99=ABC&999=faux", False),
    ("https://example.com/01/09520123456788?10=ABC123", False),
    ("https://id.gs1.org/01/09520123456788/10/ABC123?99=XYZ789&01=09520123456788", False),
    ("https://id.gs1.org/01/09520123456788/10/ABC123?99=XYZ789&10=ABC123", False),
    ("https://id.gs1.org/01/09520123456788/10/ABC123?99=XYZ789&99=XYZ789", False),
    ("https://example.com/01/09520123456788/89/ABC123?99=XYZ", False),
    ("https://example.com/01/09520123456788?99=XYZ&89=ABC123", False),
    # and two that only the check digit rules reject
    ("https://example.com/8003/09506000134353ABC", False),
    ("https://example.com/01/09506000134353", False),
]


ZERO_SUPPRESSED = "in the Digital Link path is a GTIN-"


def _accepted(uri: str, *, permit_zero_suppressed_gtin: bool = False) -> bool:
    """The engine's verdict: no problem at all. With ``permit_zero_suppressed_gtin``, as the
    engine's legacy option, the padded GTIN-8/12/13 in the path is not counted."""
    parts = urlsplit(uri)
    try:
        _, elements, problems = check_digital_link(parts.path, parts.query)
    except DigitalLinkError:
        return False
    if permit_zero_suppressed_gtin:
        problems = [p for p in problems if ZERO_SUPPRESSED not in p]
    problems += [p for ai, value in elements if (p := check_ai_check_digits(ai, value)) is not None]
    return not problems


@pytest.mark.parametrize(("uri", "accepted"), ENGINE_VERDICTS, ids=[u for u, _ in ENGINE_VERDICTS])
def test_engine_verdicts(uri: str, accepted: bool) -> None:
    assert _accepted(uri) is accepted


@pytest.mark.parametrize(
    "uri",
    [
        "https://a/01/2112345678900",
        "https://a/01/416000336108",
        "https://a/01/02345673",
        "https://brand.example.com/some-extra/pathinfo/01/9520123456788",
        "https://example.com/01/9520123456788?3103=000195&3922=0299&17=201225",
    ],
)
def test_engine_verdicts_with_zero_suppressed_gtins_permitted(uri: str) -> None:
    # The engine's legacy option gs1_encoder_setPermitZeroSuppressedGTINinDLuris(ctx, true).
    assert _accepted(uri, permit_zero_suppressed_gtin=True)


def test_check_digital_link_collects_every_problem() -> None:
    prefix, elements, problems = check_digital_link("/scan/01/9506000134352/10/A", "10=B&17=&999=x&17=271231&21=S")
    assert prefix == "/scan"
    assert elements == [("01", GTIN), ("10", "A"), ("10", "B"), ("17", "271231"), ("21", "S")]
    assert problems == [
        "AI 01: '9506000134352' in the Digital Link path is a GTIN-13; "
        "GS1 Digital Link requires all 14 digits; read as '09506000134352'",
        "AI 17: empty value in the Digital Link query (17=)",
        "unknown GS1 AI '999' in the Digital Link query",
        "AI 10: appears in both the Digital Link path and query, as 'A' and 'B'",
        "AI 21: not a GS1 Digital Link data attribute, so not allowed in the query",
    ]


def test_check_digital_link_pads_a_legacy_gtin_and_reports_it() -> None:
    assert check_digital_link("/01/9506000134352", "") == (
        "",
        [("01", GTIN)],
        [
            "AI 01: '9506000134352' in the Digital Link path is a GTIN-13; "
            "GS1 Digital Link requires all 14 digits; read as '09506000134352'"
        ],
    )


@pytest.mark.parametrize(
    ("ai", "known"),
    [
        ("00", True),
        ("8003", True),
        ("3103", True),
        ("3695", True),
        ("3106", False),
        ("3380", False),
        ("91", True),
        ("99", True),
        ("7259", True),
        ("89", False),
        ("999", False),
        ("gtin", False),
        ("", False),
    ],
)
def test_known_ais(ai: str, known: bool) -> None:
    assert is_known_ai(ai) is known
