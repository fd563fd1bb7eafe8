"""Label data validation, Digital Link building and template loading/validation."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from gatewayd.errors import ConfigError, PayloadError
from gatewayd.printing.labels import LabelData, TemplateLibrary, digital_link, fill

R = "https://id.gs1.org"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"lot": "L1"}, LabelData(lot="L1")),
        ({"lot": "L1", "gtin": "09506000134352"}, LabelData(lot="L1", gtin="09506000134352")),
        ({"gtin": "9506000134352"}, LabelData(gtin="09506000134352")),  # GTIN-13 padded
        ({"gtin": "96385074"}, LabelData(gtin="00000096385074")),  # GTIN-8
        ({"expiry": "2027-12-31", "qty": 40}, LabelData(expiry=date(2027, 12, 31), qty=40)),
        ({"lot": "A", "colour": "red"}, LabelData(lot="A", extra={"colour": "red"})),
        ({"lot": "^XA~JR_\\Ærø-ß"}, LabelData(lot="^XA~JR_\\Ærø-ß")),
    ],
)
def test_from_request_accepts(fields: dict[str, object], expected: LabelData) -> None:
    assert LabelData.from_request(fields) == expected


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"gtin": "09506000134353"},
         "label field 'gtin': Invalid GTIN check digit for '09506000134353': Expected 2, got 3."),
        ({"gtin": "95060001343"}, "label field 'gtin': expected 8, 12, 13 or 14 digits, got '95060001343'"),
        ({"gtin": 9506000134352}, "label field 'gtin': expected a string, got 9506000134352"),
        ({"expiry": "2027-02-30"}, "label field 'expiry': not a calendar date: '2027-02-30'"),
        ({"expiry": "20271231"}, "label field 'expiry': expected a date YYYY-MM-DD, got '20271231'"),
        ({"qty": 0}, "label field 'qty': expected a whole number from 1 to 99999999, got 0"),
        ({"qty": True}, "label field 'qty': expected a whole number from 1 to 99999999, got True"),
        ({"qty": "4"}, "label field 'qty': expected a whole number from 1 to 99999999, got '4'"),
        ({"lot": ""}, "label field 'lot': expected a non-empty string"),
        ({"lot": "x" * 65}, "label field 'lot': expected at most 64 characters, got 65"),
        ({"lot": "a\nb"}, "label field 'lot': control characters are not allowed: 'a\\nb'"),
        ({"note": 5}, "label field 'note': expected a string, got 5"),
        ({"Bad-Name": "x"}, "label field name 'Bad-Name': expected 1-32 lower-case letters, "
                            "digits or '_' starting with a letter, not one of link, expiry_yymmdd"),
        ({"link": "x"}, "label field name 'link': expected 1-32 lower-case letters, "
                        "digits or '_' starting with a letter, not one of link, expiry_yymmdd"),
    ],
)
def test_from_request_refuses(fields: dict[str, object], message: str) -> None:
    with pytest.raises(PayloadError) as err:
        LabelData.from_request(fields)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("gtin", "lot", "expiry", "serial", "uri"),
    [
        ("09506000134352", "ABC123", date(2027, 12, 31), None,
         "https://id.gs1.org/01/09506000134352/10/ABC123?17=271231"),
        ("9506000134352", None, None, None, "https://id.gs1.org/01/09506000134352"),
        # GS1 Digital Link 1.2 4.5: path values are percent-encoded.
        ("09506000134352", "A/B%C#D?E F", None, None, None),
        ("09506000134352", "A/B%C&D?E", None, "S 1"[:1], "https://id.gs1.org/01/09506000134352/10/A%2FB%25C%26D%3FE/21/S"),
        ("09506000134352", "x(y)!*'", None, None, "https://id.gs1.org/01/09506000134352/10/x%28y%29%21%2A%27"),
        # Set 82 is gatewayd.gs1's: a trailing newline is outside it (the old "[...]*$" let it in).
        ("09506000134352", "L1\n", None, None, None),
        ("09506000134352", "L1", None, "S1\n", None),
    ],
)
def test_digital_link(gtin: str, lot: str | None, expiry: date | None, serial: str | None,
                      uri: str | None) -> None:
    if uri is None:
        with pytest.raises(PayloadError, match="GS1 character set 82"):
            digital_link(R, gtin=gtin, lot=lot, expiry=expiry, serial=serial)
    else:
        assert digital_link(R, gtin=gtin, lot=lot, expiry=expiry, serial=serial) == uri


def test_link_falls_back_to_lot_without_gtin() -> None:
    assert LabelData(lot="L-1").values(resolver=R)["link"] == "L-1"


def test_lot_outside_set82_fails_only_where_link_is_used() -> None:
    data = LabelData(lot="Ærø", gtin="09506000134352")
    values = data.values(resolver=R)
    assert fill("{lot}", values, template="t") == "Ærø"
    with pytest.raises(PayloadError, match="lot 'Ærø' cannot go into a GS1 barcode"):
        fill("{link}", values, template="t")


def test_fill() -> None:
    assert fill("a {{b}} {lot}", {"lot": "X"}, template="t") == "a {b} X"
    with pytest.raises(PayloadError) as err:
        fill("{expiry}", {}, template="lot")
    assert str(err.value) == "label field 'expiry' is required by template 'lot'"


def test_builtin_templates_load() -> None:
    library = TemplateLibrary.load(user_dir=None)
    assert library.names() == ["carton", "lot", "pallet"]
    assert library.get("pallet").width_mm == 101.6
    with pytest.raises(KeyError):
        library.get("nope")


def test_user_template_overrides_builtin(tmp_path: Path) -> None:
    (tmp_path / "lot.toml").write_text(
        'width_mm = 50\nheight_mm = 30\n[[elements]]\ntype = "text"\nx = 1\ny = 1\ntext = "{lot}"\n')
    (tmp_path / "mine.toml").write_text(
        'width_mm = 50\nheight_mm = 30\n[[elements]]\ntype = "box"\nx = 1\ny = 1\n'
        'width = 10\nheight = 5\n')
    library = TemplateLibrary.load(user_dir=tmp_path)
    assert library.names() == ["carton", "lot", "mine", "pallet"]
    assert library.get("lot").width_mm == 50


BAD_TEMPLATE = '''
width_mm = "wide"
height_mm = 30
colour = "red"
[[elements]]
type = "qr"
x = 1
y = 1
data = "{lot"
[[elements]]
type = "text"
x = 1
y = 1
text = "x"
font_size = 3
[[elements]]
type = "text"
x = "a"
y = 99
text = "x"
[[elements]]
type = "gs1_128"
x = 1
y = 1
ai = [["99", "{lot}"], ["10"]]
[[elements]]
type = "datamatrix"
x = 1
y = 1
[[elements]]
type = "circle"
x = 1
'''


def test_template_problems_list_key_paths(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text(BAD_TEMPLATE)
    with pytest.raises(ConfigError) as err:
        TemplateLibrary.load(user_dir=tmp_path)
    name = str(tmp_path / "bad.toml")
    assert err.value.problems == [
        f"{name}: width_mm: expected a number, got 'wide'",
        f"{name}: colour: unknown key (check the spelling)",
        f"{name}: elements[0].data: bad placeholder '{{' in '{{lot' (use {{name}} with a "
        "lower-case field name; write {{ and }} for literal braces)",
        f"{name}: elements[1].font_size: unknown key (check the spelling)",
        f"{name}: elements[2].x: expected a number, got 'a'",
        f"{name}: elements[2].y: expected a value from 0 to 30 mm, got 99.0",
        f"{name}: elements[3].ai[0]: expected one of the AIs 01, 02, 10, 11, 15, 17, 21, 37, got '99'",
        f"{name}: elements[3].ai[1]: expected [\"AI\", \"template\"], got ['10']",
        f"{name}: elements[4]: a datamatrix needs exactly one of data or ai",
        f"{name}: elements[5].type: expected one of text, qr, code128, gs1_128, datamatrix, box, "
        "got 'circle'",
        f"{name}: elements[5].y: required key is missing",
    ]


def test_invalid_toml_and_missing_dir(tmp_path: Path) -> None:
    (tmp_path / "broken.toml").write_text("width_mm = = 3")
    with pytest.raises(ConfigError) as err:
        TemplateLibrary.load(user_dir=tmp_path)
    assert err.value.problems[0].startswith(f"{tmp_path / 'broken.toml'}: not valid TOML")
    with pytest.raises(ConfigError) as err:
        TemplateLibrary.load(user_dir=tmp_path / "absent")
    assert err.value.problems == [f"labels.templates_dir: not a directory: {tmp_path / 'absent'}"]
