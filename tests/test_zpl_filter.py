"""Raw ZPL passthrough filter: label formats pass unchanged, reconfiguration is refused."""

from __future__ import annotations

import pytest

from gatewayd.errors import PayloadError
from gatewayd.printing.zpl_filter import filter_raw_zpl

ALLOWED = [
    b"^XA^FO50,50^A0N,40,40^FDHello^FS^XZ",
    b"^XA\r\n^CI28^PW812^LL1218^LH0,0\r\n^FO10,10^BQN,2,5^FH_^FDQA,_5Ehi^FS\r\n^PQ2\r\n^XZ\r\n",
    b"^XA^FO10,10^BY2^BCN,100,Y,N,N,D^FD(01)09506000134352(10)ABC^FS^XZ",
    b"^XA^FO10,10^GB100,100,3^FS^FO1,1^GFA,8,8,1,FFFFFFFFFFFFFFFF^FS^XZ^XA^XZ",
    b"^xa^fo10,10^aan,20,10^fdlower^fs^xz",
    "^XA^CI28^FO10,10^A0N,30,0^FDÆrø^FS^XZ".encode(),
]


@pytest.mark.parametrize("zpl", ALLOWED)
def test_label_formats_pass_unchanged(zpl: bytes) -> None:
    assert filter_raw_zpl(zpl) == zpl
    assert filter_raw_zpl(zpl.decode("utf-8")) == zpl


def test_alternate_prefixes_are_normalised() -> None:
    assert filter_raw_zpl(b"\x1eXA\x1eFDx\x1eFS\x1eXZ") == b"^XA^FDx^FS^XZ"


RECONFIGURE = "printer reconfiguration is not allowed in raw passthrough"
NETWORK = "network configuration is not allowed in raw passthrough"
MEMORY = "writing or deleting printer memory is not allowed in raw passthrough"
PREFIX = "changing the command prefix or delimiter is not allowed in raw passthrough"
CONTROL = "control commands act on the printer at once and are not allowed in raw passthrough"

REFUSED = [
    ("^JUS", "^JU", RECONFIGURE), ("~JR", "~JR", RECONFIGURE), ("~JD", "~JD", RECONFIGURE),
    ("~JE", "~JE", RECONFIGURE), ("^JJ", "^JJ", RECONFIGURE), ("^MUd", "^MU", RECONFIGURE),
    ("^SZ2", "^SZ", RECONFIGURE), ("^CW1,E:X.FNT", "^CW", RECONFIGURE),
    ("^NB", "^NB", NETWORK), ("^NC1", "^NC", NETWORK), ("^ND2,P", "^ND", NETWORK),
    ("^NI1", "^NI", NETWORK), ("^NN", "^NN", NETWORK), ("^NP", "^NP", NETWORK),
    ("^NS", "^NS", NETWORK), ("^NT", "^NT", NETWORK), ("^NW", "^NW", NETWORK),
    ("^WA", "^WA", NETWORK), ("^WE", "^WE", NETWORK), ("^WI", "^WI", NETWORK),
    ("^WL", "^WL", NETWORK), ("^WP", "^WP", NETWORK), ("^WR", "^WR", NETWORK),
    ("^WS", "^WS", NETWORK), ("^WX", "^WX", NETWORK),
    ("^KP1234", "^KP", "setting the front-panel password is not allowed in raw passthrough"),
    ("~DYR:X,A,G,1,0,00", "~DY", MEMORY), ("~DGR:X.GRF,1,1,FF", "~DG", MEMORY),
    ("^IDR:*.*", "^ID", MEMORY), ("^DFR:F.ZPL", "^DF", MEMORY), ("^ISR:A.GRF", "^IS", MEMORY),
    ("~EG", "~EG", MEMORY),
    ("^CC+", "^CC", PREFIX), ("~CC+", "~CC", PREFIX), ("^CT+", "^CT", PREFIX),
    ("~CT+", "~CT", PREFIX), ("^CD;", "^CD", PREFIX), ("~CD;", "~CD", PREFIX),
    ("~WC", "~WC", CONTROL), ("~PS", "~PS", CONTROL), ("~JA", "~JA", RECONFIGURE),
    ("~HS", "~HS", "status queries go through the printer status path, not raw passthrough"),
    ("^HH", "^HH", "host queries are not allowed in raw passthrough"),
    ("^ZZ", "^ZZ", "only label-format commands are allowed in raw passthrough"),
]


def variants(command: str) -> list[str]:
    alternate = command.replace("^", "\x1e").replace("~", "\x10")
    return [command, command.lower(), alternate, alternate.lower()]


@pytest.mark.parametrize(("command", "name", "reason"), REFUSED)
def test_refused_commands(command: str, name: str, reason: str) -> None:
    for variant in variants(command):
        for zpl in (f"^XA{variant}^XZ", f"^XA^FO1,1^FDdata{variant}^FS^XZ"):
            with pytest.raises(PayloadError) as err:
                filter_raw_zpl(zpl)
            assert str(err.value) == f"refused ZPL command {name}: {reason}"


@pytest.mark.parametrize(
    ("zpl", "message"),
    [
        ('^XA^FO1,1^FD! U1 setvar "ip.addr" "1.2.3.4"^FS^XZ',
         "refused SGD command '! U1 setvar': printer settings are not allowed in raw passthrough"),
        ('! U1 do "device.reset" ""\r\n^XA^XZ',
         "refused SGD command '! U1 do': printer settings are not allowed in raw passthrough"),
        ('{}{"device.reset":""}', "refused SGD command '{}{': printer settings are not allowed "
                                   "in raw passthrough"),
        ("^XA^FDx^FS", "raw ZPL: label format not closed (missing ^XZ)"),
        ("^XA^XA^XZ", "raw ZPL: ^XA inside a label format (missing ^XZ)"),
        ("^XZ", "raw ZPL: ^XZ without ^XA"),
        ("", "raw ZPL: expected at least one label format ^XA ... ^XZ"),
        ("junk^XA^XZ", "raw ZPL: unexpected data b'junk^XA^XZ' outside ^XA ... ^XZ"),
        ("^FO1,1^XA^XZ", "refused ZPL command ^FO: commands must be inside ^XA ... ^XZ"),
    ],
)
def test_refused_streams(zpl: str, message: str) -> None:
    with pytest.raises(PayloadError) as err:
        filter_raw_zpl(zpl)
    assert str(err.value) == message


def test_size_bound() -> None:
    zpl = b"^XA^FD" + b"x" * 100 + b"^FS^XZ"
    assert filter_raw_zpl(zpl, max_bytes=len(zpl)) == zpl
    with pytest.raises(PayloadError) as err:
        filter_raw_zpl(zpl, max_bytes=len(zpl) - 1)
    assert str(err.value) == f"raw ZPL of {len(zpl)} bytes: at most {len(zpl) - 1} bytes are accepted"
