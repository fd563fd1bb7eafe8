"""Zebra ~HS / ~HQES and ESC/POS DLE EOT parsing: table tests over whole answers."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatewayd_drivers import escpos_status
from gatewayd_drivers.zebra_status import (
    NO_ANSWER,
    PRINTER_STATES,
    StatusParseError,
    ZebraStatus,
    answer_state,
    parse_hqes,
    parse_hs,
    state_of,
)
from tests.fake_zebra import PASSWORD, hqes_answer, hs_answer


def frames(*strings: str) -> bytes:
    return b"".join(b"\x02" + s.encode() + b"\x03\r\n" for s in strings)


S3 = f"{PASSWORD},0"


@pytest.mark.parametrize(
    ("answer", "state", "detail"),
    [
        (hs_answer("ready"), "ready", "ready"),
        (hs_answer("paper_out"), "paper_out", "paper out (load media to resume)"),
        (hs_answer("head_open"), "head_open", "print head open (close the head to resume)"),
        (hs_answer("paused"), "paused", "paused (press PAUSE on the printer, or send ~PS)"),
        (hs_answer("ribbon_out"), "ribbon_out", "ribbon out (load a ribbon to resume)"),
        (hs_answer("buffer_full"), "buffer_full", "receive buffer full"),
        (
            frames("030,0,0,1245,000,0,0,0,000,0,0,1", "001,0,0,0,1,2,4,0,00000000,1,000", S3),
            "error",
            "print head over temperature",
        ),
        (
            frames("030,0,0,1245,000,0,0,0,000,0,1,0", "001,0,0,0,1,2,4,0,00000000,1,000", S3),
            "ready",
            "ready, print head under temperature (print may be light)",
        ),
        # head open and paper out together: the head is what the operator must fix first
        (
            frames("030,1,1,1245,000,0,0,0,000,0,0,0", "001,0,1,0,1,2,4,0,00000000,1,000", S3),
            "head_open",
            "print head open (close the head to resume)",
        ),
        (b"", *NO_ANSWER),
        (None, "unknown", "this transport cannot read the printer's status"),
        (b"garbage\r\n", "unknown", "unreadable answer to ~HS (9 bytes)"),
        (hs_answer("ready")[:-10], "unknown", f"unreadable answer to ~HS ({len(hs_answer('ready')) - 10} bytes)"),
        (
            frames("030,0,0,1245", "001,0,0,0,1,2,4,0,00000000,1,000", S3),
            "unknown",
            "unreadable answer to ~HS (62 bytes)",
        ),
    ],
)
def test_answer_state(answer: bytes | None, state: str, detail: str) -> None:
    assert answer_state(answer) == (state, detail)
    assert state in PRINTER_STATES


def test_silence_is_never_ready() -> None:
    assert answer_state(b"")[0] == "unknown"
    assert "no answer to ~HS" in answer_state(b"")[1]


def test_parse_hs_fields() -> None:
    status = parse_hs(hs_answer("ready", formats=7, labels_remaining=42))
    assert status == ZebraStatus(
        paper_out=False, paused=False, head_open=False, ribbon_out=False, buffer_full=False,
        under_temperature=False, over_temperature=False, corrupt_ram=False,
        partial_format=False, label_waiting=False, formats_in_buffer=7, labels_remaining=42,
        label_length_dots=1245,
        string1="030,0,0,1245,007,0,0,0,000,0,0,0",
        string2="001,0,0,0,1,2,4,0,00000042,1,000",
    )


@pytest.mark.parametrize("state", ["ready", "paper_out", "head_open", "paused", "ribbon_out"])
def test_string3_is_never_kept(state: str) -> None:
    status = parse_hs(hs_answer(state))
    text = repr(status) + repr(dataclasses.asdict(status)) + repr(state_of(status))
    assert PASSWORD not in text


def test_late_answer_before_fresh_one_uses_the_fresh_one() -> None:
    assert state_of(parse_hs(hs_answer("paper_out") + hs_answer("ready"))) == ("ready", "ready")


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"", "Failed to parse ~HS answer: it is empty (the printer was silent)"),
        (b"\x02abc\x03", "Failed to parse ~HS answer of 5 bytes: expected 3 strings framed by "
                        "STX/ETX, got 1"),
        (
            frames("030,0,0,1245,000,0,0,0,000,0,0", "001,0,0,0,1,2,4,0,00000000,1,000", S3),
            "Failed to parse ~HS string 1 '030,0,0,1245,000,0,0,0,000,0,0': expected "
            "aaa,b,c,dddd,eee,f,g,h,iii,j,k,l (12 numeric fields)",
        ),
        (
            frames("030,0,0,1245,000,0,0,0,000,0,0,0", "001,0,X,0,1,2,4,0,00000000,1,000", S3),
            "Failed to parse ~HS string 2 '001,0,X,0,1,2,4,0,00000000,1,000': expected "
            "mmm,n,o,p,q,r,s,t,uuuuuuuu,v,www (11 numeric fields)",
        ),
        (
            frames("030,0,0,1245,000,0,0,0,000,0,0,0", "001,0,0,0,1,2,4,0,00000000,1,000", "x"),
            "Failed to parse ~HS string 3: expected xxxx,y (password, static RAM flag)",
        ),
    ],
)
def test_parse_hs_errors(answer: bytes, message: str) -> None:
    with pytest.raises(StatusParseError) as info:
        parse_hs(answer)
    assert str(info.value) == message


@given(st.binary(max_size=300))
def test_parse_hs_never_crashes_nor_leaks(answer: bytes) -> None:
    state, detail = answer_state(answer + hs_answer("ready") * (len(answer) % 2))
    assert state in PRINTER_STATES
    assert PASSWORD not in detail


@pytest.mark.parametrize(
    ("answer", "state", "detail"),
    [
        (hqes_answer("ready"), "ready", "ready"),
        (hqes_answer("paper_out"), "paper_out", "media out"),
        (hqes_answer("ribbon_out"), "ribbon_out", "ribbon out"),
        (hqes_answer("head_open"), "head_open", "print head open"),
        (
            b"\x02 ERRORS: 1 00000000 00000018\r\n WARNINGS: 1 00000000 00000008\r\n\x03",
            "error",
            "cutter fault, print head over temperature (warnings: paper near end)",
        ),
        (
            b"\x02 ERRORS: 1 00000000 00010000\r\n WARNINGS: 0 00000000 00000000\r\n\x03",
            "error",
            "other flags 0x10000",
        ),
    ],
)
def test_hqes(answer: bytes, state: str, detail: str) -> None:
    assert state_of(parse_hqes(answer)) == (state, detail)


def test_hqes_garbage() -> None:
    with pytest.raises(StatusParseError, match="expected 'ERRORS: f xxxxxxxx xxxxxxxx'"):
        parse_hqes(b"\x02PRINTER STATUS\x03")


@pytest.mark.parametrize(
    ("answers", "state", "detail"),
    [
        ({1: b"\x12", 2: b"\x12", 3: b"\x12", 4: b"\x12"}, "ready", "ready"),
        ({1: b"\x1a", 2: b"\x16", 3: b"\x12", 4: b"\x12"}, "head_open", "cover open (close it to resume)"),
        ({1: b"\x1a", 2: b"\x32", 3: b"\x12", 4: b"\x72"}, "paper_out", "paper end (load a roll to resume)"),
        ({1: b"\x12", 4: b"\x1e"}, "ready", "ready, paper near end"),
        ({1: b"\x1a"}, "offline", "printer reports offline"),
        ({3: b"\x1a"}, "error", "auto-cutter error"),
        ({3: b"\x32"}, "error", "unrecoverable error (power-cycle the printer)"),
        ({}, "unknown", "no status answers"),
    ],
)
def test_escpos_state(answers: dict[int, bytes], state: str, detail: str) -> None:
    assert escpos_status.state_of(escpos_status.parse_status(answers)) == (state, detail)


@pytest.mark.parametrize(
    ("n", "answer", "message"),
    [
        (1, b"", "Failed to parse DLE EOT 1 answer b'': expected exactly 1 byte"),
        (2, b"\x12\x12", "Failed to parse DLE EOT 2 answer b'\\x12\\x12': expected exactly 1 byte"),
        (4, b"\xff", "Failed to parse DLE EOT 4 answer 0xff: expected bits 1 and 4 set and "
                     "bits 0 and 7 clear"),
    ],
)
def test_escpos_garbage(n: int, answer: bytes, message: str) -> None:
    with pytest.raises(StatusParseError) as info:
        escpos_status.parse_dle_eot(n, answer)
    assert str(info.value) == message


def test_escpos_request() -> None:
    assert escpos_status.request(4) == b"\x10\x04\x04"
    with pytest.raises(ValueError, match="must be 1, 2, 3 or 4, got 5"):
        escpos_status.request(5)
