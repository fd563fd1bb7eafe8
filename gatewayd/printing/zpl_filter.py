"""Raw ZPL passthrough filter: label formats pass, printer reconfiguration is refused.

Raw passthrough is off by default (``allow_raw``). When on, the ZPL is checked against an
allow-list of label-format commands; anything else is refused by name (README
"Security"). The filter is deliberately stricter than a printer: every ``^`` or
``~`` (and the alternate prefixes 0x1E and 0x10) starts a command, also inside field data,
as it does on the printer unless ``^FH`` hex escapes are used (ZPL II Programming Guide,
^FD: field data may not contain the command prefixes).
"""

from __future__ import annotations

import re

from gatewayd.errors import PayloadError

__all__ = ["ALLOWED_COMMANDS", "DEFAULT_MAX_BYTES", "filter_raw_zpl"]

DEFAULT_MAX_BYTES = 256 * 1024

# ZPL II Programming Guide, "Format commands" that only describe the current label.
# Families written with a trailing "*" take any second character (font or symbology).
ALLOWED_COMMANDS = frozenset({
    "XA", "XZ",  # format start / end
    "FO", "FT", "FD", "FS", "FH", "FB", "FR", "FW", "FX", "FN", "FV", "FP", "FC", "FE",
    "A*", "CF", "CI", "CV", "BY", "B*", "TB",  # fonts, encoding, barcodes, text blocks
    "GB", "GC", "GD", "GE", "GF", "GS",  # graphics drawn inline
    "LH", "LL", "LR", "LS", "LT", "PW", "PO", "PM", "PR", "PQ", "PF",  # layout, quantity
    "MD", "MM", "MN", "SN", "SF", "XG",  # darkness, mode, media, serialisation, recall
})

_NETWORK = "network configuration is not allowed in raw passthrough"
_RECONFIGURE = "printer reconfiguration is not allowed in raw passthrough"
_MEMORY = "writing or deleting printer memory is not allowed in raw passthrough"
_PREFIX = "changing the command prefix or delimiter is not allowed in raw passthrough"
# Why a command is refused, by its first letter(s); more specific keys first.
_REASONS: tuple[tuple[str, str], ...] = (
    ("^CC", _PREFIX), ("~CC", _PREFIX), ("^CT", _PREFIX), ("~CT", _PREFIX),
    ("^CD", _PREFIX), ("~CD", _PREFIX),
    ("^KP", "setting the front-panel password is not allowed in raw passthrough"),
    ("^N", _NETWORK), ("~N", _NETWORK), ("^W", _NETWORK),
    ("~D", _MEMORY), ("^D", _MEMORY), ("^I", _MEMORY), ("~E", _MEMORY), ("^E", _MEMORY),
    ("^T", _MEMORY),
    ("^H", "host queries are not allowed in raw passthrough"),
    ("~H", "status queries go through the printer status path, not raw passthrough"),
    ("^J", _RECONFIGURE), ("~J", _RECONFIGURE), ("~S", _RECONFIGURE), ("~T", _RECONFIGURE),
    ("^K", _RECONFIGURE), ("^S", _RECONFIGURE), ("^M", _RECONFIGURE), ("^C", _RECONFIGURE),
    ("~", "control commands act on the printer at once and are not allowed in raw passthrough"),
)
_GENERIC = "only label-format commands are allowed in raw passthrough"

# Set-Get-Do lines (Zebra SGD: "! U1 setvar ...", "! U1 do ...") and JSON SGD ("{}{...}").
_SGD_RE = re.compile(rb"!\s*U1?\s+(?:setvar|getvar|do)\b|\{\s*\}\s*\{", re.IGNORECASE)
_PREFIXES = b"^~"
_NAME_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789@")


def filter_raw_zpl(zpl: str | bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """Return ``zpl`` (alternate prefixes normalised) or raise :class:`PayloadError`."""
    data = zpl.encode("utf-8") if isinstance(zpl, str) else bytes(zpl)
    if len(data) > max_bytes:
        raise PayloadError(f"raw ZPL of {len(data)} bytes: at most {max_bytes} bytes are accepted")
    # ZPL II guide ^CC/^CT: 0x1E and 0x10 are the alternate format and control prefixes.
    data = data.replace(b"\x1e", b"^").replace(b"\x10", b"~")
    sgd = _SGD_RE.search(data)
    if sgd:
        raise PayloadError(
            f"refused SGD command {sgd.group(0).decode('utf-8', 'replace').strip()!r}: "
            "printer settings are not allowed in raw passthrough"
        )
    in_format = False
    formats = 0
    i = 0
    length = len(data)
    while i < length:
        byte = data[i]
        if byte not in _PREFIXES:
            if not in_format and not chr(byte).isspace():
                raise PayloadError(
                    f"raw ZPL: unexpected data {data[i:i + 20]!r} outside ^XA ... ^XZ"
                )
            i += 1
            continue
        name = data[i + 1:i + 3]
        if len(name) < 2 or name[0] not in _NAME_CHARS or name[1] not in _NAME_CHARS:
            # A one-letter command, or a bare prefix: ^A followed by a parameter is
            # handled by the family rule below; anything else is refused as written.
            name = data[i + 1:i + 2]
        command = chr(byte) + name.decode("latin-1").upper()
        _check(command)
        if command == "^XA":
            if in_format:
                raise PayloadError("raw ZPL: ^XA inside a label format (missing ^XZ)")
            in_format = True
            formats += 1
        elif command == "^XZ":
            if not in_format:
                raise PayloadError("raw ZPL: ^XZ without ^XA")
            in_format = False
        elif not in_format:
            raise PayloadError(f"refused ZPL command {command}: commands must be inside ^XA ... ^XZ")
        i += 1 + len(name)
    if in_format:
        raise PayloadError("raw ZPL: label format not closed (missing ^XZ)")
    if not formats:
        raise PayloadError("raw ZPL: expected at least one label format ^XA ... ^XZ")
    return data


def _check(command: str) -> None:
    name = command[1:]
    if command[0] == "^" and len(name) == 2 and (
        name in ALLOWED_COMMANDS or f"{name[0]}*" in ALLOWED_COMMANDS
    ):
        return
    if command[0] == "^" and len(name) == 1 and f"{name}*" in ALLOWED_COMMANDS:
        return  # ^A or ^B directly followed by a parameter separator
    for prefix, reason in _REASONS:
        if command.startswith(prefix):
            raise PayloadError(f"refused ZPL command {command}: {reason}")
    raise PayloadError(f"refused ZPL command {command or '^'}: {_GENERIC}")
