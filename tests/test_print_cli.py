"""`gatewayd print` and `gatewayd label preview` as a site engineer runs them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import zxingcpp

from tests.mqtt_tools import ROOT, write_config
from tests.test_label_render import raster
from tests.test_print_crash import ThreadedZebra


@pytest.fixture
def zebra() -> Iterator[ThreadedZebra]:
    z = ThreadedZebra()
    yield z
    z.close()


def gatewayd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gatewayd", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def config(tmp_path: Path, url: str) -> Path:
    return write_config(
        tmp_path / "g.toml",
        f"""
[gateway]
id = "cli-gw"
state_dir = "{tmp_path / "state"}"
[[printers]]
id = "zebra"
driver = "zpl"
transport = "{url}"
""",
    )


def test_print_batch_uses_the_persisted_lot_sequence(tmp_path: Path, zebra: ThreadedZebra) -> None:
    cfg = config(tmp_path, zebra.zebra.url)
    first = gatewayd(
        "print",
        "--config",
        str(cfg),
        "--printer",
        "zebra",
        "--batch",
        "3",
        "--set",
        "supplier=SUPX",
        "--set",
        "date=2026-11-27",
    )
    assert first.returncode == 0, first.stderr
    assert "printed 3 label(s) on zebra (lots SUPX-20261127-0001 to SUPX-20261127-0003)" in first.stdout
    second = gatewayd(
        "print",
        "--config",
        str(cfg),
        "--printer",
        "zebra",
        "--batch",
        "1",
        "--set",
        "supplier=SUPX",
        "--set",
        "date=2026-11-27",
    )
    assert "SUPX-20261127-0004" in second.stdout
    labels = zebra.labels()
    assert len(labels) == 4
    assert [r.text for r in zxingcpp.read_barcodes(raster(labels[0], 203))] == ["SUPX-20261127-0001"]


def test_print_refuses_when_the_printer_is_not_ready(tmp_path: Path, zebra: ThreadedZebra) -> None:
    zebra.zebra.state = "head_open"
    result = gatewayd(
        "print", "--config", str(config(tmp_path, zebra.zebra.url)), "--printer", "zebra", "--set", "lot=A-1"
    )
    assert result.returncode == 1
    assert "zebra is head_open" in result.stderr and "0 of 1 label(s) printed" in result.stderr
    assert zebra.labels() == []


def test_print_reports_bad_fields(tmp_path: Path, zebra: ThreadedZebra) -> None:
    result = gatewayd(
        "print", "--config", str(config(tmp_path, zebra.zebra.url)), "--printer", "zebra", "--set", "gtin=123"
    )
    assert result.returncode == 2 and "gtin" in result.stderr


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_label_preview_writes_the_file(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"label{suffix}"
    result = gatewayd(
        "label",
        "preview",
        "--config",
        str(tmp_path / "absent.toml"),
        "--template",
        "lot",
        "--set",
        "lot=L-9",
        "--set",
        "gtin=09506000134352",
        "-o",
        str(out),
    )
    # An absent explicit config is an error that names the file.
    assert result.returncode == 2 and "absent.toml" in result.stderr
    result = gatewayd(
        "label", "preview", "--template", "lot", "--set", "lot=L-9", "--set", "gtin=09506000134352", "-o", str(out)
    )
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 500
    if suffix == ".png":
        from PIL import Image

        texts = [r.text for r in zxingcpp.read_barcodes(Image.open(out))]
        assert texts == ["https://id.gs1.org/01/09506000134352/10/L-9"]
