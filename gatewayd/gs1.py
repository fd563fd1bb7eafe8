"""GS1 syntax shared by decoding reads and printing labels: one home for each rule.

- **Character set 82** (GS1 General Specifications 7.11, figure 7.11-1): the characters an
  alphanumeric AI value (format ``X``, e.g. AI (10) lot and (21) serial) may hold.
- **The AI table** is the one biip ships (the GS1 syntax dictionary); :func:`application_identifier`
  looks an AI up, :func:`value_lengths` reads its format.
- **Predefined lengths and FNC1** (GS1 General Specifications 7.8.5, figure 7.8.5-2): in a
  concatenated element string, every element string is followed by a separator (FNC1 in
  the symbol, transmitted as GS, 0x1D) unless its AI has a predefined length or it ends
  the symbol. :func:`predefined_length` says which AIs need none; :func:`fnc1_chunks`
  cuts element strings where a separator must go, for every barcode encoder, and the
  decoder splits reads by the same rule.

- **Check digits inside AIs** (:data:`CHECK_DIGIT_AIS`, :func:`check_ai_check_digits`): every
  AI whose format in the GS1 Barcode Syntax Dictionary carries the standard mod-10 check
  digit (GS1 General Specifications 7.9.1) or the alphanumeric check character pair (7.9.5,
  a prime-weighted sum modulo 1021), with the component it covers (AI 8003's starts after
  its leading zero).
- **GS1 Digital Link URIs** (GS1 Digital Link Standard: URI Syntax, release 1.6):
  :func:`split_dl_path` finds the primary key after any path prefix, scanning from the right
  as the GS1 Barcode Syntax Engine (GS1's reference implementation) does;
  :func:`parse_dl_query` reads the AI query parameters; the ``check_dl_*`` functions report
  what the engine rejects (a GTIN that is not 14 digits in the path, an empty query value, an
  AI repeated between path and query, a key qualifier or non-attribute AI in the query, a path
  that is not a key-qualifier sequence); :func:`check_digital_link` runs them all.

Section numbers follow recent releases of the GS1 General Specifications; they move between
releases (release 18 has the predefined lengths in figure 7.8.4-2).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from biip.gs1_application_identifiers import GS1ApplicationIdentifier

__all__ = [
    "CHECK_DIGIT_AIS",
    "CHECK_DIGIT_NAMES",
    "CSET32",
    "CSET82",
    "CSET82_CHARACTERS",
    "CSET82_CLASS",
    "DL_NOT_DATA_ATTRIBUTES",
    "DL_PRIMARY_KEYS",
    "GS",
    "CheckKind",
    "DigitalLinkError",
    "application_identifier",
    "check_ai_check_digits",
    "check_digital_link",
    "check_dl_path_gtin",
    "check_dl_path_qualifiers",
    "check_dl_query_ais",
    "check_uri_characters",
    "fnc1_chunks",
    "gs1_check_digit",
    "gs1_check_pair",
    "is_cset82",
    "is_known_ai",
    "parse_dl_query",
    "predefined_length",
    "split_dl_path",
    "value_lengths",
]

GS = "\x1d"
"""ASCII group separator: how scanners transmit FNC1 between element strings (7.8.5)."""

CSET82_CHARACTERS = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
"""GS1 AI encodable character set 82 (GS1 General Specifications figure 7.11-1), in order."""

CSET82 = frozenset(CSET82_CHARACTERS)
"""Character set 82 as a set, for membership tests."""

CSET82_CLASS = "[" + re.escape(CSET82_CHARACTERS) + "]"
"""Character set 82 as a regular expression character class, e.g. ``CSET82_CLASS + "{1,20}"``."""


def is_cset82(value: str) -> bool:
    """True when every character of ``value`` is in character set 82 (figure 7.11-1)."""
    return all(char in CSET82 for char in value)


@functools.lru_cache(maxsize=2048)
@functools.lru_cache(maxsize=4096)
def application_identifier(prefix: str) -> GS1ApplicationIdentifier | None:
    """The AI that ``prefix`` starts with (give up to 4 characters), or ``None``.

    AIs are prefix-free, so at most one matches. Cached: every element string of every
    read asks, and there are only so many 4-character prefixes. biip is imported on the
    first call (about 60 ms, its GS1 prefix tables), not with this module: the daemon
    loads it right after start (:func:`gatewayd.reads.decode.load_tables`).
    """
    from biip import ParseError
    from biip.gs1_application_identifiers import GS1ApplicationIdentifier

    try:
        return GS1ApplicationIdentifier.extract(prefix)
    except ParseError:
        return None


def is_known_ai(code: str) -> bool:
    """True when ``code`` is exactly an AI of the table (not merely the start of one)."""
    ai = application_identifier(code)
    return ai is not None and ai.ai == code


@functools.lru_cache(maxsize=1024)
def value_lengths(ai: GS1ApplicationIdentifier) -> tuple[int | None, int | None]:
    """(fixed length, maximum length) of the AI's value, from its format, e.g. ``N2+X..20``.

    The fixed length is set only for a single fixed-length numeric field (``N2+N14``).
    """
    parts = [p.strip("[]") for p in ai.format.split("+")[1:]]
    if len(parts) == 1 and re.fullmatch(r"N\d+", parts[0]):
        n = int(parts[0][1:])
        return n, n
    total = 0
    for part in parts:
        numbers = re.findall(r"\d+", part)
        total += int(numbers[-1]) if numbers else 1
    return None, total or None


@functools.lru_cache(maxsize=1024)
def predefined_length(code: str) -> int | None:
    """The length of the value of AI ``code`` when it is predefined, else ``None``.

    GS1 General Specifications 7.8.5, figure 7.8.5-2: an element string whose AI has a
    predefined length is never followed by a separator; any other one runs to the next
    FNC1 (GS) or the end of the data. ``None`` for an unknown AI too.
    """
    ai = application_identifier(code)
    if ai is None or ai.ai != code or ai.separator_required:
        return None
    fixed, _ = value_lengths(ai)
    return fixed


def fnc1_chunks(elements: Iterable[tuple[str, str]]) -> list[str]:
    """The element strings of (AI, value) pairs, concatenated in order and cut where FNC1
    must separate them: after a value whose AI has no predefined length, unless it is the
    last (GS1 General Specifications 7.8.5).

    ``[("01", gtin), ("17", "271231"), ("10", "L-1"), ("37", "40")]`` gives
    ``["01{gtin}1727123110L-1", "3740"]``. A barcode encoder puts FNC1 in first position
    (it marks GS1 data) and between the chunks; joined with :data:`GS`, the chunks are what
    a scanner transmits after the symbology identifier.
    """
    chunks: list[str] = []
    current = ""
    needs_separator = False
    for code, value in elements:
        if needs_separator:
            chunks.append(current)
            current = ""
        current += code + value
        needs_separator = predefined_length(code) is None
    if current:
        chunks.append(current)
    return chunks


# ---------------------------------------------------------------------------------------
# Check digits inside AIs

CheckKind = Literal["mod10", "mod1021"]
"""``mod10``: the standard GS1 check digit (syntax dictionary linter ``csum``). ``mod1021``: the
alphanumeric check character pair (linter ``csumalpha``; its sum is taken modulo 1021)."""

# GS1 General Specifications figure 7.11-3: the 32 characters a check character can be.
CSET32: Final = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def _primes(count: int) -> tuple[int, ...]:
    found: list[int] = []
    candidate = 2
    while len(found) < count:
        if all(candidate % p for p in found if p * p <= candidate):
            found.append(candidate)
        candidate += 1
    return tuple(found)


# Weights of the check character pair: 2 for the rightmost data character, then 3, 5, 7, ...
# leftwards. 97 covers the longest AI value (99 characters less the pair), as in the engine.
_PAIR_WEIGHTS: Final = _primes(97)

CHECK_DIGIT_AIS: Final[Mapping[str, tuple[int, int | None, CheckKind]]] = MappingProxyType(
    {
        # AI: (start of the component in the value, its length or None for "to the end", kind).
        # From the Syntax Dictionary entries (format after the AI, linters after the commas):
        "00": (0, 18, "mod10"),  # N18,csum                      SSCC
        "01": (0, 14, "mod10"),  # N14,csum                      GTIN
        "02": (0, 14, "mod10"),  # N14,csum                      CONTENT
        "03": (0, 14, "mod10"),  # N14,csum                      MTO GTIN
        "253": (0, 13, "mod10"),  # N13,csum [X..17]             GDTI
        "255": (0, 13, "mod10"),  # N13,csum [N..12]             GCN
        "402": (0, 17, "mod10"),  # N17,csum                     GSIN
        "410": (0, 13, "mod10"),  # N13,csum                     SHIP TO LOC
        "411": (0, 13, "mod10"),  # N13,csum                     BILL TO
        "412": (0, 13, "mod10"),  # N13,csum                     PURCHASE FROM
        "413": (0, 13, "mod10"),  # N13,csum                     SHIP FOR LOC
        "414": (0, 13, "mod10"),  # N13,csum                     LOC No.
        "415": (0, 13, "mod10"),  # N13,csum                     PAY TO
        "416": (0, 13, "mod10"),  # N13,csum                     PROD/SERV LOC
        "417": (0, 13, "mod10"),  # N13,csum                     PARTY
        "8003": (1, 13, "mod10"),  # N1,zero N13,csum [X..16]    GRAI
        "8006": (0, 14, "mod10"),  # N14,csum N4,pieceoftotal    ITIP
        "8013": (0, None, "mod1021"),  # X..25,csumalpha         GMN
        "8014": (0, None, "mod1021"),  # X..25,csumalpha,...     MUDI
        "8017": (0, 18, "mod10"),  # N18,csum                    GSRN - PROVIDER
        "8018": (0, 18, "mod10"),  # N18,csum                    GSRN - RECIPIENT
        "8026": (0, 14, "mod10"),  # N14,csum N4,pieceoftotal    ITIP CONTENT
    }
)
"""Every AI with a check digit or check character pair, per the GS1 Barcode Syntax Dictionary
(gs1-syntax-engine, src/c-lib/gs1-syntax-dictionary.txt). No other AI has one: 401 (GINC),
8004 (GIAI), 8010 (CPID), 7023 and 7040 are keys or key parts without a check character."""

CHECK_DIGIT_NAMES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "00": "SSCC",
        "01": "GTIN",
        "02": "GTIN",
        "03": "GTIN",
        "253": "GDTI",
        "255": "GCN",
        "402": "GSIN",
        **dict.fromkeys(("410", "411", "412", "413", "414", "415", "416", "417"), "GLN"),
        "8003": "GRAI",
        "8006": "ITIP",
        "8013": "GMN",
        "8014": "MUDI",
        "8017": "GSRN",
        "8018": "GSRN",
        "8026": "ITIP",
    }
)
"""The key each check digit belongs to, as named in messages (the decoder already says SSCC,
GTIN and GLN)."""


def gs1_check_digit(digits: str) -> int:
    """The GS1 mod-10 check digit for ``digits`` (the data without its check digit).

    GS1 General Specifications 7.9.1: weights 3, 1, 3, ... from the rightmost data digit; the
    check digit brings the weighted sum up to a multiple of 10.

    Raises:
        ValueError: If ``digits`` holds anything but ASCII digits.
    """
    if digits and not (digits.isascii() and digits.isdigit()):
        msg = f"not all digits: {digits!r}"
        raise ValueError(msg)
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return (10 - total % 10) % 10


def gs1_check_pair(data: str) -> str:
    """The two GS1 check characters for ``data`` (the data without its check characters).

    GS1 General Specifications 7.9.5: each character's value is its position in CSET 82, weighted
    by the primes 2, 3, 5, ... from the rightmost character leftwards; the sum modulo 1021 is
    split into two 5-bit values, each written as a CSET 32 character.

    Raises:
        ValueError: If ``data`` has a character outside CSET 82, or more than 97 characters.
    """
    if len(data) > len(_PAIR_WEIGHTS):
        msg = f"{len(data)} characters is more than the {len(_PAIR_WEIGHTS)} the check pair is defined for here"
        raise ValueError(msg)
    total = 0
    for weight, char in zip(_PAIR_WEIGHTS, reversed(data), strict=False):
        index = CSET82_CHARACTERS.find(char)
        if index < 0:
            msg = f"{char!r} is not in CSET 82"
            raise ValueError(msg)
        total += index * weight
    total %= 1021
    return CSET32[total >> 5] + CSET32[total & 31]


def check_ai_check_digits(ai: str, value: str) -> str | None:
    """What is wrong with the check digit (or check character pair) in one AI value, or None.

    None too for an AI without a check digit. The value is checked as read; a value too short
    to hold its check digit, or with a non-digit where digits are due, is reported as such (the
    decoder's format check usually says so first).
    """
    entry = CHECK_DIGIT_AIS.get(ai)
    if entry is None:
        return None
    start, length, kind = entry
    name = CHECK_DIGIT_NAMES[ai]
    if kind == "mod1021":
        return _pair_problem(ai, name, value)
    assert length is not None
    end = start + length
    if len(value) < end:
        return f"AI {ai}: {value!r} is too short for the {name} check digit at position {end - 1}"
    for pos in range(start, end):
        if value[pos] not in "0123456789":
            return f"AI {ai}: invalid character {value[pos]!r} at position {pos} in {value!r}"
    expected = gs1_check_digit(value[start : end - 1])
    got = value[end - 1]
    if int(got) == expected:
        return None
    where = "" if end == len(value) else f" at position {end - 1}"
    return f"AI {ai}: invalid {name} check digit in {value!r}: expected {expected}{where}, got {got}"


def _pair_problem(ai: str, name: str, value: str) -> str | None:
    if len(value) < 2:
        return f"AI {ai}: {value!r} is too short for the {name} check character pair"
    for pos, char in enumerate(value[:-2]):
        if char not in CSET82:
            return f"AI {ai}: invalid character {char!r} at position {pos} in {value!r}"
    try:
        expected = gs1_check_pair(value[:-2])
    except ValueError as exc:
        return f"AI {ai}: {name} check character pair not checked in {value!r}: {exc}"
    got = value[-2:]
    if got == expected:
        return None
    return f"AI {ai}: invalid {name} check character pair in {value!r}: expected {expected!r}, got {got!r}"


# ---------------------------------------------------------------------------------------
# GS1 Digital Link

DL_PRIMARY_KEYS: Final[Mapping[str, tuple[tuple[str, ...], ...]]] = MappingProxyType(
    {
        # Syntax Dictionary "dlpkey" attributes: the key, then its alternative qualifier
        # sequences ("22,10,21|235"); a path may hold an in-order selection of one of them.
        "00": ((),),
        "01": (("22", "10", "21"), ("235",)),
        "253": ((),),
        "255": ((),),
        "401": ((),),
        "402": ((),),
        "414": (("254",), ("7040",)),
        "415": (("8020",),),
        "417": (("7040",),),
        "8003": ((),),
        "8004": (("7040",),),
        "8006": (("22", "10", "21"),),
        "8010": (("8011",),),
        "8013": ((),),
        "8017": (("8019",),),
        "8018": (("8019",),),
    }
)
"""GS1 Digital Link primary keys and their key qualifiers (Syntax Dictionary ``dlpkey``)."""

DL_NOT_DATA_ATTRIBUTES: Final = frozenset(
    {"03", "21", "22", "235", "254", "7040", "7041", "8011", "8014", "8019", "8020", "8200"}
)
"""AIs the Syntax Dictionary does not flag ``?`` (permitted as a Digital Link data attribute):
the engine rejects them in the query ("AI (21) is not a valid DL URI data attribute")."""

# GS1 Digital Link URI Syntax: the characters a URI may hold (RFC 3986 unreserved, reserved,
# and "%"), as the engine checks before anything else.
_URI_CHARACTERS: Final = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%"
)
_HEX: Final = frozenset("0123456789abcdefABCDEF")
_GTIN_SHORT_LENGTHS: Final = frozenset({8, 12, 13})


class DigitalLinkError(ValueError):
    """The URI cannot be read as a GS1 Digital Link at all (no primary key, an empty path
    value, a NUL): the decoder reports "not a GS1 Digital Link URI: <message>"."""


def check_uri_characters(uri: str) -> str | None:
    """The first character a URI may not hold (raw space, ``"``, ``<``, ``|``, non-ASCII...)."""
    for pos, char in enumerate(uri):
        if char not in _URI_CHARACTERS:
            return f"character {char!r} at position {pos} is not allowed in a URI; it must be percent-encoded"
    return None


def _percent_decode(text: str, *, plus_is_space: bool) -> str | None:
    """``%hh`` becomes that byte ("%" without two hex digits stays as written), ``+`` a space
    in a query; None if a NUL results. Bytes that are not UTF-8 show as ``\\xNN``."""
    out = bytearray()
    i = 0
    n = len(text)
    while i < n:
        char = text[i]
        if char == "%" and i + 2 < n and text[i + 1] in _HEX and text[i + 2] in _HEX:
            out.append(int(text[i + 1 : i + 3], 16))
            i += 3
            continue
        if char == "+" and plus_is_space:
            out.append(0x20)
        else:
            out += char.encode("utf-8", errors="backslashreplace")
        i += 1
    if 0 in out:
        return None
    return out.decode("utf-8", errors="backslashreplace")


def split_dl_path(path: str) -> tuple[str, list[tuple[str, str]]]:
    """Split a Digital Link path into its prefix and its ``(AI, value)`` pairs, values decoded.

    As the engine's ``gs1_parseDLuri``: walk back from the end over ``/AI/value`` pairs while
    the AI is a known AI, and stop at the first whose AI is a primary key. Everything before it
    is the prefix (a custom URI stem's path, e.g. ``/some/path``; "" when there is none). So a
    prefix may itself hold AI-like segments (``/00/faux/00/<SSCC>`` has prefix ``/00/faux``).
    Percent-encoding is undone per segment, after the split, so ``%2F`` stays in a value;
    ``+`` is kept (it means "+" in a path).

    Raises:
        DigitalLinkError: If no primary key is found, a value is empty, or a value decodes to NUL.
    """
    segments = path.split("/")
    key_at: int | None = None
    i = len(segments) - 2
    while i >= 1:
        ai = segments[i]
        if not is_known_ai(ai):
            break
        if ai in DL_PRIMARY_KEYS:
            key_at = i
            break
        i -= 2
    if key_at is None:
        msg = f"no GS1 primary key AI (such as 01 or 00) in the path {path!r}"
        raise DigitalLinkError(msg)
    pairs: list[tuple[str, str]] = []
    for j in range(key_at, len(segments), 2):
        ai, raw = segments[j], segments[j + 1]
        if not raw:
            msg = f"AI {ai}: empty value in the path {path!r}"
            raise DigitalLinkError(msg)
        value = _percent_decode(raw, plus_is_space=False)
        if value is None:
            msg = f"AI {ai}: the path value {raw!r} decodes to a NUL character"
            raise DigitalLinkError(msg)
        pairs.append((ai, value))
    return "/".join(segments[:key_at]), pairs


def parse_dl_query(query: str) -> tuple[list[tuple[str, str]], list[str]]:
    """The AI parameters of a Digital Link query, in order (repeats kept), and the problems.

    As the engine: parameters are separated by ``&`` only; one without ``=`` and one whose key
    is not all digits (``linkType``, ``context``...) are not AIs and are skipped; an all-digit
    key that is not an AI is an error, and so is an AI with an empty value (``17=``), which is
    left out of the pairs. Values are percent-decoded with ``+`` as a space. An AI 01 of 8, 12
    or 13 digits is padded to 14, as the engine does in the query (but not in the path).
    """
    pairs: list[tuple[str, str]] = []
    problems: list[str] = []
    for param in query.split("&"):
        key, equals, raw = param.partition("=")
        if not equals or not (key.isascii() and key.isdigit()):
            continue
        if not is_known_ai(key):
            problems.append(f"unknown GS1 AI {key!r} in the Digital Link query")
            continue
        if not raw:
            problems.append(f"AI {key}: empty value in the Digital Link query ({key}=)")
            continue
        value = _percent_decode(raw, plus_is_space=True)
        if value is None:
            problems.append(f"AI {key}: the query value {raw!r} decodes to a NUL character")
            continue
        if key == "01" and len(value) in _GTIN_SHORT_LENGTHS and value.isascii() and value.isdigit():
            value = value.zfill(14)
        pairs.append((key, value))
    return pairs, problems


def check_dl_path_gtin(path_pairs: Sequence[tuple[str, str]]) -> str | None:
    """A GTIN-8, -12 or -13 written unpadded as the AI 01 value in the path.

    GS1 Digital Link URI Syntax ("Primary identification key formats": ``gtin-value =
    14DIGIT``; "the value of a GTIN-8, GTIN-12 or GTIN-13 SHALL be prefixed with leading zeroes
    ... to reach a total of 14 digits"). The engine rejects it ("AI (01) value is too short")
    unless its legacy option permitZeroSuppressedGTINinDLuris is set, which pads it.
    :func:`check_digital_link` does both: it pads the value and reports this problem.
    """
    for ai, value in path_pairs:
        if ai == "01" and len(value) in _GTIN_SHORT_LENGTHS and value.isascii() and value.isdigit():
            return (
                f"AI 01: {value!r} in the Digital Link path is a GTIN-{len(value)}; "
                f"GS1 Digital Link requires all 14 digits; read as {value.zfill(14)!r}"
            )
    return None


def _allowed_qualifiers(key: str) -> str:
    sequences = [seq for seq in DL_PRIMARY_KEYS[key] if seq]
    if not sequences:
        return f"{key} takes no key qualifiers"
    described = [", ".join(seq) + (" in that order" if len(seq) > 1 else "") for seq in sequences]
    return f"{key} takes only {' or '.join(described)}"


def _is_qualifier_sequence(key: str, qualifiers: Sequence[str]) -> bool:
    for allowed in DL_PRIMARY_KEYS.get(key, ()):
        position = 0
        for qualifier in qualifiers:
            try:
                position = allowed.index(qualifier, position) + 1
            except ValueError:
                break
        else:
            return True
    return False


def check_dl_path_qualifiers(path_pairs: Sequence[tuple[str, str]]) -> str | None:
    """The path's AIs must be the primary key then an in-order selection of one of its
    qualifier sequences (Syntax Dictionary ``dlpkey``; GS1 Digital Link URI Syntax, key
    qualifiers). The engine: "The AIs in the path are not a valid key-qualifier sequence for
    the key"."""
    if not path_pairs:
        return None
    ais = [ai for ai, _ in path_pairs]
    key = ais[0]
    if _is_qualifier_sequence(key, ais[1:]):
        return None
    return (
        f"AIs {', '.join(ais)} in the Digital Link path are not a valid key-qualifier sequence: "
        f"{_allowed_qualifiers(key)}"
    )


def check_dl_query_ais(path_pairs: Sequence[tuple[str, str]], query_pairs: Sequence[tuple[str, str]]) -> list[str]:
    """Problems with the query's AIs, at most one per query AI, in the engine's order.

    1. An AI given earlier, in the path or the query, even with the same value (engine:
       "AI (10) is duplicated").
    2. An AI that is not a Digital Link data attribute (engine: "AI (21) is not a valid DL URI
       data attribute").
    3. A key qualifier that belongs in the path: inserted into the path it would make a valid
       key-qualifier sequence (engine: "AI (10) from query params should be in the path info").
    """
    problems: list[str] = []
    path_values = dict(path_pairs)
    path_ais = [ai for ai, _ in path_pairs]
    seen_in_query: dict[str, str] = {}
    for ai, value in query_pairs:
        if ai in path_values:
            problems.append(
                f"AI {ai}: appears in both the Digital Link path and query, as {path_values[ai]!r} and {value!r}"
            )
        elif ai in seen_in_query:
            problems.append(f"AI {ai}: appears twice in the Digital Link query, as {seen_in_query[ai]!r} and {value!r}")
        elif ai in DL_NOT_DATA_ATTRIBUTES:
            problems.append(f"AI {ai}: not a GS1 Digital Link data attribute, so not allowed in the query")
        elif path_ais and any(
            _is_qualifier_sequence(path_ais[0], [*path_ais[1:at], ai, *path_ais[at:]])
            for at in range(1, len(path_ais) + 1)
        ):
            problems.append(
                f"AI {ai}: a key qualifier of {path_ais[0]}; it belongs in the Digital Link path, not the query"
            )
        seen_in_query.setdefault(ai, value)
    return problems


def check_digital_link(path: str, query: str) -> tuple[str, list[tuple[str, str]], list[str]]:
    """All the Digital Link rules above for one URI's path and query (as ``urlsplit`` gives them).

    Returns the path prefix, the ``(AI, value)`` elements (path, then query, repeats kept) and
    the problems. A GTIN-8, -12 or -13 in the path is padded to 14 digits *and* reported: the
    engine rejects it by default and pads it with its legacy option; gatewayd keeps the read
    usable (the GTIN is unambiguous) and still says that the URI breaks the standard. Check
    digits and formats of the values are not checked here (see check_ai_check_digits).

    Raises:
        DigitalLinkError: If the path has no primary key, an empty value, or a NUL.
    """
    prefix, path_pairs = split_dl_path(path)
    problems: list[str] = []
    gtin_problem = check_dl_path_gtin(path_pairs)
    if gtin_problem is not None:
        problems.append(gtin_problem)
        path_pairs = [
            (ai, value.zfill(14) if ai == "01" and len(value) in _GTIN_SHORT_LENGTHS else value)
            for ai, value in path_pairs
        ]
    sequence_problem = check_dl_path_qualifiers(path_pairs)
    if sequence_problem is not None:
        problems.append(sequence_problem)
    query_pairs, query_problems = parse_dl_query(query)
    problems.extend(query_problems)
    problems.extend(check_dl_query_ais(path_pairs, query_pairs))
    return prefix, [*path_pairs, *query_pairs], problems
