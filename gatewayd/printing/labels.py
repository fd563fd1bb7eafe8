"""Label model: validated field values, declarative templates, and filling one with the other.

A template is a TOML file (built-ins in ``gatewayd/data/labels/``, user files in
``[labels] templates_dir`` override them by name). It declares the label size in mm and a
list of elements (text, QR, Code 128, GS1-128, Data Matrix, box) positioned in mm; encoders
(:mod:`gatewayd.printing.zpl`, :mod:`gatewayd.printing.escpos_render`) convert mm to dots for the printer's dpi.

Template strings use ``{name}`` placeholders (``{{`` and ``}}`` are literal braces). Fields
come from the print request's label object; ``{link}`` is the GS1 Digital Link URI when a
GTIN is given, else the lot id; ``{expiry_yymmdd}`` is the GS1 date form of the expiry.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from biip import ParseError as BiipParseError
from biip.gtin import Gtin

from gatewayd.config.keys import Problems, Table
from gatewayd.errors import ConfigError, PayloadError
from gatewayd.gs1 import CSET82_CLASS, is_cset82

__all__ = [
    "BUILTIN_FIELDS",
    "BoxElement",
    "Code128Element",
    "DataMatrixElement",
    "Element",
    "FieldValues",
    "Gs1128Element",
    "LabelData",
    "QrElement",
    "Template",
    "TemplateLibrary",
    "TextElement",
    "digital_link",
    "fill",
    "fill_ai",
    "gs1_elements",
    "mm_to_dots",
    "parse_template",
]

BUILTIN_FIELDS = ("lot", "gtin", "expiry", "qty", "supplier", "serial")
# Fields computed from the others; a template may name them but a request may not set them.
DERIVED_FIELDS = ("link", "expiry_yymmdd")

MAX_LOT = 64
MAX_SUPPLIER = 35
MAX_SERIAL = 20
MAX_EXTRA_VALUE = 200
MAX_EXTRAS = 20
MAX_QTY = 99_999_999  # AI (37) holds at most 8 digits (GS1 General Specifications 3.6.6)

FIELD_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
EXPIRY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
GTIN_RE = re.compile(r"^(?:\d{8}|\d{12}|\d{13}|\d{14})$")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
PLACEHOLDER_RE = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def mm_to_dots(mm: float, dpi: int) -> int:
    """Millimetres to printer dots, rounded to the nearest dot."""
    return round(mm * dpi / 25.4)


# ---------------------------------------------------------------------------------------
# Field values


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelData:
    """The validated field values of one label."""

    lot: str | None = None
    gtin: str | None = None  # always 14 digits once validated
    expiry: date | None = None
    qty: int | None = None
    supplier: str | None = None
    serial: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_request(cls, fields: Mapping[str, object]) -> LabelData:
        """Validate one label object of a print request; raise :class:`PayloadError`."""
        if not isinstance(fields, Mapping):
            raise PayloadError(f"label: expected an object, got {fields!r}")
        lot = _text(fields, "lot", MAX_LOT)
        supplier = _text(fields, "supplier", MAX_SUPPLIER)
        serial = _text(fields, "serial", MAX_SERIAL)
        gtin_raw = _text(fields, "gtin", 14)
        gtin = _gtin(gtin_raw) if gtin_raw is not None else None
        expiry = _expiry(fields.get("expiry"))
        qty = _qty(fields.get("qty"))
        extra: dict[str, str] = {}
        for name in fields:
            if name in BUILTIN_FIELDS:
                continue
            if not isinstance(name, str) or not FIELD_NAME_RE.match(name) or name in DERIVED_FIELDS:
                raise PayloadError(
                    f"label field name {name!r}: expected 1-32 lower-case letters, digits "
                    f"or '_' starting with a letter, not one of {', '.join(DERIVED_FIELDS)}"
                )
            value = _text(fields, name, MAX_EXTRA_VALUE)
            if value is not None:
                extra[name] = value
        if len(extra) > MAX_EXTRAS:
            raise PayloadError(f"label: at most {MAX_EXTRAS} extra fields, got {len(extra)}")
        return cls(lot=lot, gtin=gtin, expiry=expiry, qty=qty, supplier=supplier,
                   serial=serial, extra=extra)

    def values(self, *, resolver: str) -> FieldValues:
        """Every available field as the string a template placeholder is replaced with."""
        out = FieldValues(self.extra)
        for name, value in (("lot", self.lot), ("gtin", self.gtin), ("supplier", self.supplier),
                            ("serial", self.serial)):
            if value is not None:
                out[name] = value
        if self.qty is not None:
            out["qty"] = str(self.qty)
        if self.expiry is not None:
            out["expiry"] = self.expiry.isoformat()
            out["expiry_yymmdd"] = self.expiry.strftime("%y%m%d")
        if self.gtin is not None:
            try:
                out["link"] = digital_link(resolver, gtin=self.gtin, lot=self.lot,
                                           expiry=self.expiry, serial=self.serial)
            except PayloadError as exc:
                # Only an error when a template actually uses {link}: see fill().
                out.link_error = str(exc)
        elif self.lot is not None:
            out["link"] = self.lot
        return out


class FieldValues(dict[str, str]):
    """Placeholder values; ``link_error`` says why ``{link}`` could not be built."""

    link_error: str | None = None


def _text(fields: Mapping[str, object], name: str, limit: int) -> str | None:
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadError(f"label field {name!r}: expected a string, got {value!r}")
    if not value:
        raise PayloadError(f"label field {name!r}: expected a non-empty string")
    if len(value) > limit:
        raise PayloadError(
            f"label field {name!r}: expected at most {limit} characters, got {len(value)}"
        )
    if CONTROL_RE.search(value):
        raise PayloadError(f"label field {name!r}: control characters are not allowed: {value!r}")
    return value


def _gtin(value: str) -> str:
    if not GTIN_RE.match(value):
        raise PayloadError(
            f"label field 'gtin': expected 8, 12, 13 or 14 digits, got {value!r}"
        )
    try:
        gtin = Gtin.parse(value)
    except BiipParseError as exc:
        raise PayloadError(f"label field 'gtin': {exc}") from None
    return gtin.as_gtin_14()


def _expiry(value: object) -> date | None:
    if value is None:
        return None
    if not isinstance(value, str) or not EXPIRY_RE.match(value):
        raise PayloadError(f"label field 'expiry': expected a date YYYY-MM-DD, got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise PayloadError(f"label field 'expiry': not a calendar date: {value!r}") from None


def _qty(value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_QTY:
        raise PayloadError(
            f"label field 'qty': expected a whole number from 1 to {MAX_QTY}, got {value!r}"
        )
    return value


# ---------------------------------------------------------------------------------------
# GS1


def digital_link(
    resolver: str, *, gtin: str, lot: str | None, expiry: date | None, serial: str | None = None
) -> str:
    """A GS1 Digital Link URI: ``{resolver}/01/{gtin}/10/{lot}?17={yymmdd}``.

    GS1 Digital Link 1.2, 4.4/4.5: path values are percent-encoded (only unreserved
    characters stay literal); the GTIN is shown as 14 digits; (21) follows (10) in the path
    and data attributes such as (17) go in the query string.
    """
    base = resolver.rstrip("/")
    if "://" not in base:
        base = f"https://{base}"
    gtin14 = gtin.zfill(14)
    if not re.fullmatch(r"\d{14}", gtin14):
        raise PayloadError(f"GTIN for a Digital Link: expected up to 14 digits, got {gtin!r}")
    uri = f"{base}/01/{gtin14}"
    if lot is not None:
        _check_cset82("lot", lot, 20)
        uri += f"/10/{quote(lot, safe='')}"
    if serial is not None:
        _check_cset82("serial", serial, 20)
        uri += f"/21/{quote(serial, safe='')}"
    if expiry is not None:
        uri += f"?17={expiry:%y%m%d}"
    return uri


def _check_cset82(name: str, value: str, limit: int) -> None:
    # GS1 General Specifications 3.2: AIs (10) and (21) are X..20 of character set 82.
    if not value or len(value) > limit or not is_cset82(value):
        raise PayloadError(
            f"{name} {value!r} cannot go into a GS1 barcode or Digital Link: expected 1-{limit} "
            "characters of GS1 character set 82 (A-Z a-z 0-9 and !\"%&'()*+,-./:;<=>?_)"
        )


# The AIs a template may use, with their value check (GS1 General Specifications 3.2).
AI_FORMATS: dict[str, tuple[str, re.Pattern[str]]] = {
    "01": ("14 digits", re.compile(r"^\d{14}$")),
    "02": ("14 digits", re.compile(r"^\d{14}$")),
    "10": ("1-20 characters of set 82", re.compile(rf"^{CSET82_CLASS}{{1,20}}$")),
    "11": ("6 digits YYMMDD", re.compile(r"^\d{6}$")),
    "15": ("6 digits YYMMDD", re.compile(r"^\d{6}$")),
    "17": ("6 digits YYMMDD", re.compile(r"^\d{6}$")),
    "21": ("1-20 characters of set 82", re.compile(rf"^{CSET82_CLASS}{{1,20}}$")),
    "37": ("1-8 digits", re.compile(r"^\d{1,8}$")),
}


def gs1_elements(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Check filled (AI, value) pairs against :data:`AI_FORMATS` and return them.

    Where FNC1 goes between them is :func:`gatewayd.gs1.fnc1_chunks`'s business.
    """
    for ai, value in pairs:
        expected, pattern = AI_FORMATS[ai]
        if not pattern.fullmatch(value):
            raise PayloadError(f"GS1 AI ({ai}): expected {expected}, got {value!r}")
    return list(pairs)


# ---------------------------------------------------------------------------------------
# Template model


@dataclass(frozen=True, slots=True, kw_only=True)
class TextElement:
    x: float
    y: float
    text: str
    height: float = 3.5  # character height, mm
    font: str = "0"  # ZPL font name; ESC/POS ignores it
    when: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()
    kind: Literal["text"] = "text"


@dataclass(frozen=True, slots=True, kw_only=True)
class QrElement:
    x: float
    y: float
    data: str
    module: float = 0.6  # module size, mm (ZPL guide ^BQ: magnification 1-10 dots)
    ecc: Literal["L", "M", "Q", "H"] = "M"
    when: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()
    kind: Literal["qr"] = "qr"


@dataclass(frozen=True, slots=True, kw_only=True)
class Code128Element:
    x: float
    y: float
    data: str
    height: float = 15.0  # bar height, mm
    module: float = 0.25  # narrow bar width, mm
    when: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()
    kind: Literal["code128"] = "code128"


@dataclass(frozen=True, slots=True, kw_only=True)
class Gs1128Element:
    """GS1-128: Code 128 with FNC1 in first position and between variable-length AIs.

    AIs whose placeholders name a missing field are left out.
    """

    x: float
    y: float
    ai: tuple[tuple[str, str], ...]
    height: float = 25.0
    module: float = 0.33  # GS1 General Specifications 5.12.3.3, logistics: X >= 0.495 mm
    hri: bool = True  # print the "(01)..." interpretation below the bars
    when: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()
    kind: Literal["gs1_128"] = "gs1_128"


@dataclass(frozen=True, slots=True, kw_only=True)
class DataMatrixElement:
    """Data Matrix ECC 200; GS1 Data Matrix when ``ai`` is given instead of ``data``."""

    x: float
    y: float
    data: str | None = None
    ai: tuple[tuple[str, str], ...] = ()
    module: float = 0.5
    when: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()
    kind: Literal["datamatrix"] = "datamatrix"


@dataclass(frozen=True, slots=True, kw_only=True)
class BoxElement:
    x: float
    y: float
    width: float
    height: float
    thickness: float = 0.3
    when: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()
    kind: Literal["box"] = "box"


Element = TextElement | QrElement | Code128Element | Gs1128Element | DataMatrixElement | BoxElement


@dataclass(frozen=True, slots=True, kw_only=True)
class Template:
    name: str
    width_mm: float
    height_mm: float
    elements: tuple[Element, ...]
    description: str = ""
    required: tuple[str, ...] = ()

    def check_fields(self, values: Mapping[str, str]) -> None:
        """Raise :class:`PayloadError` naming the first required field that is missing."""
        for name in self.required:
            if name not in values:
                raise PayloadError(f"label field {name!r} is required by template {self.name!r}")

    def active(self, values: Mapping[str, str]) -> list[Element]:
        """The elements whose ``when`` fields are all present and ``unless`` fields absent."""
        return [e for e in self.elements
                if all(w in values for w in e.when) and not any(u in values for u in e.unless)]


def fill(template_text: str, values: Mapping[str, str], *, template: str) -> str:
    """Replace ``{name}`` placeholders; a missing field is a :class:`PayloadError`."""

    def sub(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        name = match.group(1)
        if name == "link" and isinstance(values, FieldValues) and values.link_error:
            raise PayloadError(values.link_error)
        if name not in values:
            raise PayloadError(f"label field {name!r} is required by template {template!r}")
        return values[name]

    return PLACEHOLDER_RE.sub(sub, template_text)


def placeholders(template_text: str) -> list[str] | str:
    """The names a template string uses, or a message saying why it is malformed."""
    names = []
    for match in PLACEHOLDER_RE.finditer(template_text):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        name = match.group(1)
        if name is None or not FIELD_NAME_RE.match(name):
            return (f"bad placeholder {token!r} in {template_text!r} (use {{name}} with a "
                    "lower-case field name; write {{ and }} for literal braces)")
        names.append(name)
    return names


def fill_ai(pairs: Sequence[tuple[str, str]], values: Mapping[str, str], *, template: str
            ) -> list[tuple[str, str]]:
    """Fill (AI, template) pairs, leaving out those naming a missing field."""
    out = []
    for ai, text in pairs:
        names = placeholders(text)
        if isinstance(names, list) and all(n in values for n in names):
            out.append((ai, fill(text, values, template=template)))
    return out


# ---------------------------------------------------------------------------------------
# Template loading and validation


def _size(low: float, high: float) -> Callable[[Any], str | None]:
    def check(value: float) -> str | None:
        return None if low <= value <= high else (
            f"expected a value from {low:g} to {high:g} mm, got {value!r}")
    return check


def _template_string(value: str) -> str | None:
    names = placeholders(value)
    return names if isinstance(names, str) else None


def _field_list(keys: Table, name: str) -> tuple[str, ...]:
    raw = keys.get(name, list, [])
    if raw is None:
        return ()
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, str) or not FIELD_NAME_RE.match(item):
            keys.problems.add(f"{keys.key(name)}[{i}]", f"expected a field name, got {item!r}")
        else:
            out.append(item)
    return tuple(out)


def _ai_list(keys: Table) -> tuple[tuple[str, str], ...]:
    raw = keys.get("ai", list, [])
    out = []
    for i, item in enumerate(raw or []):
        path = f"{keys.key('ai')}[{i}]"
        if (not isinstance(item, list) or len(item) != 2
                or not all(isinstance(v, str) for v in item)):
            keys.problems.add(path, f'expected ["AI", "template"], got {item!r}')
        elif item[0] not in AI_FORMATS:
            keys.problems.add(path, f"expected one of the AIs {', '.join(AI_FORMATS)}, "
                                    f"got {item[0]!r}")
        elif (message := _template_string(item[1])) is not None:
            keys.problems.add(path, message)
        else:
            out.append((item[0], item[1]))
    return tuple(out)


ELEMENT_TYPES = ("text", "qr", "code128", "gs1_128", "datamatrix", "box")


def _element(keys: Table, width: float, height: float) -> Element | None:
    kind = keys.get("type", str, check=lambda v: None if v in ELEMENT_TYPES else (
        f"expected one of {', '.join(ELEMENT_TYPES)}, got {v!r}"))
    common = {
        "x": keys.get("x", float, check=_size(0, width)),
        "y": keys.get("y", float, check=_size(0, height)),
        "when": _field_list(keys, "when"),
        "unless": _field_list(keys, "unless"),
    }
    kw: dict[str, Any] = {}
    if kind == "text":
        kw["text"] = keys.get("text", str, check=_template_string)
        kw["height"] = keys.get("height", float, 3.5, check=_size(1, 100))
        kw["font"] = keys.get("font", str, "0", check=lambda v: None if re.fullmatch(
            "[0A-Z]", v) else f"expected a ZPL font name 0 or A-Z, got {v!r}")
        element: type[Any] = TextElement
    elif kind == "qr":
        kw["data"] = keys.get("data", str, check=_template_string)
        kw["module"] = keys.get("module", float, 0.6, check=_size(0.1, 3))
        kw["ecc"] = keys.get("ecc", str, "M", check=lambda v: None if v in ("L", "M", "Q", "H")
                             else f"expected L, M, Q or H, got {v!r}")
        element = QrElement
    elif kind == "code128":
        kw["data"] = keys.get("data", str, check=_template_string)
        kw["height"] = keys.get("height", float, 15.0, check=_size(2, 200))
        kw["module"] = keys.get("module", float, 0.25, check=_size(0.1, 2))
        element = Code128Element
    elif kind == "gs1_128":
        kw["ai"] = _ai_list(keys)
        kw["height"] = keys.get("height", float, 25.0, check=_size(2, 200))
        kw["module"] = keys.get("module", float, 0.33, check=_size(0.1, 2))
        kw["hri"] = keys.get("hri", bool, True)
        if not kw["ai"] and keys.data.get("ai") is None:
            keys.problems.add(keys.key("ai"), "required key is missing")
        element = Gs1128Element
    elif kind == "datamatrix":
        kw["data"] = keys.get("data", str, None, check=_template_string)
        kw["ai"] = _ai_list(keys)
        kw["module"] = keys.get("module", float, 0.5, check=_size(0.1, 5))
        if (kw["data"] is None) == (not kw["ai"]):
            keys.problems.add(keys.path, "a datamatrix needs exactly one of data or ai")
        element = DataMatrixElement
    elif kind == "box":
        kw["width"] = keys.get("width", float, check=_size(0.1, width))
        kw["height"] = keys.get("height", float, check=_size(0.1, height))
        kw["thickness"] = keys.get("thickness", float, 0.3, check=_size(0.1, 50))
        element = BoxElement
    else:
        keys.skip(keys.data)  # the type is wrong; other keys cannot be judged
        return None
    keys.finish()
    if any(v is None for k, v in {**common, **kw}.items() if k != "data") or (
            kind != "datamatrix" and kw.get("data", "") is None):
        return None
    result: Element = element(**common, **kw)
    return result


def parse_template(name: str, data: Mapping[str, Any]) -> Template:
    """Validate one parsed template; raise :class:`ConfigError` listing every problem."""
    problems = Problems()
    top = Table(data, "", problems)
    description = top.get("description", str, "")
    width = top.get("width_mm", float, check=_size(5, 300))
    height = top.get("height_mm", float, check=_size(5, 1000))
    required = _field_list(top, "required")
    raw_elements = top.get("elements", list)
    top.finish()
    elements: list[Element] = []
    for i, raw in enumerate(raw_elements or []):
        path = f"elements[{i}]"
        if not isinstance(raw, dict):
            problems.add(path, f"expected a table [[elements]], got {raw!r}")
            continue
        element = _element(Table(raw, path, problems), width or 1000.0, height or 1000.0)
        if element is not None:
            elements.append(element)
    if raw_elements is not None and not raw_elements:
        problems.add("elements", "expected at least one element")
    if problems.items or width is None or height is None:
        raise ConfigError(problems.items)
    return Template(name=name, width_mm=width, height_mm=height, elements=tuple(elements),
                    description=description, required=required)


class TemplateLibrary:
    """Built-in templates overridden by name by those in the user directory."""

    def __init__(self, *, templates: Mapping[str, Template]) -> None:
        self._templates = dict(templates)

    @classmethod
    def load(cls, *, user_dir: Path | None = None) -> TemplateLibrary:
        """Read and validate every template; raise :class:`ConfigError` listing all problems."""
        problems: list[str] = []
        sources: dict[str, tuple[str, str]] = {}
        builtin = resources.files("gatewayd") / "data" / "labels"
        for entry in sorted(builtin.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".toml"):
                sources[entry.name[:-5]] = (entry.name, entry.read_text(encoding="utf-8"))
        if user_dir is not None:
            if not user_dir.is_dir():
                problems.append(f"labels.templates_dir: not a directory: {user_dir}")
            else:
                for path in sorted(user_dir.glob("*.toml")):
                    try:
                        sources[path.stem] = (str(path), path.read_text(encoding="utf-8"))
                    except (OSError, UnicodeDecodeError) as exc:
                        problems.append(f"{path}: cannot read ({exc})")
        templates = {}
        for name, (label, text) in sources.items():
            try:
                data = tomllib.loads(text)
            except tomllib.TOMLDecodeError as exc:
                problems.append(f"{label}: not valid TOML ({exc})")
                continue
            try:
                templates[name] = parse_template(name, data)
            except ConfigError as exc:
                problems.extend(f"{label}: {p}" for p in exc.problems)
        if problems:
            raise ConfigError(problems)
        return cls(templates=templates)

    def get(self, name: str) -> Template:
        """The template called ``name``; :class:`KeyError` when there is none."""
        return self._templates[name]

    def names(self) -> list[str]:
        return sorted(self._templates)

