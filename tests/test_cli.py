"""The ``gatewayd`` command, run as a subprocess the way an engineer runs it.

Every run gets ``GATEWAYD_CONFIG`` pointing at a file that does not exist (unless a test
sets it), so a config on this machine (/etc/gatewayd) never leaks into a result.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from gatewayd.config import OutboxSettings
from gatewayd.delivery.outbox import Outbox

ROOT = Path(__file__).resolve().parent.parent
RFC3339_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
SCAN_KEYS = {
    "schema", "event_id", "seq", "gateway", "station", "step", "biz_step", "scanner", "scanned_at", "clock_synced",
    "symbology", "raw", "kind", "gtin", "lot", "expiry", "serial", "sscc", "count", "ai", "errors",
}  # fmt: skip


def gatewayd(
    *args: str, tmp_path: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("GATEWAYD_CONFIG", "NOTIFY_SOCKET", "JOURNAL_STREAM")}
    base["GATEWAYD_CONFIG"] = str(tmp_path / "no-such-config.toml")
    return subprocess.run(
        [sys.executable, "-m", "gatewayd", *args],
        capture_output=True, text=True, timeout=timeout, cwd=tmp_path, env=base | (env or {}), check=False,
    )  # fmt: skip


VALID = """
[gateway]
id = "dock-pi-03"
site = "ams1"
state_dir = "state"

[mqtt]
brokers = ["mqtts://broker-a:8883", "mqtt://broker-b"]

[decode]
lot_pattern = '^[A-Z0-9]{2,8}-\\d{8}-\\d{4}$'
separator_substitutes = ["|"]

[[stations]]
id = "dock-03"
step = "receiving"
location = "urn:epc:id:sgln:9506000134352.0.3"

[[stations]]
id = "dock-04"
step = "dispatch"

[[scanners]]
id = "dock-03-left"
station = "dock-03"
driver = "serial"
port = "/dev/serial/by-id/usb-Honeywell_1950g-if00"

[[printers]]
id = "dock-03-zebra"
driver = "zpl"
transport = "tcp://10.0.0.50:9100"
"""

INVALID = """
[gateway]
id = "dock pi"

[mqtt]
brokers = ["tcp://broker:1883"]
password = "hunter2"

[[stations]]
id = "dock-03"
step = "recieving"

[[scanners]]
id = "left"
station = "dock-3"
driver = "serial"
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- check ------------------------------------------------------------------------------------


def effective_config(stdout: str) -> dict[str, Any]:
    first, _, rest = stdout.partition("\n")
    assert first.startswith("# ") and "configuration is valid" in first, stdout
    return tomllib.loads(rest)


def test_check_valid_config_prints_the_effective_config(tmp_path: Path) -> None:
    cfg = write(tmp_path / "gatewayd.toml", VALID)
    result = gatewayd("check", "--config", str(cfg), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    # A device that is not plugged in now is noted, not failed: the gateway waits for it.
    assert result.stderr == (
        "note: scanners[0].port: /dev/serial/by-id/usb-Honeywell_1950g-if00 is not on this machine now "
        "(unplugged, or a typo? `gatewayd devices` lists what is here); the gateway keeps trying to open it\n"
    )
    data = effective_config(result.stdout)
    assert data["gateway"] == {"id": "dock-pi-03", "site": "ams1", "state_dir": str(tmp_path / "state")}
    # Defaults are spelled out, so the engineer sees what is in effect.
    assert data["mqtt"]["protocol"] == "auto" and data["mqtt"]["topic_prefix"] == "gatewayd"
    assert data["outbox"]["synchronous"] == "full" and data["outbox"]["max_events"] == 1_000_000
    assert data["decode"]["lot_pattern"] == r"^[A-Z0-9]{2,8}-\d{8}-\d{4}$"
    assert data["decode"]["separator_substitutes"] == ["|"]
    assert [s["id"] for s in data["stations"]] == ["dock-03", "dock-04"]
    assert data["stations"][1]["dedupe_ms"] == 1500
    [scanner] = data["scanners"]
    assert scanner["port"] == "/dev/serial/by-id/usb-Honeywell_1950g-if00" and scanner["baudrate"] == 9600
    [printer] = data["printers"]
    assert printer["transport"] == "tcp://10.0.0.50:9100" and printer["dpi"] == 203
    assert "password" not in result.stdout


def test_check_uses_gatewayd_config_from_the_environment(tmp_path: Path) -> None:
    cfg = write(tmp_path / "site.toml", VALID)
    result = gatewayd("check", tmp_path=tmp_path, env={"GATEWAYD_CONFIG": str(cfg)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"# {cfg}: configuration is valid")


def test_check_prints_the_brokers(tmp_path: Path) -> None:
    cfg = write(tmp_path / "gatewayd.toml", VALID)
    result = gatewayd("check", "--config", str(cfg), tmp_path=tmp_path)
    assert effective_config(result.stdout)["mqtt"]["brokers"] == ["mqtts://broker-a:8883", "mqtt://broker-b:1883"]


def test_effective_config_is_itself_a_valid_config(tmp_path: Path) -> None:
    cfg = write(tmp_path / "gatewayd.toml", VALID + '\n[[scanners]]\nid = "n"\nstation = "dock-04"\n'
                'driver = "tcp"\nhost = "10.0.0.61"\nport = 2001\n')  # fmt: skip
    first = gatewayd("check", "--config", str(cfg), tmp_path=tmp_path)
    assert first.returncode == 0, first.stderr
    again = write(tmp_path / "effective.toml", first.stdout)
    second = gatewayd("check", "--config", str(again), tmp_path=tmp_path)
    assert second.returncode == 0, second.stderr


def test_check_invalid_config_exits_2_listing_every_problem(tmp_path: Path) -> None:
    cfg = write(tmp_path / "gatewayd.toml", INVALID)
    result = gatewayd("check", "--config", str(cfg), tmp_path=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == f"gatewayd: 6 problem(s) in {cfg}:"
    paths = [line.strip().split(": ", 1)[0] for line in lines[1:]]
    assert sorted(paths) == sorted([
        "gateway.id", "mqtt.brokers[0]", "mqtt.password", "stations[0].step", "scanners[0].station", "scanners[0].port",
    ])  # fmt: skip
    assert "got 'recieving'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("text", "fragment"),
    [(None, "file not found (pass --config PATH or set GATEWAYD_CONFIG)"), ("[gateway\n", "not valid TOML")],
    ids=["missing file", "bad TOML"],
)
def test_check_unreadable_config_exits_2(tmp_path: Path, text: str | None, fragment: str) -> None:
    cfg = tmp_path / "gatewayd.toml"
    if text is not None:
        write(cfg, text)
    result = gatewayd("check", "--config", str(cfg), tmp_path=tmp_path)
    assert result.returncode == 2
    assert fragment in result.stderr and "Traceback" not in result.stderr


def test_check_the_shipped_example(tmp_path: Path) -> None:
    result = gatewayd("check", "--config", str(ROOT / "config" / "gatewayd.example.toml"), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert effective_config(result.stdout)["gateway"]["id"] == "dock-pi-03"


# -- --help -------------------------------------------------------------------------------------

HELP = [
    ((), ["run", "check", "decode", "capture", "devices", "demo", "print", "label", "outbox", "status", "--version"]),
    (("run",), ["--config", "--log-level"]),
    (("check",), ["--config", "--offline", "exit 2"]),
    (("decode",), ["--config", "--station", "--step", "RAW", "<GS>", "--capture", "--layout", "--scanner"]),
    (("capture",), ["--config", "--scanner", "--seconds", "--output", "stop the service"]),
    (("devices",), ["--config", "--json"]),
    (("demo",), ["--out", "--speed", "--once", "--port"]),
    (("print",), ["--config", "--printer", "--template", "--set", "--copies", "--batch"]),
    (("label",), ["preview"]),
    (("label", "preview"), ["--config", "--template", "--set", "--dpi", "--zpl", "--output"]),
    (("outbox",), ["--config", "--json", "--replay", "--dump"]),
    (("status",), ["--config", "--json", "3 not running"]),
]


@pytest.mark.parametrize(("verb", "options"), HELP, ids=[" ".join(v) or "gatewayd" for v, _ in HELP])
def test_help(tmp_path: Path, verb: tuple[str, ...], options: list[str]) -> None:
    result = gatewayd(*verb, "--help", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: gatewayd {' '.join(verb)}".rstrip())
    for option in options:
        assert option in result.stdout, f"{option} missing from `gatewayd {' '.join(verb)} --help`"


def test_version_and_missing_verb(tmp_path: Path) -> None:
    result = gatewayd("--version", tmp_path=tmp_path)
    assert result.returncode == 0 and re.fullmatch(r"gatewayd \d+\.\d+\.\d+\S*\n", result.stdout)
    result = gatewayd(tmp_path=tmp_path)
    assert result.returncode == 2 and "required: VERB" in result.stderr


# -- decode -------------------------------------------------------------------------------------


def decode_lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    for scan in lines:
        if "step_command" in scan:
            continue  # a step-command barcode, not a scan
        assert set(scan) >= SCAN_KEYS, SCAN_KEYS - set(scan)
        assert scan["schema"] == "gatewayd.scan/1"
        assert (scan["event_id"], scan["seq"]) == (None, None)  # the outbox assigns them under `run`
        assert RFC3339_MS.match(scan["scanned_at"]), scan["scanned_at"]
        assert isinstance(scan["clock_synced"], bool) and isinstance(scan["errors"], list)
    return lines


GS1 = {
    "kind": "gs1", "symbology": "]C1", "raw": "]C1010950600013435210ABC123\x1d17271231",
    "gtin": "09506000134352", "lot": "ABC123", "expiry": "2027-12-31", "serial": None, "sscc": None, "count": None,
    "ai": {"01": "09506000134352", "10": "ABC123", "17": "271231"}, "errors": [],
}  # fmt: skip


@pytest.mark.parametrize(
    "raw",
    [r"]C1010950600013435210ABC123<GS>17271231", r"]C1010950600013435210ABC123\x1d17271231"],
    ids=["<GS>", "\\x1d"],
)
def test_decode_gs1_element_string(tmp_path: Path, raw: str) -> None:
    [scan] = decode_lines(gatewayd("decode", raw, tmp_path=tmp_path))
    assert {k: scan[k] for k in GS1} == GS1
    # Without a config: a default station at receiving.
    assert (scan["gateway"], scan["station"], scan["step"]) == ("gatewayd", "station", "receiving")
    assert scan["biz_step"] == "urn:epcglobal:cbv:bizstep:receiving"


def test_decode_several_reads_one_line_each(tmp_path: Path) -> None:
    scans = decode_lines(gatewayd(
        "decode", "https://id.gs1.org/01/09506000134352/10/ABC123?17=271231", "96385074",
        r"]C1010950600013435210ABC123<GS>17271231", tmp_path=tmp_path,
    ))  # fmt: skip
    link, plain, gs1 = scans
    assert (link["kind"], link["gtin"], link["lot"]) == ("digital_link", "09506000134352", "ABC123")
    assert link["expiry"] == "2027-12-31"
    assert link["symbology"] is None
    # A plain number is never guessed into GS1 AIs: unknown, with an error saying why.
    assert (plain["kind"], plain["raw"], plain["gtin"], plain["ai"]) == ("unknown", "96385074", None, {})
    assert plain["errors"]
    assert gs1["kind"] == "gs1"


def test_decode_with_config_station_and_step(tmp_path: Path) -> None:
    cfg = write(tmp_path / "gatewayd.toml", VALID)
    [lot, gs1] = decode_lines(gatewayd(
        "decode", "--config", str(cfg), "--station", "dock-03", "SUP1-20261127-0001", "]C1010950600013435210X|17271231",
        tmp_path=tmp_path,
    ))  # fmt: skip
    assert (lot["gateway"], lot["station"], lot["step"]) == ("dock-pi-03", "dock-03", "receiving")
    assert lot["site"] == "ams1"  # as `run` publishes it (decode left it out before the two were unified)
    assert lot["read_point"] == "urn:epc:id:sgln:9506000134352.0.3"
    assert lot["kind"] == "lot"  # the configured lot_pattern
    assert gs1["lot"] == "X" and gs1["expiry"] == "2027-12-31"  # '|' configured as a GS substitute
    [scan] = decode_lines(gatewayd(
        "decode", "--config", str(cfg), "--station", "dock-03", "--step", "dispatch", "96385074", tmp_path=tmp_path,
    ))  # fmt: skip
    assert (scan["step"], scan["biz_step"]) == ("dispatch", "urn:epcglobal:cbv:bizstep:shipping")


def test_decode_with_a_vendor_prefix(tmp_path: Path) -> None:
    honeywell, zebra = (
        decode_lines(gatewayd("decode", "--prefix", prefix, raw, tmp_path=tmp_path))[0]
        for prefix, raw in (("honeywell", "I0109506000134352<GS>10ABC"), ("zebra", "P0Q0109506000134352"))
    )
    assert (honeywell["symbology"], honeywell["raw"], honeywell["kind"]) == ("]C1", "I0109506000134352\x1d10ABC", "gs1")
    assert (honeywell["gtin"], honeywell["lot"]) == ("09506000134352", "ABC")
    assert (zebra["symbology"], zebra["kind"], zebra["gtin"]) == ("]Q3", "gs1", "09506000134352")
    result = gatewayd("decode", "--prefix", "symbol", "x", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "--prefix: invalid choice: 'symbol' (choose from 'aim', 'honeywell', 'zebra', 'none')" in result.stderr


def test_decode_cuts_a_long_read_like_run(tmp_path: Path) -> None:
    [scan] = decode_lines(gatewayd("decode", "A" * 5000, tmp_path=tmp_path))
    assert scan["raw"] == "A" * 4096  # [decode] max_read_bytes
    assert scan["errors"][0] == "read of 5000 bytes cut to the first 4096"


def test_decode_step_command_says_so_and_tags_the_reads_after_it(tmp_path: Path) -> None:
    command, plain, bad = decode_lines(
        gatewayd("decode", "STEP:dispatch", "96385074", "STEP:flying", tmp_path=tmp_path)
    )
    assert command == {"step_command": "dispatch", "station": "station", "raw": "STEP:dispatch"}
    assert (plain["step"], plain["biz_step"]) == ("dispatch", "urn:epcglobal:cbv:bizstep:shipping")
    # An unknown step is no command: the read is shown, as `run` publishes it, with the error.
    assert bad["raw"] == "STEP:flying" and bad["step"] == "dispatch"
    assert bad["errors"][0] == (
        "step command b'STEP:flying': expected one of receiving, transfer, picking, dispatch after 'STEP:'"
    )


def test_decode_bad_escape_exits_2_naming_the_column(tmp_path: Path) -> None:
    result = gatewayd("decode", "ok", r"]C1\q01", r"<GS>\x1", tmp_path=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    expected = r"expected \xHH, \r, \n, \t or \\"
    assert result.stderr.splitlines() == [
        "gatewayd decode: 2 problem(s) in the reads:",
        f'  RAW 2 "]C1\\q01": unknown escape "\\q" at column 4; {expected}',
        f'  RAW 3 "<GS>\\x1": unknown escape "\\x" at column 5; {expected}',
    ]


def test_decode_unknown_station_exits_2(tmp_path: Path) -> None:
    cfg = write(tmp_path / "gatewayd.toml", VALID)
    result = gatewayd("decode", "--config", str(cfg), "--station", "dock-99", "X", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "--station: no station 'dock-99'" in result.stderr and "known: dock-03, dock-04" in result.stderr


# -- outbox ---------------------------------------------------------------------------------------


@pytest.fixture
def state_config(tmp_path: Path) -> Path:
    """A config whose state dir holds an outbox with seq 1..3 captured, seq 1 delivered."""
    cfg = write(tmp_path / "gatewayd.toml", VALID)
    with Outbox.open(tmp_path / "state" / "outbox.sqlite3", OutboxSettings()) as box:
        for i in range(1, 4):
            box.capture(
                topic="gatewayd/dock-pi-03/scans/dock-03",
                build=lambda seq, eid, i=i: json.dumps({"seq": seq, "event_id": eid, "raw": f"R{i}"}).encode(),
            )
        box.mark_delivered([1])
    return cfg


def test_outbox_summary(tmp_path: Path, state_config: Path) -> None:
    result = gatewayd("outbox", "--config", str(state_config), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = dict(line.split(None, 1) for line in result.stdout.splitlines())
    assert rows["depth"] == "2" and rows["last_seq"] == "3" and rows["oldest_undelivered_seq"] == "2"
    assert rows["path"] == str(tmp_path / "state" / "outbox.sqlite3")


def test_outbox_json(tmp_path: Path, state_config: Path) -> None:
    result = gatewayd("outbox", "--config", str(state_config), "--json", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    keys = ("depth", "last_seq", "oldest_undelivered_seq", "retained", "first_retained_seq", "full")
    assert {k: info[k] for k in keys} == {
        "depth": 2, "last_seq": 3, "oldest_undelivered_seq": 2, "retained": 3, "first_retained_seq": 1, "full": False,
    }  # fmt: skip
    assert RFC3339_MS.match(info["oldest_undelivered_at"])


@pytest.mark.parametrize(("spec", "seqs"), [("1:2", [1, 2]), ("2", [2, 3]), ("3:3", [3])])
def test_outbox_dump(tmp_path: Path, state_config: Path, spec: str, seqs: list[int]) -> None:
    result = gatewayd("outbox", "--config", str(state_config), "--dump", spec, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    payloads = [json.loads(line) for line in result.stdout.splitlines()]
    assert [p["seq"] for p in payloads] == seqs
    assert [p["raw"] for p in payloads] == [f"R{s}" for s in seqs]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("3:1", "--dump: TO (1) is smaller than FROM (3), got '3:1'"),
        ("0:2", "--dump: FROM must be at least 1, got '0:2'"),
        ("x", "--dump: expected FROM or FROM:TO sequence numbers, got 'x'"),
        ("7", "--dump: FROM (7) is beyond the last captured seq (3), got '7'"),
    ],
)
def test_outbox_bad_range_exits_2(tmp_path: Path, state_config: Path, spec: str, message: str) -> None:
    result = gatewayd("outbox", "--config", str(state_config), "--dump", spec, tmp_path=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines()[1:] == [f"  {message}"]


def test_outbox_replay_past_the_last_seq_names_it(tmp_path: Path) -> None:
    """Formerly "expected 1 <= FROM <= TO, got '1'" on an outbox with nothing captured."""
    cfg = write(tmp_path / "gatewayd.toml", VALID)
    Outbox.open(tmp_path / "state" / "outbox.sqlite3", OutboxSettings()).close()
    result = gatewayd("outbox", "--config", str(cfg), "--replay", "1", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "  --replay: FROM (1) is beyond the last captured seq (0), got '1'" in result.stderr.splitlines()


def test_outbox_on_a_damaged_file_is_one_error_and_touches_nothing(tmp_path: Path) -> None:
    cfg = write(tmp_path / "gatewayd.toml", VALID)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "outbox.sqlite3").write_bytes(b"\0" * 5000)
    result = gatewayd("outbox", "--config", str(cfg), tmp_path=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("gatewayd: error: ") and "not an SQLite database" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["outbox.sqlite3"]


def test_outbox_without_state_says_so(tmp_path: Path) -> None:
    cfg = write(tmp_path / "gatewayd.toml", VALID)
    result = gatewayd("outbox", "--config", str(cfg), tmp_path=tmp_path)
    assert result.returncode == 1
    assert "no outbox at" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "state" / "outbox.sqlite3").exists()  # looking does not create one


def test_check_with_epcis_checks_read_points_and_capture_credentials(tmp_path: Path) -> None:
    # VALID's read point puts the whole GLN in the company-prefix slot: harmless without
    # EPCIS, named with [epcis]; so is a token file that cannot be read.
    epcis = '\n[epcis]\ncapture_url = "https://epcis.example.com/capture"\ntoken_file = "missing-token"\n'
    cfg = write(tmp_path / "gatewayd.toml", VALID + epcis)
    result = gatewayd("check", "--config", str(cfg), tmp_path=tmp_path)
    assert result.returncode == 2, result.stdout
    lines = [line for line in result.stderr.splitlines() if not line.startswith("note: ")]  # unplugged scanner
    assert lines[0] == f"gatewayd: 2 problem(s) in {cfg}:"
    assert lines[1].strip().startswith("stations[0].location: 'urn:epc:id:sgln:9506000134352.0.3' is not an SGLN")
    assert lines[2].strip().startswith(f"epcis.token_file: cannot read {tmp_path / 'missing-token'}")
    # --offline checks the config alone: the read point, not the token file of this machine.
    offline = gatewayd("check", "--offline", "--config", str(cfg), tmp_path=tmp_path)
    assert offline.returncode == 2
    assert "stations[0].location" in offline.stderr and "epcis.token_file: cannot read" not in offline.stderr
    fixed = VALID.replace("9506000134352.0.3", "9506000.13435.3") + epcis
    write(tmp_path / "missing-token", "t0ken\n")
    result = gatewayd("check", "--config", str(write(cfg, fixed)), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert effective_config(result.stdout)["epcis"]["capture_url"] == "https://epcis.example.com/capture"


def test_outbox_shows_the_reserved_seqs_and_the_files_kept_aside(tmp_path: Path) -> None:
    cfg = write(tmp_path / "gatewayd.toml", VALID)
    path = tmp_path / "state" / "outbox.sqlite3"
    path.parent.mkdir()
    path.write_bytes(b"\0" * 4096)  # damaged: the daemon sets it aside at open
    with Outbox.open(path, OutboxSettings()) as box:
        (kept,) = box.kept_aside()
        box.capture(topic="t", build=lambda seq, eid: json.dumps({"seq": seq, "event_id": eid}).encode())
    result = gatewayd("outbox", "--config", str(cfg), "--json", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert kept.name.startswith("outbox.sqlite3.damaged-")
    assert (info["kept_aside"], info["seq_reserved"]) == ([kept.name], 1000)
    text = gatewayd("outbox", "--config", str(cfg), tmp_path=tmp_path).stdout
    assert f"kept_aside               {kept.name}" in text.splitlines()
