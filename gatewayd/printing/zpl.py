"""Pure ZPL II encoder: a template and label data in, printer bytes out, no I/O.

Every piece of field data goes through :func:`escape_field` under ``^FH_`` so no value
from a barcode or a request can start a printer command (README "Security").
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from gatewayd.errors import PayloadError
from gatewayd.gs1 import fnc1_chunks
from gatewayd.printing.labels import (
    BoxElement,
    Code128Element,
    DataMatrixElement,
    Element,
    Gs1128Element,
    LabelData,
    QrElement,
    Template,
    TextElement,
    fill,
    fill_ai,
    gs1_elements,
    mm_to_dots,
)

__all__ = ["DPIS", "MAX_FIELD_BYTES", "code128_data", "escape_field", "qr_magnification",
           "render_zpl"]

DPIS = (203, 300, 600)
# ZPL II Programming Guide, ^FD: field data holds at most 3072 bytes.
MAX_FIELD_BYTES = 3072
# Bytes written as _XX under ^FH: the command prefixes ^ and ~, the ^FH indicator _ itself,
# \ (an escape in some ^CI28 firmware and ^FB line breaks) and every control byte, which
# covers 0x1E and 0x10, the alternate format and control prefixes (ZPL II guide, ^CC/^CT).
_ESCAPED = frozenset(b"^~_\\") | frozenset(range(0x20)) | {0x7F}
# Data Matrix escape character (^BX parameter g). Chosen outside GS1 character set 82 so
# GS1 values never contain it; it is doubled wherever it occurs in plain data.
_DM_ESCAPE = "#"
_HRI_HEIGHT_MM = 3.0


def escape_field(value: str) -> str:
    """Escape field data for ``^FH_`` (ZPL II Programming Guide, ^FH).

    ``^``, ``~``, ``_``, ``\\`` and every byte below 0x20 (and 0x7F) become ``_XX`` with
    upper-case hex; other characters stay literal, since ^CI28 reads the data as UTF-8.
    """
    out = []
    for char in value:
        encoded = char.encode("utf-8")
        if len(encoded) == 1 and encoded[0] in _ESCAPED:
            out.append(f"_{encoded[0]:02X}")
        else:
            out.append(char)
    return "".join(out)


def qr_magnification(module_mm: float, dpi: int) -> int:
    """^BQ magnification for a module of about ``module_mm``.

    ZPL II Programming Guide, ^BQ: the magnification (dots per module) is 1 to 10, so at
    600 dpi a module is at most 10 dots (0.42 mm).
    """
    return max(1, min(10, round(module_mm * dpi / 25.4)))


def render_zpl(
    template: Template, data: LabelData, *, dpi: int, resolver: str, copies: int = 1
) -> bytes:
    """One label format: ``^XA ... ^PQ{copies} ^XZ``, UTF-8 (^CI28)."""
    if dpi not in DPIS:
        raise ValueError(f"dpi: expected one of {DPIS}, got {dpi!r}")
    if not isinstance(copies, int) or isinstance(copies, bool) or not 1 <= copies <= 99_999_999:
        raise PayloadError(f"copies: expected a whole number from 1 to 99999999, got {copies!r}")
    values = data.values(resolver=resolver)
    template.check_fields(values)
    parts = [
        "^XA",
        "^CI28",  # ZPL II guide ^CI: 28 = Unicode UTF-8
        # ^JZN: no reprint after an error. With the default (Y) a printer reprints the label
        # it was on after paper out or head open, and a lot label printed twice is a phantom
        # lot; the job queue resumes at the first label not yet sent instead.
        "^JZN",
        f"^PW{mm_to_dots(template.width_mm, dpi)}",
        f"^LL{mm_to_dots(template.height_mm, dpi)}",
        "^LH0,0",
    ]
    for element in template.active(values):
        parts.append(_element(element, values, dpi=dpi, template=template.name))
    parts += [f"^PQ{copies}", "^XZ"]
    return ("\n".join(parts) + "\n").encode("utf-8")


def _fd(value: str) -> str:
    escaped = escape_field(value)
    if len(escaped.encode("utf-8")) > MAX_FIELD_BYTES:
        raise PayloadError(
            f"field data of {len(escaped.encode('utf-8'))} bytes: ZPL allows at most "
            f"{MAX_FIELD_BYTES}: {value[:40]!r}..."
        )
    return f"^FH_^FD{escaped}^FS"


def _fo(element: Element, dpi: int) -> str:
    return f"^FO{mm_to_dots(element.x, dpi)},{mm_to_dots(element.y, dpi)}"


def _element(element: Element, values: Mapping[str, str], *, dpi: int, template: str) -> str:
    fo = _fo(element, dpi)
    if isinstance(element, TextElement):
        text = fill(element.text, values, template=template)
        return f"{fo}^A{element.font}N,{mm_to_dots(element.height, dpi)},0{_fd(text)}"
    if isinstance(element, QrElement):
        text = fill(element.data, values, template=template)
        # ^BQ field data starts with the error correction level and the input mode
        # (A = automatic); the escaped data follows the comma (ZPL II guide, ^BQ).
        mag = qr_magnification(element.module, dpi)
        return f"{fo}^BQN,2,{mag}^FH_^FD{element.ecc}A,{escape_field(text)}^FS"
    if isinstance(element, Code128Element):
        text = fill(element.data, values, template=template)
        return _code128(fo, element.module, element.height, [text], dpi)
    if isinstance(element, Gs1128Element):
        pairs = gs1_elements(fill_ai(element.ai, values, template=template))
        if not pairs:
            raise PayloadError(f"GS1-128 in template {template!r}: none of its fields is given")
        # FNC1 (None) in first position marks GS1-128; another separates the chunks.
        chunks: list[str | None] = [None]
        for i, chunk in enumerate(fnc1_chunks(pairs)):
            chunks += [None, chunk] if i else [chunk]
        out = _code128(fo, element.module, element.height, chunks, dpi)
        if element.hri:
            hri = "".join(f"({ai}){value}" for ai, value in pairs)
            y = element.y + element.height + 1.0
            out += (f"\n^FO{mm_to_dots(element.x, dpi)},{mm_to_dots(y, dpi)}"
                    f"^A0N,{mm_to_dots(_HRI_HEIGHT_MM, dpi)},0{_fd(hri)}")
        return out
    if isinstance(element, DataMatrixElement):
        if element.ai:
            pairs = gs1_elements(fill_ai(element.ai, values, template=template))
            if not pairs:
                raise PayloadError(f"GS1 DataMatrix in template {template!r}: no field given")
            # ^BX escape sequence "#1" is FNC1: first = GS1 Data Matrix, later = separator.
            fnc1 = _DM_ESCAPE + "1"
            body = fnc1 + fnc1.join(fnc1_chunks(pairs))
        else:
            assert element.data is not None
            body = fill(element.data, values, template=template).replace(
                _DM_ESCAPE, _DM_ESCAPE * 2)
        dots = max(1, mm_to_dots(element.module, dpi))
        # ^BXo,h,s,c,r,f,g: quality 200 (ECC 200), automatic size, format 6 (8-bit),
        # escape character g (ZPL II guide, ^BX).
        return f"{fo}^BXN,{dots},200,0,0,6,{_DM_ESCAPE}{_fd(body)}"
    if isinstance(element, BoxElement):
        t = max(1, mm_to_dots(element.thickness, dpi))
        w = max(t, mm_to_dots(element.width, dpi))
        h = max(t, mm_to_dots(element.height, dpi))
        return f"{fo}^GB{w},{h},{t}^FS"
    raise TypeError(f"unknown element {element!r}")


def _code128(fo: str, module_mm: float, height_mm: float, chunks: list[str | None],
             dpi: int) -> str:
    width = max(1, min(10, mm_to_dots(module_mm, dpi)))  # ^BY module width: 1-10 dots
    height = mm_to_dots(height_mm, dpi)
    # ^BCo,h,f,g,e,m: no interpretation line (HRI is a separate text field), mode N so the
    # >-invocation codes below select subsets and FNC1 explicitly (ZPL II guide, ^BC).
    return f"{fo}^BY{width}^BCN,{height},N,N,N,N{_fd(code128_data(chunks))}"


_DIGIT_RUNS = re.compile(r"\d+|\D+")


def code128_data(chunks: list[str | None]) -> str:
    """^BC mode N data for text chunks and FNC1 (``None``).

    ZPL II Programming Guide, ^BC invocation codes: ``>:`` start subset B, ``>;`` start
    subset C, ``>5`` code C, ``>6`` code B (from subset C), ``>8`` FNC1, and in subset B
    ``>0`` is a literal ``>``. Runs of four or more digits use subset C.
    """
    tokens: list[tuple[str, str]] = []  # ("B" | "C" | "F", text)
    for chunk in chunks:
        if chunk is None:
            tokens.append(("F", ""))
            continue
        for run in _DIGIT_RUNS.findall(chunk):
            if run.isascii() and run.isdigit() and len(run) >= 4:
                odd = len(run) % 2
                if odd:
                    tokens.append(("B", run[0]))
                tokens.append(("C", run[odd:]))
            else:
                for char in run:
                    if not 32 <= ord(char) <= 126:
                        raise PayloadError(
                            f"Code 128 data: expected printable ASCII, got {char!r} in {chunk!r}"
                        )
                tokens.append(("B", run))
    first = next((kind for kind, _ in tokens if kind != "F"), "B")
    subset = first
    out = [">;" if first == "C" else ">:"]
    for kind, text in tokens:
        if kind == "F":
            out.append(">8")
            continue
        if kind != subset:
            out.append(">5" if kind == "C" else ">6")
            subset = kind
        out.append(text.replace(">", ">0") if kind == "B" else text)
    return "".join(out)
