"""Keyboard-wedge scanners: Linux key events in, characters out.

A wedge scanner types what it reads as key presses, as if on a keyboard with the layout
configured in the scanner. The host must interpret those presses with the *same* layout,
or ``/`` becomes ``-`` on a German host. This module holds the layouts (``us``, ``uk``,
``de``, ``fr``) and :class:`KeyTranslator`, a pure state machine fed with
``(type, code, value)`` input events that returns completed reads. It needs neither
python-evdev nor a device: key codes are the values of Linux ``input-event-codes.h``.

Group separator (GS, 0x1D) over a wedge, which GS1 element strings need after every
variable-length field, arrives in one of three ways, all recognised in every layout:

* Alt + keypad decimal code (``Alt`` held, ``KP0 KP0 KP2 KP9``, ``Alt`` released), the
  Windows convention. A leading ``0`` selects Windows-1252, no leading ``0`` selects
  ASCII below 128 (code page 437 above); values below 32 are control characters in both.
* ``Ctrl`` + ``]``. Scanners in "control + ASCII" mode press the US key position
  ``KEY_RIGHTBRACE`` whatever their keyboard country, so that key is GS with Ctrl in
  every layout; the key that types ``]`` in the configured layout is accepted too.
* A configured substitute character (``gs_substitute``, e.g. ``|``) that the scanner
  sends in place of GS.

Control characters also come as ``Ctrl`` (or ``Ctrl+Shift``) + a key, as on a terminal:
``Ctrl+A`` ... ``Ctrl+Z`` are 0x01-0x1A (``Ctrl+M`` is CR, ``Ctrl+Shift+J`` LF), ``Ctrl+@``
NUL, ``Ctrl+[`` ESC, ``Ctrl+\\`` FS, ``Ctrl+]`` GS, ``Ctrl+^`` RS, ``Ctrl+_`` US. Keypad
digits and operators type their characters whatever the Num Lock state (a scanner uses the
keypad only to type them); Num Lock presses around Alt codes, as Datalogic scanners send
them, type nothing.

Real wedges press keys that type nothing: a suffix such as Enter followed by Down Arrow,
a lone Shift, an F-key. The *suffix* (``suffix``, default ``["enter"]``) is the sequence of
keys that ends a read: the first completes the read at once, the rest are taken as its
end when they follow. Any other key that types no character (arrows, Home/End, Page keys,
F-keys, Esc, a modifier pressed alone) makes no read when no read is under way: it is
counted (:attr:`KeyTranslator.ignored_keys`) and logged at debug level. Inside a read,
nothing is dropped: a key with no character in the layout leaves a visible placeholder
(U+FFFD) and an error naming the key and the layout.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "EV_KEY",
    "EV_MSC",
    "EV_SYN",
    "GS",
    "LAYOUTS",
    "PLACEHOLDER",
    "SUFFIX_KEYS",
    "SYN_DROPPED",
    "SYN_REPORT",
    "KeyRead",
    "KeyStroke",
    "KeyTranslator",
    "Layout",
    "key_name",
    "keystrokes_for",
    "wedge_events",
]

# Event types and codes, linux/input-event-codes.h.
EV_SYN = 0x00
EV_KEY = 0x01
EV_MSC = 0x04
SYN_REPORT = 0
SYN_DROPPED = 3

KEY_ESC = 1
KEY_1, KEY_2, KEY_3, KEY_4, KEY_5, KEY_6, KEY_7, KEY_8, KEY_9, KEY_0 = range(2, 12)
KEY_MINUS = 12
KEY_EQUAL = 13
KEY_BACKSPACE = 14
KEY_TAB = 15
KEY_Q, KEY_W, KEY_E, KEY_R, KEY_T, KEY_Y, KEY_U, KEY_I, KEY_O, KEY_P = range(16, 26)
KEY_LEFTBRACE = 26
KEY_RIGHTBRACE = 27
KEY_ENTER = 28
KEY_LEFTCTRL = 29
KEY_A, KEY_S, KEY_D, KEY_F, KEY_G, KEY_H, KEY_J, KEY_K, KEY_L = range(30, 39)
KEY_SEMICOLON = 39
KEY_APOSTROPHE = 40
KEY_GRAVE = 41
KEY_LEFTSHIFT = 42
KEY_BACKSLASH = 43
KEY_Z, KEY_X, KEY_C, KEY_V, KEY_B, KEY_N, KEY_M = range(44, 51)
KEY_COMMA = 51
KEY_DOT = 52
KEY_SLASH = 53
KEY_RIGHTSHIFT = 54
KEY_KPASTERISK = 55
KEY_LEFTALT = 56
KEY_SPACE = 57
KEY_CAPSLOCK = 58
KEY_NUMLOCK = 69
KEY_SCROLLLOCK = 70
KEY_KP7, KEY_KP8, KEY_KP9, KEY_KPMINUS = 71, 72, 73, 74
KEY_KP4, KEY_KP5, KEY_KP6, KEY_KPPLUS = 75, 76, 77, 78
KEY_KP1, KEY_KP2, KEY_KP3, KEY_KP0, KEY_KPDOT = 79, 80, 81, 82, 83
KEY_102ND = 86
KEY_KPENTER = 96
KEY_RIGHTCTRL = 97
KEY_KPSLASH = 98
KEY_RIGHTALT = 100
KEY_HOME, KEY_UP, KEY_PAGEUP, KEY_LEFT, KEY_RIGHT = 102, 103, 104, 105, 106
KEY_END, KEY_DOWN, KEY_PAGEDOWN = 107, 108, 109
KEY_INSERT, KEY_DELETE = 110, 111
KEY_KPEQUAL = 117
KEY_KPCOMMA = 121
KEY_LEFTMETA = 125
KEY_RIGHTMETA = 126
KEY_F13 = 183
KEY_KPLEFTPAREN, KEY_KPRIGHTPAREN = 179, 180

GS = "\x1d"
PLACEHOLDER = "\ufffd"

_KEY_NAMES: dict[int, str] = {
    value: name
    for name, value in globals().items()
    if name.startswith("KEY_") and isinstance(value, int)
}
_KEY_NAMES.update({59 + i: f"KEY_F{i + 1}" for i in range(10)})
_KEY_NAMES.update({87: "KEY_F11", 88: "KEY_F12"})
_KEY_NAMES.update({183 + i: f"KEY_F{13 + i}" for i in range(12)})

_KEYPAD_DIGITS = {
    KEY_KP0: 0, KEY_KP1: 1, KEY_KP2: 2, KEY_KP3: 3, KEY_KP4: 4,
    KEY_KP5: 5, KEY_KP6: 6, KEY_KP7: 7, KEY_KP8: 8, KEY_KP9: 9,
}
# KEY_KPDOT is missing: it types the layout's decimal separator (Layout.keypad_decimal).
_KEYPAD_CHARS = {
    **{code: str(digit) for code, digit in _KEYPAD_DIGITS.items()},
    KEY_KPSLASH: "/", KEY_KPASTERISK: "*", KEY_KPMINUS: "-", KEY_KPPLUS: "+", KEY_KPEQUAL: "=",
    KEY_KPCOMMA: ",", KEY_KPLEFTPAREN: "(", KEY_KPRIGHTPAREN: ")",
}
_KEYPAD_CODES = {digit: code for code, digit in _KEYPAD_DIGITS.items()}
_SHIFTS = frozenset({KEY_LEFTSHIFT, KEY_RIGHTSHIFT})
_CTRLS = frozenset({KEY_LEFTCTRL, KEY_RIGHTCTRL})
_METAS = frozenset({KEY_LEFTMETA, KEY_RIGHTMETA})
_MODIFIERS = _SHIFTS | _CTRLS | _METAS | {KEY_LEFTALT, KEY_RIGHTALT}
_LOCKS = frozenset({KEY_CAPSLOCK, KEY_NUMLOCK, KEY_SCROLLLOCK})  # toggle a state, type nothing
_TYPING = frozenset({KEY_ENTER, KEY_KPENTER, KEY_TAB, KEY_KPDOT, *_KEYPAD_CHARS})  # besides the layouts' keys

# Control characters typed as Ctrl + the key of a character (ASCII: the character's code
# minus 0x40), beside Ctrl + a letter.
_CONTROL = {"@": "\x00", "[": "\x1b", "\\": "\x1c", "]": GS, "^": "\x1e", "_": "\x1f"}

# Suffix keys by name (``suffix = ["enter", "down"]``): a name of a typing key stands for
# the control character it types however it is typed (Enter, keypad Enter, Ctrl+M or
# Alt+013 are all "enter"); the others are keys that type nothing.
_SUFFIX_CHARS = {"enter": "\r", "tab": "\t", "lf": "\n"}
_SUFFIX_KEYS = {
    "esc": KEY_ESC, "backspace": KEY_BACKSPACE, "up": KEY_UP, "down": KEY_DOWN, "left": KEY_LEFT,
    "right": KEY_RIGHT, "home": KEY_HOME, "end": KEY_END, "pageup": KEY_PAGEUP, "pagedown": KEY_PAGEDOWN,
    "insert": KEY_INSERT, "delete": KEY_DELETE,
    **{f"f{i + 1}": 59 + i for i in range(10)}, "f11": 87, "f12": 88,
    **{f"f{13 + i}": KEY_F13 + i for i in range(12)},
}
SUFFIX_KEYS: tuple[str, ...] = (*_SUFFIX_CHARS, *_SUFFIX_KEYS)
"""Every name a ``suffix`` may hold."""

_log = logging.getLogger(__name__)


def key_name(code: int) -> str:
    """``KEY_F13`` for 183; ``KEY_300`` for a code without a known name."""
    return _KEY_NAMES.get(code, f"KEY_{code}")


@dataclass(frozen=True, slots=True)
class Layout:
    """One keyboard layout: per key code, the characters of its levels.

    ``keys[code]`` is ``(plain, shift, altgr)``; an empty string means "nothing at that
    level". Caps Lock affects letters only: keys whose shifted character is the capital
    of the plain one (so ``ü`` -> ``Ü`` on ``de``, while ``é`` on the ``fr`` digit row and
    ``ß`` stay as they are); Shift with Caps Lock gives the small letter again, as on
    Linux and Windows. ``altgr`` says whether the right Alt key is AltGr (it is plain Alt
    on ``us``); ``keypad_decimal`` is what the keypad's decimal key types.
    """

    name: str
    keys: dict[int, tuple[str, str, str]]
    altgr: bool = True
    keypad_decimal: str = "."  # what KEY_KPDOT types (xkb: kpdl)
    letters: frozenset[int] = field(init=False)

    def __post_init__(self) -> None:
        letters = frozenset(
            code
            for code, (plain, shifted, _) in self.keys.items()
            if plain.isalpha() and plain.upper() == shifted
        )
        object.__setattr__(self, "letters", letters)

    def char(self, code: int, *, shift: bool, caps: bool, altgr: bool) -> str:
        levels = self.keys.get(code)
        if levels is None:
            return ""
        if altgr:
            return levels[2]
        if caps and code in self.letters:
            shift = not shift
        return levels[1] if shift else levels[0]


def _rows(*rows: tuple[tuple[int, ...], str, str]) -> dict[int, tuple[str, str, str]]:
    """Build ``keys`` from rows of (codes, plain characters, shifted characters)."""
    keys: dict[int, tuple[str, str, str]] = {}
    for codes, plain, shifted in rows:
        if not (len(codes) == len(plain) == len(shifted)):
            raise ValueError(f"layout row {plain!r}: {len(codes)} keys, {len(plain)} chars")
        for code, p, s in zip(codes, plain, shifted, strict=True):
            keys[code] = (p.strip("\0"), s.strip("\0"), "")
    return keys


def _with_altgr(
    keys: dict[int, tuple[str, str, str]], altgr: dict[int, str]
) -> dict[int, tuple[str, str, str]]:
    out = dict(keys)
    for code, char in altgr.items():
        plain, shifted, _ = out.get(code, ("", "", ""))
        out[code] = (plain, shifted, char)
    return out


_NUMBER_ROW = (KEY_GRAVE, *range(KEY_1, KEY_0 + 1), KEY_MINUS, KEY_EQUAL)
_TOP_ROW = (*range(KEY_Q, KEY_P + 1), KEY_LEFTBRACE, KEY_RIGHTBRACE)
_HOME_ROW = (*range(KEY_A, KEY_L + 1), KEY_SEMICOLON, KEY_APOSTROPHE, KEY_BACKSLASH)
_BOTTOM_ROW = (KEY_102ND, *range(KEY_Z, KEY_M + 1), KEY_COMMA, KEY_DOT, KEY_SLASH)
_COMMON = {KEY_SPACE: (" ", " ", "")}

# `\0` marks "no character at this level" so every row string keeps one char per key.
US = Layout(
    name="us",
    keys={
        **_rows(
            (_NUMBER_ROW, "`1234567890-=", "~!@#$%^&*()_+"),
            (_TOP_ROW, "qwertyuiop[]", "QWERTYUIOP{}"),
            (_HOME_ROW, "asdfghjkl;'\\", 'ASDFGHJKL:"|'),
            (_BOTTOM_ROW, "<zxcvbnm,./", ">ZXCVBNM<>?"),
        ),
        **_COMMON,
    },
    altgr=False,
)

UK = Layout(
    name="uk",
    keys=_with_altgr(
        {
            **_rows(
                (_NUMBER_ROW, "`1234567890-=", '¬!"£$%^&*()_+'),
                (_TOP_ROW, "qwertyuiop[]", "QWERTYUIOP{}"),
                (_HOME_ROW, "asdfghjkl;'#", "ASDFGHJKL:@~"),
                (_BOTTOM_ROW, "\\zxcvbnm,./", "|ZXCVBNM<>?"),
            ),
            **_COMMON,
        },
        # xkb gb: AltGr+4 euro, AltGr+` broken bar, AltGr+vowel acute accents.
        {KEY_4: "€", KEY_GRAVE: "¦", KEY_A: "á", KEY_E: "é", KEY_I: "í", KEY_O: "ó",
         KEY_U: "ú"},
    ),
)

# German QWERTZ (xkb de, nodeadkeys: ^ ´ ` type themselves). Y and Z swap places.
DE = Layout(
    name="de",
    keys=_with_altgr(
        {
            **_rows(
                (_NUMBER_ROW, "^1234567890ß´", '°!"§$%&/()=?`'),
                (_TOP_ROW, "qwertzuiopü+", "QWERTZUIOPÜ*"),
                (_HOME_ROW, "asdfghjklöä#", "ASDFGHJKLÖÄ'"),
                (_BOTTOM_ROW, "<yxcvbnm,.-", ">YXCVBNM;:_"),
            ),
            **_COMMON,
        },
        {KEY_Q: "@", KEY_E: "€", KEY_7: "{", KEY_8: "[", KEY_9: "]", KEY_0: "}",
         KEY_MINUS: "\\", KEY_102ND: "|", KEY_RIGHTBRACE: "~", KEY_2: "²", KEY_3: "³",
         KEY_M: "µ"},
    ),
    keypad_decimal=",",  # xkb de includes kpdl(comma)
)

# French AZERTY (xkb fr, nodeadkeys). Digits need Shift; punctuation sits unshifted.
FR = Layout(
    name="fr",
    keys=_with_altgr(
        {
            **_rows(
                (_NUMBER_ROW, "²&é\"'(-è_çà)=", "\0" + "1234567890°+"),
                (_TOP_ROW, "azertyuiop^$", "AZERTYUIOP¨£"),
                (_HOME_ROW, "qsdfghjklmù*", "QSDFGHJKLM%µ"),
                (_BOTTOM_ROW, "<wxcvbn,;:!", ">WXCVBN?./§"),
            ),
            **_COMMON,
        },
        {KEY_2: "~", KEY_3: "#", KEY_4: "{", KEY_5: "[", KEY_6: "|", KEY_7: "`",
         KEY_8: "\\", KEY_9: "^", KEY_0: "@", KEY_MINUS: "]", KEY_EQUAL: "}",
         KEY_E: "€", KEY_RIGHTBRACE: "¤"},
    ),
)

LAYOUTS: dict[str, Layout] = {layout.name: layout for layout in (US, UK, DE, FR)}


@dataclass(frozen=True, slots=True)
class KeyStroke:
    """One key press a wedge makes to type a character: the key and its modifiers."""

    code: int
    shift: bool = False
    altgr: bool = False


def keystrokes_for(layout: str) -> dict[str, KeyStroke]:
    """The inverse of a layout: for each character it can type, the simplest key press.

    This is what a wedge configured for ``layout`` does to type a character; tests use it
    to generate events, and ``gatewayd devices`` could use it to explain a layout.
    """
    table = _layout(layout)
    strokes: dict[str, KeyStroke] = {}
    for code in sorted(table.keys):
        plain, shifted, altgr = table.keys[code]
        for char, stroke in (
            (plain, KeyStroke(code)),
            (shifted, KeyStroke(code, shift=True)),
            (altgr, KeyStroke(code, altgr=True)),
        ):
            if char and char not in strokes:
                strokes[char] = stroke
    return strokes


def wedge_events(
    text: str, *, layout: str, terminator: int | None = KEY_ENTER
) -> list[tuple[int, int, int]]:
    """The ``(type, code, value)`` events a wedge in ``layout`` emits to type ``text``.

    Each key press and release is followed by ``SYN_REPORT``, as the kernel delivers
    them. Control characters below 0x20 (GS among them) are typed as Alt + keypad
    ``0nnn``. The simulated scanner, the tests and the uinput device test use this.
    """
    strokes = keystrokes_for(layout)
    altgr_key = KEY_RIGHTALT if LAYOUTS[layout].altgr else None
    events: list[tuple[int, int, int]] = []

    def tap(code: int, *modifiers: int) -> None:
        for modifier in modifiers:
            events.extend([(EV_KEY, modifier, 1), (EV_SYN, SYN_REPORT, 0)])
        events.extend([(EV_KEY, code, 1), (EV_SYN, SYN_REPORT, 0)])
        events.extend([(EV_KEY, code, 0), (EV_SYN, SYN_REPORT, 0)])
        for modifier in reversed(modifiers):
            events.extend([(EV_KEY, modifier, 0), (EV_SYN, SYN_REPORT, 0)])

    for char in text:
        if ord(char) < 0x20:
            events.extend([(EV_KEY, KEY_LEFTALT, 1), (EV_SYN, SYN_REPORT, 0)])
            for digit in f"{ord(char):04d}":
                tap(_KEYPAD_CODES[int(digit)])
            events.extend([(EV_KEY, KEY_LEFTALT, 0), (EV_SYN, SYN_REPORT, 0)])
            continue
        stroke = strokes.get(char)
        if stroke is None:
            raise ValueError(f"character {char!r} cannot be typed in layout {layout}")
        modifiers = [KEY_LEFTSHIFT] if stroke.shift else []
        if stroke.altgr:
            if altgr_key is None:
                raise ValueError(f"layout {layout} has no AltGr for {char!r}")
            modifiers.append(altgr_key)
        tap(stroke.code, *modifiers)
    if terminator is not None:
        tap(terminator)
    return events


def _layout(name: str) -> Layout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ValueError(
            f"unknown keyboard layout {name!r}: expected one of {', '.join(LAYOUTS)}"
        ) from None


@dataclass(frozen=True, slots=True)
class KeyRead:
    """One completed read: the characters typed, UTF-8 encoded, and what went wrong."""

    data: bytes
    errors: tuple[str, ...] = ()


@dataclass(slots=True)
class _Pending:
    chars: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    length: int = 0


class KeyTranslator:
    """Turns ``(type, code, value)`` input events into reads, one layout, no I/O.

    ``feed`` returns a :class:`KeyRead` when the first key of ``suffix`` completes one;
    ``flush`` returns the partial read when the driver's inter-key timeout expires. Key
    value 1 is a press, 0 a release, 2 autorepeat: a held key never repeats a character.
    ``SYN_DROPPED`` (the kernel's event buffer overran) discards the partial read and
    returns a read whose only content is that error, so the loss is published.
    :attr:`ignored_keys` counts the keys that typed nothing outside a read (module docstring).
    """

    def __init__(
        self,
        *,
        layout: str,
        suffix: Sequence[str] = ("enter",),
        gs_substitute: str | None = None,
        max_length: int = 4096,
    ) -> None:
        self._layout = _layout(layout)
        if isinstance(suffix, str) or not suffix:
            raise ValueError(f"suffix {suffix!r}: expected a list of key names such as ['enter'] or ['enter', 'down']")
        for name in suffix:
            if name not in SUFFIX_KEYS:
                raise ValueError(f"suffix key {name!r}: expected one of {', '.join(SUFFIX_KEYS)}")
        if gs_substitute is not None and len(gs_substitute) != 1:
            raise ValueError(f"gs_substitute {gs_substitute!r}: expected one character")
        if max_length < 1:
            raise ValueError(f"max_length {max_length}: expected at least 1")
        self._suffix = tuple(_SUFFIX_CHARS.get(name) or _SUFFIX_KEYS[name] for name in suffix)
        self._gs_substitute = gs_substitute
        self._max_length = max_length
        self._pending = _Pending()
        self._held: set[int] = set()
        self._caps = False
        self._alt_code: list[int] | None = None  # keypad digits typed while Alt is held
        self._dropping = False  # after SYN_DROPPED, until the next SYN_REPORT
        self._suffix_at = 0  # suffix keys already taken after the last read ended
        self._lone: int | None = None  # the modifier pressed last, while no other key followed
        self.ignored_keys = 0
        """Keys that typed nothing while no read was under way (suffix keys excluded)."""

    @property
    def layout(self) -> str:
        return self._layout.name

    @property
    def pending(self) -> bool:
        """Whether a partial read is waiting for its terminator or the timeout."""
        return bool(self._pending.chars or self._pending.errors or self._alt_code)

    def feed(self, type_: int, code: int, value: int) -> KeyRead | None:
        if type_ == EV_SYN:
            if code == SYN_DROPPED:
                return self._overrun()
            if code == SYN_REPORT:
                self._dropping = False
            return None
        if type_ != EV_KEY or self._dropping:
            return None  # EV_MSC scan codes, LEDs: nothing to translate
        if value == 0:
            return self._release(code)
        if value != 1:
            return None  # autorepeat of a held key types nothing more
        return self._press(code)

    def flush(self) -> KeyRead | None:
        """The partial read, if any (the driver calls this after the inter-key timeout)."""
        if self._alt_code:
            digits = "".join(map(str, self._alt_code))
            self._error(f"incomplete Alt+keypad code {digits}: Alt was not released")
            self._add(PLACEHOLDER)
            self._alt_code = []
        if not (self._pending.chars or self._pending.errors):
            return None
        return self._complete()

    def reset(self) -> None:
        """Forget modifiers and the partial read (a device was reopened); the count stays."""
        self._pending = _Pending()
        self._held.clear()
        self._caps = False
        self._alt_code = None
        self._dropping = False
        self._suffix_at = 0
        self._lone = None

    # -- internals ---------------------------------------------------------------------

    def _overrun(self) -> KeyRead:
        lost = len(self._pending.chars)
        self._pending = _Pending()
        # Key state is unknown after an overrun: assume every modifier was released.
        self._held.clear()
        self._alt_code = None
        self._dropping = True
        self._suffix_at = 0
        self._lone = None
        detail = f", {lost} characters discarded" if lost else ""
        return KeyRead(b"", (f"kernel input buffer overrun (SYN_DROPPED): partial read discarded{detail}",))

    def _release(self, code: int) -> KeyRead | None:
        self._held.discard(code)
        lone, self._lone = self._lone == code, None
        if self._is_alt(code) and self._alt_code is not None:
            digits, self._alt_code = self._alt_code, None
            if digits:
                return self._take(self._alt_char(digits))
        if lone and not (self._pending.chars or self._pending.errors):
            self._ignore(code, "pressed alone")
        return None

    def _press(self, code: int) -> KeyRead | None:
        self._held.add(code)
        if code in _LOCKS:
            if code == KEY_CAPSLOCK:
                self._caps = not self._caps
            return None  # Num Lock around Alt codes (Datalogic) must not end the Alt sequence
        if code in _MODIFIERS:
            if self._is_alt(code):
                self._alt_code = []
            self._lone = code
            return None
        self._lone = None
        if self._alt_code is not None and code in _KEYPAD_DIGITS:
            self._alt_code.append(_KEYPAD_DIGITS[code])
            return None
        return self._take(self._stroke(code))

    def _take(self, stroke: str | int) -> KeyRead | None:
        """One typed character (str) or key that types nothing (its code)."""
        if self._suffix_at:
            if stroke == self._suffix[self._suffix_at]:
                self._suffix_at = (self._suffix_at + 1) % len(self._suffix)
                return None  # the rest of the suffix that ended the last read
            self._suffix_at = 0
        reading = bool(self._pending.chars or self._pending.errors)
        if stroke == self._suffix[0]:
            self._suffix_at = 1 % len(self._suffix)
            if reading:
                return self._complete()
            self._ignore(stroke, "a suffix key with no read before it")
            return None
        if isinstance(stroke, int):
            if reading:
                self._add(self._unmapped(stroke, self._prefix()))
            else:
                self._ignore(stroke, "outside a read")
            return None
        self._add(stroke)
        return None

    def _ignore(self, key: str | int, why: str) -> None:
        self.ignored_keys += 1
        name = key_name(key) if isinstance(key, int) else repr(key)
        _log.debug("key %s typed nothing (%s): ignored, %d so far", name, why, self.ignored_keys)

    def _is_alt(self, code: int) -> bool:
        return code == KEY_LEFTALT or (code == KEY_RIGHTALT and not self._layout.altgr)

    def _prefix(self) -> str:
        if self._held & _CTRLS:
            return "Ctrl+"
        if self._alt_code is not None:
            return "Alt+"
        if self._layout.altgr and KEY_RIGHTALT in self._held:
            return "AltGr+"
        return "Shift+" if self._held & _SHIFTS else ""

    def _stroke(self, code: int) -> str | int:
        """What pressing ``code`` types now: a character, a placeholder for one the layout
        lacks, or the code itself for a key that types nothing on any keyboard."""
        if code not in _TYPING and not any(code in layout.keys for layout in LAYOUTS.values()):
            return code
        if self._alt_code is not None:
            return self._unmapped(code, "Alt+")  # Alt + anything but keypad digits
        if self._held & _CTRLS:
            return self._control_char(code)
        return self._char(code)

    def _char(self, code: int) -> str:
        if code in _KEYPAD_CHARS:
            return _KEYPAD_CHARS[code]
        if code == KEY_KPDOT:
            return self._layout.keypad_decimal
        if code in (KEY_ENTER, KEY_KPENTER):
            return "\r"
        if code == KEY_TAB:
            return "\t"
        shift = bool(self._held & _SHIFTS)
        altgr = self._layout.altgr and KEY_RIGHTALT in self._held
        char = self._layout.char(code, shift=shift, caps=self._caps, altgr=altgr)
        if not char:
            return self._unmapped(code, self._prefix())
        if char == self._gs_substitute:
            return GS
        return char

    def _control_char(self, code: int) -> str:
        # Ctrl+] is GS at the US position in every layout (see the module docstring).
        if code == KEY_RIGHTBRACE:
            return GS
        levels = self._layout.keys.get(code, ("", "", ""))
        if "]" in levels:
            return GS
        if code in (KEY_ENTER, KEY_KPENTER, KEY_TAB):
            return self._char(code)
        plain, shifted, _ = levels
        for char in (shifted, plain) if self._held & _SHIFTS else (plain,):
            if len(char) == 1 and char.isascii() and char.isalpha():
                return chr(ord(char.lower()) - ord("a") + 1)  # Ctrl+A = 0x01 ... Ctrl+Z = 0x1A
            if char in _CONTROL:
                return _CONTROL[char]
        return self._unmapped(code, "Ctrl+")

    def _alt_char(self, digits: list[int]) -> str:
        value = int("".join(map(str, digits)))
        if value > 255:
            self._error(f"Alt+keypad code {value} is above 255")
            return PLACEHOLDER
        if digits[0] == 0 or value < 128:
            char = bytes([value]).decode("cp1252", errors="replace")
        else:
            char = bytes([value]).decode("cp437")
        if char == "\ufffd":
            self._error(f"Alt+keypad code 0{value} has no character in Windows-1252")
        return char

    def _unmapped(self, code: int, prefix: str) -> str:
        self._error(f"key code {code} ({prefix}{key_name(code)}) has no mapping in layout {self._layout.name}")
        return PLACEHOLDER

    def _error(self, message: str) -> None:
        if message not in self._pending.errors:
            self._pending.errors.append(message)

    def _add(self, char: str) -> None:
        if self._pending.length >= self._max_length:
            self._error(f"read longer than {self._max_length} characters: the rest was cut")
            return
        self._pending.chars.append(char)
        self._pending.length += 1

    def _complete(self) -> KeyRead:
        pending, self._pending = self._pending, _Pending()
        return KeyRead("".join(pending.chars).encode("utf-8"), tuple(pending.errors))
