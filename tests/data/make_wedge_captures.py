"""Writes the keyboard-wedge capture fixtures in tests/data/captures (run from the repository
root: ``.venv/bin/python -m tests.data.make_wedge_captures``).

The event streams have the shapes real wedges produce: ``evtest`` output of USB wedges (an
EV_MSC/MSC_SCAN with the HID usage before each key event, SYN_REPORT after each,
autorepeat on a held key), HID boot-keyboard reports as the kernel turns them into events
(Shift pressed in the same frame as its key, no MSC_SCAN), and the quirks seen on recorded
scanners: Enter followed by a Down Arrow, ``-*+`` typed on the keypad, every character as
Alt + keypad digits between Num Lock presses (Datalogic), a Ctrl+Shift+J line feed at the
end. Synthesised with our own data, not captured from a unit.
"""

from __future__ import annotations

from pathlib import Path

from gatewayd_drivers import keymaps as k
from gatewayd_drivers.capture import Capture, EvdevEvent, Record, format_capture

OUT = Path(__file__).parent / "captures"
SYN: EvdevEvent = (k.EV_SYN, k.SYN_REPORT, 0)


def key(code: int, value: int) -> list[EvdevEvent]:
    return [(k.EV_MSC, 4, 0x70000 + code), (k.EV_KEY, code, value), SYN]


def tap(code: int, *mods: int, hold: int = 0) -> list[EvdevEvent]:
    out: list[EvdevEvent] = []
    for m in mods:
        out += key(m, 1)
    out += key(code, 1)
    out += [(k.EV_KEY, code, 2), SYN] * hold
    out += key(code, 0)
    for m in reversed(mods):
        out += key(m, 0)
    return out


def text(s: str, layout: str) -> list[EvdevEvent]:
    strokes = k.keystrokes_for(layout)
    out: list[EvdevEvent] = []
    for ch in s:
        st = strokes[ch]
        mods = [k.KEY_LEFTSHIFT] if st.shift else []
        if st.altgr:
            mods.append(k.KEY_RIGHTALT)
        out += tap(st.code, *mods)
    return out


KEYPAD = dict(zip("0123456789", (k.KEY_KP0, k.KEY_KP1, k.KEY_KP2, k.KEY_KP3, k.KEY_KP4, k.KEY_KP5, k.KEY_KP6,
                                   k.KEY_KP7, k.KEY_KP8, k.KEY_KP9), strict=True))


def alt_code(digits: str) -> list[EvdevEvent]:
    out = key(k.KEY_LEFTALT, 1)
    for d in digits:
        out += tap(KEYPAD[d])
    return out + key(k.KEY_LEFTALT, 0)


def boot_frames(s: str) -> list[EvdevEvent]:
    """US text as a boot-keyboard wedge types it: Shift in the key's own frame, released
    with it; ``-*+`` on the keypad."""
    keypad = {"-": k.KEY_KPMINUS, "*": k.KEY_KPASTERISK, "+": k.KEY_KPPLUS}
    strokes = k.keystrokes_for("us")
    out: list[EvdevEvent] = []
    for ch in s:
        code, shift = (keypad[ch], False) if ch in keypad else (strokes[ch].code, strokes[ch].shift)
        down = [(k.EV_KEY, k.KEY_LEFTSHIFT, 1)] if shift else []
        up = [(k.EV_KEY, k.KEY_LEFTSHIFT, 0)] if shift else []
        out += [*down, (k.EV_KEY, code, 1), SYN, *up, (k.EV_KEY, code, 0), SYN]
    return out


def boot_tap(code: int) -> list[EvdevEvent]:
    return [(k.EV_KEY, code, 1), SYN, (k.EV_KEY, code, 0), SYN]


def timed(events: list[EvdevEvent], step: float = 0.002) -> tuple[Record, ...]:
    """A frame every ``step`` seconds (events up to SYN_REPORT share a time)."""
    records: list[Record] = []
    at = 0.0
    for event in events:
        records.append((round(at, 6), event))
        if event == SYN:
            at += step
    return tuple(records)


def write(name: str, layout: str, device: str, events: list[EvdevEvent], *, times: bool = False) -> None:
    records = timed(events) if times else tuple((None, e) for e in events)
    (OUT / name).write_text(format_capture(Capture("evdev", records, layout=layout, device=device)))


def main() -> None:
    write(
        "wedge_us_gs1_altcode.capture", "us",
        "us wedge, AIM id on, GS as Alt+KP0029, one held key (autorepeat), Enter suffix",
        text("]C1010950600013435210ABC", "us") + tap(k.KEY_1, hold=3) + text("23", "us")
        + alt_code("0029") + text("17271231", "us") + tap(k.KEY_ENTER),
    )
    caps = tap(k.KEY_CAPSLOCK)
    write(
        "wedge_de_capslock_altgr.capture", "de",
        "de wedge: Caps Lock toggled mid-read, AltGr+Q for @, Shift+7 for /; the second read has no "
        "suffix and ends by the inter-key timeout",
        caps + tap(k.KEY_L) + caps + text("ot", "de") + tap(k.KEY_Q, k.KEY_RIGHTALT)
        + caps + tap(k.KEY_A) + caps + text("/7-B", "de") + tap(k.KEY_ENTER) + text("xyz", "de"),
    )
    write(
        "wedge_fr_digits_ctrl_gs.capture", "fr",
        "fr AZERTY wedge: digits with Shift, GS as Ctrl+] at the US position, Enter",
        text("]C110LOT-1", "fr") + tap(k.KEY_RIGHTBRACE, k.KEY_LEFTCTRL) + text("21a,b", "fr") + tap(k.KEY_ENTER),
    )
    write(
        "wedge_boot_enter_down.capture", "us",
        "boot-keyboard wedge: Shift in the key's frame, -*+ on the keypad, Enter then Down Arrow after each read",
        boot_frames("https://example.com/l/A-1*2+3?q=Z_9") + boot_tap(k.KEY_ENTER) + boot_tap(k.KEY_DOWN)
        + boot_frames("SUP1-20261127-0003") + boot_tap(k.KEY_ENTER) + boot_tap(k.KEY_DOWN),
        times=True,
    )
    gs1 = "]C1010950600013435210ABC123\x1d17271231"
    write(
        "wedge_datalogic_altcodes.capture", "us",
        "Datalogic-style wedge: Num Lock pressed before and after, every character as Alt + KP0 + two keypad "
        "digits, GS as Alt+029, Enter",
        tap(k.KEY_NUMLOCK) + [e for ch in gs1 for e in alt_code(f"0{ord(ch):02d}")]
        + tap(k.KEY_NUMLOCK) + tap(k.KEY_ENTER),
        times=True,
    )
    write(
        "wedge_ctrl_shift_lf.capture", "us",
        "wedge ending each read with Ctrl+Shift+J (LF) instead of Enter",
        text("6901234567892", "us") + tap(k.KEY_J, k.KEY_LEFTCTRL, k.KEY_LEFTSHIFT)
        + text("SUP1-20261127-0004", "us") + tap(k.KEY_J, k.KEY_LEFTCTRL, k.KEY_LEFTSHIFT),
    )


if __name__ == "__main__":
    main()
