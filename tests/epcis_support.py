"""EPCIS test support: GS1's EPCIS 2.0 reference files, a schema validator whose format
checks provably work, scan-event factories, and an independent EPC URN oracle.

The reference files (the JSON Schema, the JSON-LD context, the REST binding and GS1's
examples) are not part of this repository: they are read at test time from the ``shared/epcis``
folder beside the checkout (or ``$EPCIS_REF_DIR``). Where that folder does not exist, the
tests that need it skip and say so.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from jsonschema import Draft7Validator, FormatChecker
from jsonschema.exceptions import ValidationError


def _find_ref_dir() -> Path:
    env = os.environ.get("EPCIS_REF_DIR")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parent.parent
    # The folder beside the checkout, or beside a folder holding several checkouts.
    for parent in (repo.parent, *repo.parent.parents):
        candidate = parent / "shared" / "epcis"
        if (candidate / "EPCIS-JSON-Schema.json").is_file():
            return candidate
    return repo.parent / "shared" / "epcis"


REF_DIR = _find_ref_dir()
SCHEMA_FILE = REF_DIR / "EPCIS-JSON-Schema.json"


@pytest.fixture(scope="session")
def ref_dir() -> Path:
    if not SCHEMA_FILE.is_file():
        pytest.skip(
            f"GS1's EPCIS 2.0 reference files are not at {REF_DIR} (the shared/epcis folder beside the "
            "checkout); set EPCIS_REF_DIR to validate against the official schema"
        )
    return REF_DIR


@pytest.fixture(scope="session")
def schema(ref_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ref_dir / "EPCIS-JSON-Schema.json").read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="session")
def validator(schema: dict[str, Any]) -> Draft7Validator:
    """Draft 7 validator with format checking.

    jsonschema checks "uri" only when rfc3987 (or rfc3986-validator) is importable and
    "date-time" only when rfc3339-validator is; without them those formats pass silently. So
    this fixture refuses to run without them, and tests/test_schema_guard.py proves that an
    invalid URI and an invalid date-time really fail.
    """
    try:
        import rfc3339_validator  # noqa: F401
        import rfc3987  # noqa: F401
    except ImportError as exc:  # a hard requirement: without them "uri" / "date-time" pass unchecked
        pytest.fail(f"schema format checking needs rfc3987 and rfc3339-validator installed: {exc}")

    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema, format_checker=FormatChecker())


def schema_errors(validator: Draft7Validator, doc: dict[str, Any]) -> list[str]:
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    return [_describe(e) for e in errors]


def _describe(error: ValidationError) -> str:
    # The schema is built from if/then/anyOf; the innermost errors say what is wrong.
    leaves = list(error.context or ())
    detail = "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in leaves[:6])
    return f"{list(error.absolute_path)}: {error.message}" + (f" [{detail}]" if detail else "")


@pytest.fixture
def assert_valid(validator: Draft7Validator) -> Callable[[dict[str, Any]], None]:
    def check(doc: dict[str, Any]) -> None:
        errors = schema_errors(validator, doc)
        assert not errors, "EPCIS document fails the official schema:\n" + "\n".join(errors)

    return check


# ---------------------------------------------------------------------------------------------
# Scan events

EVENT_IDS: Iterator[int] = iter(range(1, 10**9))


def new_event_id() -> str:
    """A deterministic UUIDv7-shaped id (version 7, RFC 4122 variant), unique per call."""
    n = next(EVENT_IDS)
    return f"01936f9e-{n >> 12 & 0xFFFF:04x}-7{n & 0xFFF:03x}-8000-{n:012x}"


STEP_BIZ = {"receiving": "receiving", "transfer": "storing", "picking": "picking", "dispatch": "shipping"}


def make_scan(
    *,
    step: str = "receiving",
    ai: dict[str, str] | None = None,
    kind: str = "gs1",
    scanned_at: str = "2026-11-27T10:15:02.123Z",
    event_id: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A gatewayd.scan/1 payload. Typed fields default from ``ai`` the way the decoder fills them
    (gtin from 01 else 02, lot 10, serial 21, sscc 00, count from the first of 30/37)."""
    ai = dict(ai or {})
    count = next((int(v) for k, v in ai.items() if k in ("30", "37")), None)
    scan: dict[str, Any] = {
        "schema": "gatewayd.scan/1",
        "event_id": event_id or new_event_id(),
        "seq": 1042,
        "gateway": "dock-pi-03",
        "site": "ams1",
        "station": "dock-03",
        "step": step,
        "biz_step": f"urn:epcglobal:cbv:bizstep:{STEP_BIZ.get(step, step)}",
        "read_point": "urn:epc:id:sgln:9506000.13435.3",
        "scanner": "dock-03-left",
        "scanned_at": scanned_at,
        "clock_synced": True,
        "symbology": "]C1",
        "raw": "]C1" + "".join(f"{k}{v}\x1d" for k, v in ai.items()),
        "kind": kind,
        "gtin": ai.get("01", ai.get("02")),
        "lot": ai.get("10"),
        "expiry": None,
        "serial": ai.get("21"),
        "sscc": ai.get("00"),
        "count": count,
        "ai": ai,
        "errors": [],
    }
    scan.update(fields)
    return scan


# ---------------------------------------------------------------------------------------------
# An independent oracle: EPC URN -> GS1 keys, written from TDS §6.3 / §6.4 / §8 without using the
# module under test, so identifier tests compare two implementations (and the GS1 examples).


def oracle_check_digit(body: str) -> str:
    odd = sum(int(d) for d in body[-1::-2])  # rightmost and every second digit: weight 3
    even = sum(int(d) for d in body[-2::-2])
    return str((10 - (3 * odd + even) % 10) % 10)


def urn_to_keys(urn: str) -> dict[str, str]:
    """Parse the EPC URNs this project emits into GS1 AI values (and the prefix length)."""
    m = re.fullmatch(r"urn:epc:(id:sgtin|class:lgtin|idpat:sgtin):(\d+)\.(\d+)\.(.+)", urn)
    if m:
        cp, ref, last = m.group(2), m.group(3), m.group(4)
        assert len(cp) + len(ref) == 13, urn
        body = ref[0] + cp + ref[1:]
        keys = {"01": body + oracle_check_digit(body), "cp_len": str(len(cp))}
        if m.group(1) == "id:sgtin":
            keys["21"] = unquote(last)
        elif m.group(1) == "class:lgtin":
            keys["10"] = unquote(last)
        else:
            assert last == "*", urn
        return keys
    m = re.fullmatch(r"urn:epc:id:sscc:(\d+)\.(\d+)", urn)
    if m:
        cp, ref = m.group(1), m.group(2)
        assert len(cp) + len(ref) == 17, urn
        body = ref[0] + cp + ref[1:]
        return {"00": body + oracle_check_digit(body), "cp_len": str(len(cp))}
    m = re.fullmatch(r"urn:epc:id:gsin:(\d+)\.(\d+)", urn)
    if m:
        body = m.group(1) + m.group(2)
        assert len(body) == 16, urn
        return {"402": body + oracle_check_digit(body), "cp_len": str(len(m.group(1)))}
    m = re.fullmatch(r"urn:epc:id:ginc:(\d+)\.(.+)", urn)
    if m:
        return {"401": m.group(1) + unquote(m.group(2)), "cp_len": str(len(m.group(1)))}
    raise AssertionError(f"oracle cannot parse {urn!r}")


def dl_to_keys(uri: str) -> dict[str, str]:
    """Parse an id.gs1.org Digital Link path into AI values."""
    assert uri.startswith("https://id.gs1.org/"), uri
    parts = uri[len("https://id.gs1.org/") :].split("/")
    assert len(parts) % 2 == 0, uri
    return {parts[i]: unquote(parts[i + 1]) for i in range(0, len(parts), 2)}


def keys_to_dl(keys: dict[str, str]) -> str:
    """The Digital Link URI for the same keys (oracle side: the translation an EPCIS repository
    with GS1-EPC-Format: Always_GS1_Digital_Link would do)."""
    from urllib.parse import quote

    order = [k for k in ("00", "01", "10", "21", "401", "402") if k in keys]
    return "https://id.gs1.org/" + "/".join(f"{k}/{quote(keys[k], safe='')}" for k in order)
