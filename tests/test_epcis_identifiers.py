"""Identifier conversions: GS1 keys -> GS1 Digital Link URIs and EPC URNs.

Three kinds of evidence: worked examples from TDS (hand-checked tables), the identifiers in the
official EPCIS 2.0 examples in shared/epcis (read at test time), and property tests against the
independent oracle in conftest.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatewayd.epcis import identifiers as epcis
from gatewayd.epcis.identifiers import (
    CompanyPrefixTable,
    EpcisError,
    UnknownCompanyPrefixError,
    as_lookup,
    ginc_id,
    gsin_id,
    gtin_class,
    lgtin_class,
    sgtin_id,
    sscc_id,
)
from tests.epcis_support import dl_to_keys, keys_to_dl, oracle_check_digit, urn_to_keys

CP7 = CompanyPrefixTable({"0614141": 7, "4012345": 7, "9506000": 7})


# --------------------------------------------------------------------------------------------
# Tables


@pytest.mark.parametrize(
    ("gtin", "serial", "dl", "urn"),
    [
        # TDS worked example: GTIN 80614141123458, serial 6789, 7-digit prefix.
        ("80614141123458", "6789", "https://id.gs1.org/01/80614141123458/21/6789",
         "urn:epc:id:sgtin:0614141.812345.6789"),
        # The GTIN of EPCIS example 9.6.3's childEPCs (urn:epc:id:sgtin:0614141.107346.2017).
        ("10614141073464", "2017", "https://id.gs1.org/01/10614141073464/21/2017",
         "urn:epc:id:sgtin:0614141.107346.2017"),
        # TDS Table A-1: " % & / < > ? are %-escaped in URNs; other CSET 82 characters are literal.
        ("80614141123458", "A/B%C?", "https://id.gs1.org/01/80614141123458/21/A%2FB%25C%3F",
         "urn:epc:id:sgtin:0614141.812345.A%2FB%25C%3F"),
        ("80614141123458", "x!'()*+,-.:;=_", "https://id.gs1.org/01/80614141123458/21/x%21%27%28%29%2A%2B%2C-.%3A%3B%3D_",
         "urn:epc:id:sgtin:0614141.812345.x!'()*+,-.:;=_"),
        ('80614141123458', '"&<>', "https://id.gs1.org/01/80614141123458/21/%22%26%3C%3E",
         "urn:epc:id:sgtin:0614141.812345.%22%26%3C%3E"),
        # GTIN-13 is padded to 14 digits; indicator 0.
        ("9506000134352", "1", "https://id.gs1.org/01/09506000134352/21/1", "urn:epc:id:sgtin:9506000.013435.1"),
    ],
)  # fmt: skip
def test_sgtin(gtin: str, serial: str, dl: str, urn: str) -> None:
    assert sgtin_id(gtin, serial, ids="digital_link") == dl
    assert sgtin_id(gtin, serial, ids="urn", company_prefix_length=CP7) == urn


@pytest.mark.parametrize(
    ("gtin", "lot", "dl", "urn"),
    [
        ("04012345123456", "998877", "https://id.gs1.org/01/04012345123456/10/998877",
         "urn:epc:class:lgtin:4012345.012345.998877"),
        ("09506000134352", "ABC123", "https://id.gs1.org/01/09506000134352/10/ABC123",
         "urn:epc:class:lgtin:9506000.013435.ABC123"),
        ("09506000134352", "L/1", "https://id.gs1.org/01/09506000134352/10/L%2F1",
         "urn:epc:class:lgtin:9506000.013435.L%2F1"),
        # A GTIN-12 (UPC-A) is zero-padded: U.P.C. prefix 614141 is GS1 Company Prefix 0614141.
        ("614141123452", "A", "https://id.gs1.org/01/00614141123452/10/A", "urn:epc:class:lgtin:0614141.012345.A"),
    ],
)  # fmt: skip
def test_lgtin(gtin: str, lot: str, dl: str, urn: str) -> None:
    assert lgtin_class(gtin, lot, ids="digital_link") == dl
    assert lgtin_class(gtin, lot, ids="urn", company_prefix_length=CP7) == urn


def test_gtin_class() -> None:
    assert gtin_class("04012345987652", ids="digital_link") == "https://id.gs1.org/01/04012345987652"
    assert gtin_class("04012345987652", ids="urn", company_prefix_length=CP7) == "urn:epc:idpat:sgtin:4012345.098765.*"


@pytest.mark.parametrize(
    ("sscc", "dl", "urn"),
    [
        # TDS worked example.
        ("106141412345678908", "https://id.gs1.org/00/106141412345678908", "urn:epc:id:sscc:0614141.1234567890"),
        ("095060001234567893", "https://id.gs1.org/00/095060001234567893", "urn:epc:id:sscc:9506000.0123456789"),
    ],
)
def test_sscc(sscc: str, dl: str, urn: str) -> None:
    assert sscc[-1] == oracle_check_digit(sscc[:-1])
    assert sscc_id(sscc, ids="digital_link") == dl
    assert sscc_id(sscc, ids="urn", company_prefix_length=CP7) == urn


def test_gsin_and_ginc() -> None:
    gsin = "0614141123456789" + oracle_check_digit("0614141123456789")
    assert gsin_id(gsin, ids="digital_link") == f"https://id.gs1.org/402/{gsin}"
    assert gsin_id(gsin, ids="urn", company_prefix_length=CP7) == "urn:epc:id:gsin:0614141.123456789"
    assert ginc_id("0614141AB/12", ids="digital_link") == "https://id.gs1.org/401/0614141AB%2F12"
    assert ginc_id("0614141AB/12", ids="urn", company_prefix_length=CP7) == "urn:epc:id:ginc:0614141.AB%2F12"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: sgtin_id("80614141123459", "1", ids="digital_link"), "bad check digit, expected 8"),
        (lambda: sgtin_id("8061414112345", "1", ids="digital_link"), "check digit"),
        (lambda: sgtin_id("806141411234", "1", ids="digital_link"), "check digit"),
        (lambda: sgtin_id("806141411234A8", "1", ids="digital_link"), "must be 8 or 12 or 13 or 14 digits"),
        (lambda: sgtin_id("80614141123458", "x" * 21, ids="digital_link"), "1-20 characters of GS1 CSET 82"),
        (lambda: sgtin_id("80614141123458", "a b", ids="digital_link"), "CSET 82"),
        (lambda: sgtin_id("80614141123458", "é", ids="digital_link"), "CSET 82"),
        (lambda: lgtin_class("80614141123458", "", ids="digital_link"), "CSET 82"),
        (lambda: sscc_id("106141412345678909", ids="digital_link"), "SSCC '106141412345678909': bad check digit"),
        (lambda: gsin_id("06141411234567891", ids="digital_link"), "GSIN"),
        (lambda: sscc_id("106141412345678908", ids="dl"), 'ids must be "digital_link" or "urn"'),  # type: ignore[arg-type]
    ],
)
def test_invalid_keys_are_refused(call: Any, message: str) -> None:
    with pytest.raises(EpcisError, match=re.escape(message)):
        call()


# --------------------------------------------------------------------------------------------
# Company prefix lengths


def test_prefix_table_longest_match_and_default() -> None:
    table = CompanyPrefixTable({"95": 9, "9506000": 7}, default=None)
    assert table("950600013435") == 7
    assert table("951234567890") == 9
    assert table("401234512345") is None
    assert CompanyPrefixTable({}, default=8)("401234512345") == 8
    # A plain mapping is accepted where a lookup is expected.
    assert sgtin_id("80614141123458", "1", ids="urn", company_prefix_length=as_lookup({"0614141": 7})) == (
        "urn:epc:id:sgtin:0614141.812345.1"
    )


def test_unknown_prefix_is_a_clear_error() -> None:
    with pytest.raises(UnknownCompanyPrefixError) as info:
        lgtin_class("04012345123456", "L1", ids="urn", company_prefix_length=CompanyPrefixTable({"0614141": 7}))
    text = str(info.value)
    assert "GTIN 04012345123456" in text
    assert "'4012345'" in text  # suggests the key to add
    assert "digital_link" in text  # and the alternative that needs none
    with pytest.raises(UnknownCompanyPrefixError):
        sscc_id("106141412345678908", ids="urn")  # no table at all
    # Digital Link never needs one.
    assert sscc_id("106141412345678908", ids="digital_link").endswith("/00/106141412345678908")


@pytest.mark.parametrize(("prefixes", "default"), [({"95x": 7}, None), ({"95": 5}, None), ({"95": 13}, None), ({}, 4)])
def test_bad_prefix_table(prefixes: dict[str, int], default: int | None) -> None:
    with pytest.raises(EpcisError):
        CompanyPrefixTable(prefixes, default=default)


def test_prefix_length_that_cannot_fit_a_key_is_an_error() -> None:
    # A callable lookup may return anything; 13 can never be a GS1 Company Prefix in an EPC.
    with pytest.raises(EpcisError, match="outside 6-12"):
        sscc_id("106141412345678908", ids="urn", company_prefix_length=lambda _digits: 13)


# --------------------------------------------------------------------------------------------
# Against the official examples (shared/epcis, read at test time)


IDENTIFIER_RE = re.compile(r'"((?:urn:epc:(?:id|class|idpat):(?:sgtin|lgtin|sscc)|https://id\.gs1\.org/0[01])[^"]*)"')


def _identifiers(ref_dir: Path) -> dict[str, set[str]]:
    """Every EPC / class identifier in the shipped examples, by file."""
    found: dict[str, set[str]] = {}
    for path in sorted(ref_dir.glob("*.jsonld")):
        if path.name == "epcis-context.jsonld":
            continue
        text = path.read_text(encoding="utf-8")
        json.loads(text)  # they are JSON
        found[path.name] = set(IDENTIFIER_RE.findall(text))
    return found


def test_examples_contain_identifiers(ref_dir: Path) -> None:
    ids = _identifiers(ref_dir)
    assert "urn:epc:class:lgtin:4012345.012345.998877" in ids["Example_9.6.2-ObjectEvent.jsonld"]
    assert "https://id.gs1.org/01/70614141123451/10/998877" in ids["Example_9.6.2-ObjectEventWithDigitalLink.jsonld"]
    assert "urn:epc:id:sscc:0614141.1234567890" in ids["Example_9.6.3-AggregationEvent.jsonld"]


def test_every_urn_in_the_examples_is_reproduced(ref_dir: Path) -> None:
    """For each EPC URN in GS1's examples: recover the GS1 keys with the oracle, feed them to the
    module with the prefix length the URN shows, and get the very same URN back."""
    checked = 0
    for name, identifiers in _identifiers(ref_dir).items():
        for uri in sorted(i for i in identifiers if i.startswith("urn:")):
            keys = urn_to_keys(uri)
            table = CompanyPrefixTable({}, default=int(keys["cp_len"]))
            if uri.startswith("urn:epc:id:sgtin:"):
                got = sgtin_id(keys["01"], keys["21"], ids="urn", company_prefix_length=table)
            elif uri.startswith("urn:epc:class:lgtin:"):
                got = lgtin_class(keys["01"], keys["10"], ids="urn", company_prefix_length=table)
            elif uri.startswith("urn:epc:idpat:sgtin:"):
                got = gtin_class(keys["01"], ids="urn", company_prefix_length=table)
            else:
                got = sscc_id(keys["00"], ids="urn", company_prefix_length=table)
            assert got == uri, f"{name}: {uri}"
            checked += 1
    assert checked >= 5


def test_every_digital_link_in_the_examples_is_reproduced(ref_dir: Path) -> None:
    checked = 0
    for name, identifiers in _identifiers(ref_dir).items():
        for uri in sorted(i for i in identifiers if i.startswith("https://")):
            keys = dl_to_keys(uri)
            if "10" in keys:
                got = lgtin_class(keys["01"], keys["10"], ids="digital_link")
            elif "21" in keys:
                got = sgtin_id(keys["01"], keys["21"], ids="digital_link")
            elif "00" in keys:
                got = sscc_id(keys["00"], ids="digital_link")
            else:
                got = gtin_class(keys["01"], ids="digital_link")
            assert got == uri, f"{name}: {uri}"
            checked += 1
    assert checked >= 1


# --------------------------------------------------------------------------------------------
# Properties: both forms name the same object


CSET82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
gtin_bodies = st.text(alphabet="0123456789", min_size=13, max_size=13)
values = st.text(alphabet=CSET82, min_size=1, max_size=20)
prefix_lengths = st.integers(min_value=6, max_value=12)


@given(body=gtin_bodies, serial=values, lot=values, n=prefix_lengths)
def test_urn_and_digital_link_agree(body: str, serial: str, lot: str, n: int) -> None:
    gtin = body + oracle_check_digit(body)
    fixed = CompanyPrefixTable({}, default=n)
    for urn, dl in (
        (sgtin_id(gtin, serial, ids="urn", company_prefix_length=fixed), sgtin_id(gtin, serial, ids="digital_link")),
        (lgtin_class(gtin, lot, ids="urn", company_prefix_length=fixed), lgtin_class(gtin, lot, ids="digital_link")),
    ):
        keys = urn_to_keys(urn)
        assert keys["cp_len"] == str(n)
        assert keys["01"] == gtin
        assert keys_to_dl({k: v for k, v in keys.items() if k != "cp_len"}) == dl
        assert dl_to_keys(dl) == {k: v for k, v in keys.items() if k != "cp_len"}


@given(body=st.text(alphabet="0123456789", min_size=17, max_size=17), n=prefix_lengths)
def test_sscc_urn_and_digital_link_agree(body: str, n: int) -> None:
    sscc = body + oracle_check_digit(body)
    urn = sscc_id(sscc, ids="urn", company_prefix_length=CompanyPrefixTable({}, default=n))
    assert urn_to_keys(urn) == {"00": sscc, "cp_len": str(n)}
    assert dl_to_keys(sscc_id(sscc, ids="digital_link")) == {"00": sscc}


@given(body=st.text(alphabet="0123456789", min_size=1, max_size=40))
def test_check_digit_matches_oracle(body: str) -> None:
    assert epcis.gs1_check_digit(body) == oracle_check_digit(body)
