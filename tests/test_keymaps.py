"""Key events -> characters, per layout, through the same translator the evdev driver runs."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatewayd_drivers import keymaps as k
from gatewayd_drivers.capture import parse_capture
from gatewayd_drivers.keymaps import (
    EV_KEY,
    EV_MSC,
    EV_SYN,
    LAYOUTS,
    PLACEHOLDER,
    SUFFIX_KEYS,
    SYN_DROPPED,
    SYN_REPORT,
    KeyRead,
    KeyTranslator,
    wedge_events,
)

CAPTURES = Path(__file__).parent / "data" / "captures"

# GS1 General Specifications, figure 7.11-1: the 82 characters of GS1 AI encodable
# character set 82.
CSET82 = (
    "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
)
Event = tuple[int, int, int]


def translate(events: list[Event], **kwargs: object) -> list[KeyRead]:
    translator = KeyTranslator(**kwargs)  # type: ignore[arg-type]
    reads = [read for event in events if (read := translator.feed(*event))]
    if (rest := translator.flush()) is not None:
        reads.append(rest)
    return reads


def press(code: int, *modifiers: int) -> list[Event]:
    """One key tapped with modifiers held, SYN_REPORT after every event."""
    syn = (EV_SYN, SYN_REPORT, 0)
    out: list[Event] = []
    for m in modifiers:
        out += [(EV_KEY, m, 1), syn]
    out += [(EV_MSC, 4, 0x70000 + code), (EV_KEY, code, 1), syn, (EV_KEY, code, 0), syn]
    for m in reversed(modifiers):
        out += [(EV_KEY, m, 0), syn]
    return out


def test_cset82_has_82_characters() -> None:
    assert len(set(CSET82)) == 82


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("char", list(CSET82))
def test_every_cset82_character_round_trips(layout: str, char: str) -> None:
    reads = translate(wedge_events(char, layout=layout), layout=layout)
    assert reads == [KeyRead(char.encode())]


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_gs1_element_string_with_alt_numpad_gs(layout: str) -> None:
    text = "]C1010950600013435210ABC-12/x\x1d17271231"
    reads = translate(wedge_events(text, layout=layout), layout=layout)
    assert reads == [KeyRead(text.encode())]


# Key positions stated independently of the tables (what the layout's keycaps show).
S, AG = k.KEY_LEFTSHIFT, k.KEY_RIGHTALT
POSITIONS = [
    ("us", press(k.KEY_2, S), "@"),
    ("us", press(k.KEY_APOSTROPHE, S), '"'),
    ("us", press(k.KEY_SLASH), "/"),
    ("us", press(k.KEY_RIGHTBRACE, S), "}"),
    ("us", press(k.KEY_KP7), "7"),
    ("uk", press(k.KEY_2, S), '"'),
    ("uk", press(k.KEY_APOSTROPHE, S), "@"),
    ("uk", press(k.KEY_3, S), "£"),
    ("uk", press(k.KEY_BACKSLASH), "#"),
    ("uk", press(k.KEY_102ND), "\\"),
    ("uk", press(k.KEY_4, AG), "€"),
    ("de", press(k.KEY_Y), "z"),
    ("de", press(k.KEY_Z, S), "Y"),
    ("de", press(k.KEY_7, S), "/"),
    ("de", press(k.KEY_SLASH), "-"),
    ("de", press(k.KEY_SLASH, S), "_"),
    ("de", press(k.KEY_MINUS), "ß"),
    ("de", press(k.KEY_MINUS, S), "?"),
    ("de", press(k.KEY_BACKSLASH, S), "'"),
    ("de", press(k.KEY_Q, AG), "@"),
    ("de", press(k.KEY_7, AG), "{"),
    ("de", press(k.KEY_8, AG), "["),
    ("de", press(k.KEY_9, AG), "]"),
    ("de", press(k.KEY_0, AG), "}"),
    ("de", press(k.KEY_MINUS, AG), "\\"),
    ("de", press(k.KEY_102ND, AG), "|"),
    ("de", press(k.KEY_RIGHTBRACE, AG), "~"),
    ("de", press(k.KEY_E, AG), "€"),
    ("de", press(k.KEY_SEMICOLON), "ö"),
    ("fr", press(k.KEY_Q), "a"),
    ("fr", press(k.KEY_A), "q"),
    ("fr", press(k.KEY_SEMICOLON), "m"),
    ("fr", press(k.KEY_1), "&"),
    ("fr", press(k.KEY_1, S), "1"),
    ("fr", press(k.KEY_0, S), "0"),
    ("fr", press(k.KEY_2), "é"),
    ("fr", press(k.KEY_M), ","),
    ("fr", press(k.KEY_COMMA, S), "."),
    ("fr", press(k.KEY_DOT, S), "/"),
    ("fr", press(k.KEY_8), "_"),
    ("fr", press(k.KEY_SLASH), "!"),
    ("fr", press(k.KEY_APOSTROPHE, S), "%"),
    ("fr", press(k.KEY_0, AG), "@"),
    ("fr", press(k.KEY_3, AG), "#"),
    ("fr", press(k.KEY_4, AG), "{"),
    ("fr", press(k.KEY_5, AG), "["),
    ("fr", press(k.KEY_6, AG), "|"),
    ("fr", press(k.KEY_7, AG), "`"),
    ("fr", press(k.KEY_8, AG), "\\"),
    ("fr", press(k.KEY_9, AG), "^"),
    ("fr", press(k.KEY_MINUS, AG), "]"),
    ("fr", press(k.KEY_EQUAL, AG), "}"),
]


@pytest.mark.parametrize(("layout", "events", "expected"), POSITIONS)
def test_key_positions(layout: str, events: list[Event], expected: str) -> None:
    assert translate(events, layout=layout) == [KeyRead(expected.encode())]


CAPS = [(EV_KEY, k.KEY_CAPSLOCK, 1), (EV_KEY, k.KEY_CAPSLOCK, 0), (EV_SYN, SYN_REPORT, 0)]


@pytest.mark.parametrize(
    ("layout", "events", "expected"),
    [
        ("us", CAPS + press(k.KEY_A) + press(k.KEY_1), "A1"),
        ("us", CAPS + press(k.KEY_A, S) + press(k.KEY_1, S), "a!"),
        ("us", CAPS + press(k.KEY_A) + CAPS + press(k.KEY_A), "Aa"),
        ("de", CAPS + press(k.KEY_SEMICOLON) + press(k.KEY_MINUS) + press(k.KEY_7), "Öß7"),
        ("fr", CAPS + press(k.KEY_Q) + press(k.KEY_1) + press(k.KEY_2), "A&é"),
        ("fr", CAPS + press(k.KEY_APOSTROPHE), "ù"),
    ],
    ids=["us-letters", "us-shift-cancels", "us-toggle-off", "de-umlaut", "fr-digit-row",
         "fr-u-grave"],
)
def test_caps_lock_affects_letters_only(layout: str, events: list[Event], expected: str) -> None:
    assert translate(events, layout=layout) == [KeyRead(expected.encode())]


def test_autorepeat_does_not_duplicate() -> None:
    events = [
        (EV_KEY, k.KEY_A, 1), (EV_SYN, SYN_REPORT, 0),
        (EV_KEY, k.KEY_A, 2), (EV_SYN, SYN_REPORT, 0),
        (EV_KEY, k.KEY_A, 2), (EV_SYN, SYN_REPORT, 0),
        (EV_KEY, k.KEY_A, 0), (EV_SYN, SYN_REPORT, 0),
        *press(k.KEY_ENTER),
    ]
    assert translate(events, layout="us") == [KeyRead(b"a")]


@pytest.mark.parametrize(
    ("layout", "events", "expected"),
    [
        ("us", press(k.KEY_RIGHTBRACE, k.KEY_LEFTCTRL), "\x1d"),
        ("de", press(k.KEY_RIGHTBRACE, k.KEY_LEFTCTRL), "\x1d"),  # US position
        ("de", press(k.KEY_9, k.KEY_RIGHTCTRL), "\x1d"),  # the key that types ] on de
        ("fr", press(k.KEY_MINUS, k.KEY_LEFTCTRL), "\x1d"),
        ("fr", press(k.KEY_Q, k.KEY_LEFTCTRL), "\x01"),  # Ctrl + the key labelled A
        ("us", press(k.KEY_J, k.KEY_LEFTCTRL, S), "\n"),  # Ctrl+Shift+letter is Ctrl+letter
        ("us", press(k.KEY_LEFTBRACE, k.KEY_LEFTCTRL), "\x1b"),  # Ctrl+[ ESC
        ("us", press(k.KEY_BACKSLASH, k.KEY_LEFTCTRL), "\x1c"),  # Ctrl+\\ FS
        ("us", press(k.KEY_6, k.KEY_LEFTCTRL, S), "\x1e"),  # Ctrl+^ RS
        ("us", press(k.KEY_MINUS, k.KEY_LEFTCTRL, S), "\x1f"),  # Ctrl+_ US
        ("us", press(k.KEY_2, k.KEY_LEFTCTRL, S), "\x00"),  # Ctrl+@ NUL
        ("de", press(k.KEY_GRAVE, k.KEY_RIGHTCTRL), "\x1e"),  # de types ^ unshifted left of 1
    ],
)
def test_ctrl_combinations(layout: str, events: list[Event], expected: str) -> None:
    typed_a = wedge_events("a", layout=layout, terminator=None)
    assert translate(typed_a + events, layout=layout) == [KeyRead(("a" + expected).encode())]


def test_ctrl_m_is_enter_and_ends_the_read() -> None:
    events = press(k.KEY_A) + press(k.KEY_M, k.KEY_LEFTCTRL) + press(k.KEY_B) + press(k.KEY_I, k.KEY_LEFTCTRL)
    assert translate(events, layout="us") == [KeyRead(b"a"), KeyRead(b"b\t")]
    assert translate(events, layout="us", suffix=["tab"]) == [KeyRead(b"a\rb")]


def alt_code(digits: str, alt: int = k.KEY_LEFTALT) -> list[Event]:
    codes = {0: k.KEY_KP0, 1: k.KEY_KP1, 2: k.KEY_KP2, 3: k.KEY_KP3, 4: k.KEY_KP4,
             5: k.KEY_KP5, 6: k.KEY_KP6, 7: k.KEY_KP7, 8: k.KEY_KP8, 9: k.KEY_KP9}
    out: list[Event] = [(EV_KEY, alt, 1), (EV_SYN, SYN_REPORT, 0)]
    for d in digits:
        out += press(codes[int(d)])
    return [*out, (EV_KEY, alt, 0), (EV_SYN, SYN_REPORT, 0)]


@pytest.mark.parametrize(
    ("layout", "digits", "expected", "errors"),
    [
        ("us", "0029", "\x1d", ()),
        ("de", "0029", "\x1d", ()),
        ("fr", "029", "\x1d", ()),
        ("uk", "29", "\x1d", ()),
        ("us", "065", "A", ()),
        ("us", "0128", "€", ()),  # Windows-1252
        ("us", "130", "é", ()),  # code page 437
        ("us", "0129", PLACEHOLDER, ("Alt+keypad code 0129 has no character in Windows-1252",)),
        ("us", "999", PLACEHOLDER, ("Alt+keypad code 999 is above 255",)),
    ],
)
def test_alt_keypad_codes(
    layout: str, digits: str, expected: str, errors: tuple[str, ...]
) -> None:
    assert translate(alt_code(digits), layout=layout) == [KeyRead(expected.encode(), errors)]


def test_right_alt_is_alt_on_us_but_altgr_on_de() -> None:
    assert translate(alt_code("0029", k.KEY_RIGHTALT), layout="us") == [KeyRead(b"\x1d")]
    # On de, AltGr + keypad digits types the digits.
    assert translate(alt_code("12", k.KEY_RIGHTALT), layout="de") == [KeyRead(b"12")]


@pytest.mark.parametrize(("layout", "sub"), [("us", "|"), ("de", "~"), ("fr", "#")])
def test_gs_substitute(layout: str, sub: str) -> None:
    events = wedge_events(f"10AB{sub}17", layout=layout)
    assert translate(events, layout=layout, gs_substitute=sub) == [KeyRead(b"10AB\x1d17")]


@pytest.mark.parametrize(
    ("layout", "events", "data", "errors"),
    [
        ("de", press(k.KEY_A) + press(k.KEY_F13), "a" + PLACEHOLDER,
         ("key code 183 (KEY_F13) has no mapping in layout de",)),
        ("us", press(k.KEY_Q, AG), PLACEHOLDER,
         ("key code 16 (Alt+KEY_Q) has no mapping in layout us",)),  # right Alt is Alt on us
        ("uk", press(k.KEY_Q, AG) + press(k.KEY_B), PLACEHOLDER + "b",
         ("key code 16 (AltGr+KEY_Q) has no mapping in layout uk",)),
        ("fr", press(k.KEY_GRAVE, S), PLACEHOLDER,
         ("key code 41 (Shift+KEY_GRAVE) has no mapping in layout fr",)),
        ("us", press(k.KEY_A) + press(k.KEY_ESC) + press(k.KEY_ESC), "a" + PLACEHOLDER * 2,
         ("key code 1 (KEY_ESC) has no mapping in layout us",)),
        ("us", press(k.KEY_A) + press(k.KEY_DOWN, S), "a" + PLACEHOLDER,
         ("key code 108 (Shift+KEY_DOWN) has no mapping in layout us",)),
        ("us", press(k.KEY_1, k.KEY_LEFTCTRL), PLACEHOLDER,
         ("key code 2 (Ctrl+KEY_1) has no mapping in layout us",)),
    ],
    ids=["f13", "us-alt-letter", "uk-altgr-q", "fr-shift-grave", "esc-twice", "shift-down", "ctrl-digit"],
)
def test_unmapped_keys_keep_a_placeholder(
    layout: str, events: list[Event], data: str, errors: tuple[str, ...]
) -> None:
    assert translate(events, layout=layout) == [KeyRead(data.encode(), errors)]


def test_syn_dropped_discards_partial_read_and_reports_it() -> None:
    t = KeyTranslator(layout="us")
    for event in press(k.KEY_A) + press(k.KEY_B, S):
        assert t.feed(*event) is None
    t.feed(EV_KEY, S, 1)  # Shift goes down, then the buffer overruns
    dropped = t.feed(EV_SYN, SYN_DROPPED, 0)
    assert dropped == KeyRead(
        b"",
        ("kernel input buffer overrun (SYN_DROPPED): partial read discarded, "
         "2 characters discarded",),
    )
    # Events up to the next SYN_REPORT are part of the lost packet: ignored.
    assert t.feed(EV_KEY, k.KEY_X, 1) is None
    reads = [r for e in [(EV_SYN, SYN_REPORT, 0), *press(k.KEY_C), *press(k.KEY_ENTER)]
             if (r := t.feed(*e))]
    assert reads == [KeyRead(b"c")]  # Shift state was reset with the overrun


def test_suffix_enter_or_tab() -> None:
    events = press(k.KEY_A) + press(k.KEY_TAB) + press(k.KEY_B) + press(k.KEY_KPENTER)
    assert translate(events, layout="us") == [KeyRead(b"a\tb")]
    assert translate(events, layout="us", suffix=["tab"]) == [KeyRead(b"a"), KeyRead(b"b\r")]
    # Alt+013 types CR: it ends a read like Enter
    assert translate(press(k.KEY_A) + alt_code("013") + press(k.KEY_B), layout="us") == [KeyRead(b"a"), KeyRead(b"b")]


def test_a_suffix_of_several_keys_is_taken_whole() -> None:
    t = KeyTranslator(layout="us", suffix=["enter", "down"])
    events = wedge_events("AB", layout="us") + press(k.KEY_DOWN) + wedge_events("CD", layout="us") + press(k.KEY_DOWN)
    assert [r for e in events if (r := t.feed(*e))] == [KeyRead(b"AB"), KeyRead(b"CD")]
    assert t.ignored_keys == 0
    # A Down that does not follow the Enter is a key that types nothing, not the suffix.
    for event in press(k.KEY_DOWN):
        assert t.feed(*event) is None
    assert t.ignored_keys == 1
    # A read may start right after the first suffix key: the rest of the suffix is then not expected.
    events = wedge_events("E", layout="us") + wedge_events("F", layout="us", terminator=None) + press(k.KEY_DOWN)
    assert [r for e in events if (r := t.feed(*e))] == [KeyRead(b"E")]
    assert t.flush() == KeyRead(b"F" + PLACEHOLDER.encode(), ("key code 108 (KEY_DOWN) has no mapping in layout us",))


# Keys that type nothing on any keyboard, and modifiers pressed alone.
NON_CHARACTER = [k.KEY_ESC, k.KEY_BACKSPACE, k.KEY_UP, k.KEY_DOWN, k.KEY_LEFT, k.KEY_RIGHT, k.KEY_HOME, k.KEY_END,
                 k.KEY_PAGEUP, k.KEY_PAGEDOWN, k.KEY_INSERT, k.KEY_DELETE, 59, 68, 87, 88, k.KEY_F13, 194, 113, 119]
MODIFIERS = [k.KEY_LEFTSHIFT, k.KEY_RIGHTSHIFT, k.KEY_LEFTCTRL, k.KEY_RIGHTCTRL, k.KEY_LEFTALT, k.KEY_RIGHTALT,
             k.KEY_LEFTMETA, k.KEY_RIGHTMETA]


def test_keys_that_type_nothing_outside_a_read_make_no_read_and_are_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    t = KeyTranslator(layout="us")
    events = [e for code in NON_CHARACTER + MODIFIERS + [k.KEY_ENTER] for e in press(code)]
    events += press(k.KEY_NUMLOCK) + press(k.KEY_SCROLLLOCK) + press(k.KEY_CAPSLOCK)  # lock keys: no count
    events += press(k.KEY_DOWN, k.KEY_LEFTCTRL)  # Ctrl is not alone: Down counts, Ctrl does not
    with caplog.at_level(logging.DEBUG, logger="gatewayd_drivers.keymaps"):
        assert [r for e in events if (r := t.feed(*e))] == []
    assert t.flush() is None
    assert t.ignored_keys == len(NON_CHARACTER) + len(MODIFIERS) + 1 + 1
    assert "key KEY_DOWN typed nothing (outside a read): ignored, 4 so far" in caplog.text
    assert "key KEY_LEFTSHIFT typed nothing (pressed alone)" in caplog.text
    assert "key '\\r' typed nothing (a suffix key with no read before it)" in caplog.text
    t.reset()
    assert t.ignored_keys == len(NON_CHARACTER) + len(MODIFIERS) + 2  # kept across a reconnect


_TEXT = st.text(st.sampled_from(CSET82), min_size=1, max_size=30)
_NOISE = st.lists(st.tuples(st.sampled_from(NON_CHARACTER + MODIFIERS), st.sampled_from([(), (S,), (k.KEY_LEFTCTRL,),
                                                                                        (k.KEY_LEFTALT,)])),
                  max_size=8)


@given(layout=st.sampled_from(sorted(LAYOUTS)), text=_TEXT, noise=_NOISE)
def test_a_read_followed_by_any_keys_that_type_nothing_is_exactly_that_read(
    layout: str, text: str, noise: list[tuple[int, tuple[int, ...]]]
) -> None:
    t = KeyTranslator(layout=layout)
    events = wedge_events(text, layout=layout)
    for code, modifiers in noise:
        events += press(code, *(m for m in modifiers if m != code))
    reads = [r for e in events if (r := t.feed(*e))]
    assert reads == [KeyRead(text.encode())]
    assert t.flush() is None
    assert t.ignored_keys == len(noise)


@pytest.mark.parametrize(
    ("layout", "code", "expected"),
    [("us", k.KEY_KPDOT, "."), ("de", k.KEY_KPDOT, ","), ("fr", k.KEY_KPDOT, "."), ("us", k.KEY_KPEQUAL, "="),
     ("us", k.KEY_KPCOMMA, ","), ("us", k.KEY_KPLEFTPAREN, "("), ("us", k.KEY_KPRIGHTPAREN, ")"),
     ("de", k.KEY_KPSLASH, "/"), ("fr", k.KEY_KPASTERISK, "*"), ("uk", k.KEY_KPMINUS, "-"), ("us", k.KEY_KPPLUS, "+")],
)
def test_keypad_keys_type_their_characters(layout: str, code: int, expected: str) -> None:
    # With Shift too: a wedge sends '*' as keypad '*' without caring about modifiers.
    assert translate(press(code) + press(code, S), layout=layout) == [KeyRead((expected * 2).encode())]


def test_alt_codes_between_num_lock_presses() -> None:
    # Datalogic: Num Lock pressed, every character as Alt + keypad digits, Num Lock again.
    events = press(k.KEY_NUMLOCK) + alt_code("065") + press(k.KEY_NUMLOCK) + alt_code("029")
    events += [(EV_KEY, k.KEY_LEFTALT, 1), *press(k.KEY_KP0), *press(k.KEY_NUMLOCK), *press(k.KEY_KP4),
               *press(k.KEY_KP9), (EV_KEY, k.KEY_LEFTALT, 0)]
    assert translate(events + press(k.KEY_ENTER), layout="us") == [KeyRead(b"A\x1d1")]


def test_flush_returns_partial_and_then_nothing() -> None:
    t = KeyTranslator(layout="us")
    for event in press(k.KEY_A):
        t.feed(*event)
    assert t.pending
    assert t.flush() == KeyRead(b"a")
    assert not t.pending
    assert t.flush() is None


def test_flush_with_alt_still_held() -> None:
    t = KeyTranslator(layout="us")
    for event in alt_code("0029")[:-2]:
        t.feed(*event)
    assert t.flush() == KeyRead(
        PLACEHOLDER.encode(), ("incomplete Alt+keypad code 0029: Alt was not released",))


def test_max_length_cuts_and_says_so() -> None:
    events = wedge_events("abcdef", layout="us")
    assert translate(events, layout="us", max_length=4) == [
        KeyRead(b"abcd", ("read longer than 4 characters: the rest was cut",))]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layout": "dvorak"}, "unknown keyboard layout 'dvorak': expected one of us, uk, de, fr"),
        ({"layout": "us", "suffix": ["space"]}, "suffix key 'space': expected one of " + ", ".join(SUFFIX_KEYS)),
        ({"layout": "us", "suffix": []}, "suffix []: expected a list of key names such as ['enter'] or "
         "['enter', 'down']"),
        ({"layout": "us", "suffix": "enter"}, "suffix 'enter': expected a list of key names such as ['enter'] or "
         "['enter', 'down']"),
        ({"layout": "us", "gs_substitute": "||"}, "gs_substitute '||': expected one character"),
    ],
)
def test_invalid_arguments(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        KeyTranslator(**kwargs)  # type: ignore[arg-type]


def load_capture(name: str) -> tuple[str, list[Event]]:
    capture = parse_capture((CAPTURES / name).read_text())
    assert capture.layout is not None
    return capture.layout, [p for _, p in capture.records if isinstance(p, tuple)]


@pytest.mark.parametrize(
    ("name", "suffix", "expected", "ignored"),
    [
        ("wedge_us_gs1_altcode.capture", ["enter"], [KeyRead(b"]C1010950600013435210ABC123\x1d17271231")], 0),
        ("wedge_de_capslock_altgr.capture", ["enter"], [KeyRead(b"Lot@A/7-B"), KeyRead(b"xyz")], 0),
        ("wedge_fr_digits_ctrl_gs.capture", ["enter"], [KeyRead(b"]C110LOT-1\x1d21a,b")], 0),
        ("wedge_boot_enter_down.capture", ["enter"],
         [KeyRead(b"https://example.com/l/A-1*2+3?q=Z_9"), KeyRead(b"SUP1-20261127-0003")], 2),
        ("wedge_boot_enter_down.capture", ["enter", "down"],
         [KeyRead(b"https://example.com/l/A-1*2+3?q=Z_9"), KeyRead(b"SUP1-20261127-0003")], 0),
        ("wedge_datalogic_altcodes.capture", ["enter"], [KeyRead(b"]C1010950600013435210ABC123\x1d17271231")], 0),
        ("wedge_ctrl_shift_lf.capture", ["lf"], [KeyRead(b"6901234567892"), KeyRead(b"SUP1-20261127-0004")], 0),
    ],
)
def test_recorded_streams(name: str, suffix: list[str], expected: list[KeyRead], ignored: int) -> None:
    layout, events = load_capture(name)
    t = KeyTranslator(layout=layout, suffix=suffix)
    reads = [read for event in events if (read := t.feed(*event))]
    if (rest := t.flush()) is not None:
        reads.append(rest)
    assert reads == expected
    assert t.ignored_keys == ignored
