"""The layering DESIGN fixes: ``gatewayd`` imports ``drivers``, never the other way round.

Drivers know bytes and devices, never MQTT, SQLite or config files (STYLE guideline 1), and
the shipped packages never import the test suite. Checked on the source (every import
statement, at any depth, plus ``importlib.import_module``/``__import__`` with a constant
name) and at run time (what importing every driver actually loads).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DRIVERS = sorted((ROOT / "drivers").glob("*.py"))
GATEWAYD = sorted((ROOT / "gatewayd").rglob("*.py"))

# Top-level packages a driver must not import: the daemon (which includes gatewayd.config),
# MQTT clients, SQLite, TOML config parsing, the test suite.
DRIVER_FORBIDDEN = ("gatewayd", "paho", "aiomqtt", "amqtt", "sqlite3", "tomllib", "tests")
PACKAGE_FORBIDDEN = ("tests", "pytest", "hypothesis")


def imported_names(source: str, *, package: str) -> list[tuple[int, str]]:
    """Every module name the source imports, with its line: absolute, relative (resolved
    against ``package``), nested in functions or ``if TYPE_CHECKING:``, or dynamic."""
    names: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names.append((node.lineno, module))
            # `from gatewayd import config` names gatewayd.config
            names += [(node.lineno, f"{module}.{alias.name}") for alias in node.names if alias.name != "*"]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if called in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                names.append((node.lineno, node.args[0].value))
    return names


def violations(path: Path, forbidden: tuple[str, ...], package: str) -> list[str]:
    found = []
    for line, name in imported_names(path.read_text(encoding="utf-8"), package=package):
        if name.split(".")[0] in forbidden:
            found.append(f"{path.relative_to(ROOT)}:{line}: imports {name}")
    return found


def test_there_are_drivers_to_check() -> None:
    assert len(DRIVERS) >= 10 and len(GATEWAYD) >= 10


@pytest.mark.parametrize("path", DRIVERS, ids=[p.name for p in DRIVERS])
def test_driver_imports_no_daemon_mqtt_sqlite_or_config(path: Path) -> None:
    assert violations(path, DRIVER_FORBIDDEN, "drivers") == []


@pytest.mark.parametrize("path", GATEWAYD, ids=[str(p.relative_to(ROOT / "gatewayd")) for p in GATEWAYD])
def test_gatewayd_never_imports_the_tests(path: Path) -> None:
    package = ".".join(path.relative_to(ROOT).parent.parts)
    assert violations(path, PACKAGE_FORBIDDEN, package) == []


def test_drivers_never_import_the_tests_either() -> None:
    assert [v for p in DRIVERS for v in violations(p, PACKAGE_FORBIDDEN, "drivers")] == []


@pytest.mark.parametrize(
    "source",
    [
        "import gatewayd",
        "import gatewayd.config as cfg",
        "from gatewayd.config import Settings",
        "from gatewayd import config",
        "import paho.mqtt.client as mqtt",
        "import sqlite3",
        "def f():\n    import sqlite3\n",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from gatewayd.config import Settings\n",
        "import importlib\nm = importlib.import_module('paho.mqtt.client')",
        "m = __import__('sqlite3')",
        "import tomllib",
    ],
)
def test_the_checker_catches_forbidden_imports(source: str) -> None:
    # The checks above are only as good as this parser.
    names = [name for _, name in imported_names(source, package="drivers")]
    assert any(n.split(".")[0] in DRIVER_FORBIDDEN for n in names), names


def test_the_checker_allows_driver_internal_imports() -> None:
    source = "from . import base\nfrom .framing import Framer\nimport serial"
    names = [n for _, n in imported_names(source, package="drivers")]
    assert names == ["drivers", "drivers.base", "drivers.framing", "drivers.framing.Framer", "serial"]


def test_importing_every_driver_loads_no_daemon_mqtt_or_sqlite() -> None:
    # What the source check cannot see: a dependency that pulls one of them in.
    modules = [f"gatewayd_drivers.{p.stem}" for p in DRIVERS if p.stem != "__init__"]
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {DRIVER_FORBIDDEN!r})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
