"""Writes the wedge event streams in this folder (run from the repository root).

The streams have the shape `evtest` shows for USB wedge scanners: an EV_MSC/MSC_SCAN with
the HID usage before each key event, SYN_REPORT after each, autorepeat (value 2) on a
held key, modifiers pressed around the key. They are synthesised in that shape, not
captured from a particular scanner: the key codes are what the layout dictates.
"""

from __future__ import annotations

import json
from pathlib import Path

from gatewayd_drivers import keymaps as k

HERE = Path(__file__).parent
Event = tuple[int, int, int]
SYN: Event = (k.EV_SYN, k.SYN_REPORT, 0)


def key(code: int, value: int) -> list[Event]:
    return [(k.EV_MSC, 4, 0x70000 + code), (k.EV_KEY, code, value), SYN]


def tap(code: int, *mods: int, hold: int = 0) -> list[Event]:
    out: list[Event] = []
    for m in mods:
        out += key(m, 1)
    out += key(code, 1)
    out += [(k.EV_KEY, code, 2), SYN] * hold
    out += key(code, 0)
    for m in reversed(mods):
        out += key(m, 0)
    return out


def text(s: str, layout: str) -> list[Event]:
    strokes = k.keystrokes_for(layout)
    out: list[Event] = []
    for ch in s:
        st = strokes[ch]
        mods = [k.KEY_LEFTSHIFT] if st.shift else []
        if st.altgr:
            mods.append(k.KEY_RIGHTALT)
        out += tap(st.code, *mods)
    return out


def alt_gs() -> list[Event]:
    out = key(k.KEY_LEFTALT, 1)
    for code in (k.KEY_KP0, k.KEY_KP0, k.KEY_KP2, k.KEY_KP9):
        out += tap(code)
    return out + key(k.KEY_LEFTALT, 0)


def write(name: str, description: str, events: list[Event]) -> None:
    body = {"description": description, "events": events}
    (HERE / name).write_text(json.dumps(body, indent=None) + "\n")


def main() -> None:
    write(
        "wedge_us_gs1_altcode.json",
        "us wedge, AIM id on, GS as Alt+KP0029, one held key (autorepeat), Enter suffix",
        text("]C1010950600013435210ABC", "us") + tap(k.KEY_1, hold=3) + text("23", "us")
        + alt_gs() + text("17271231", "us") + tap(k.KEY_ENTER),
    )
    caps = tap(k.KEY_CAPSLOCK)
    write(
        "wedge_de_capslock_altgr.json",
        "de wedge: Caps Lock toggled on and off mid-read, AltGr+Q for @, Shift+7 for /, "
        "two reads, the second ended by the inter-key timeout (no Enter)",
        caps + tap(k.KEY_L) + caps + text("ot", "de") + tap(k.KEY_Q, k.KEY_RIGHTALT)
        + caps + tap(k.KEY_A) + caps + text("/7-B", "de") + tap(k.KEY_ENTER)
        + text("xyz", "de"),
    )
    write(
        "wedge_fr_digits_ctrl_gs.json",
        "fr AZERTY wedge: digits with Shift, GS as Ctrl+] at the US position, Enter",
        text("]C110LOT-1", "fr") + tap(k.KEY_RIGHTBRACE, k.KEY_LEFTCTRL)
        + text("21a,b", "fr") + tap(k.KEY_ENTER),
    )


if __name__ == "__main__":
    main()
