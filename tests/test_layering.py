"""The layering of docs/ARCHITECTURE.md, checked on the source and at run time.

- ``gatewayd`` imports ``gatewayd_drivers`` (the ``drivers/`` folder), never the reverse;
  drivers know bytes and devices, never MQTT, SQLite or config files.
- Each package of ``gatewayd`` imports only the packages below it (:data:`LAYERS`), and
  nothing but the entry points imports the daemon, the composition root.
- No import cycles between modules, counting imports at any depth: function-local ones and
  ``if TYPE_CHECKING:`` ones included.
- The shipped packages never import the test suite, and importing the daemon loads no test
  fake and no optional printer library.

Every import statement is read, at any depth, plus ``importlib.import_module`` /
``__import__`` with a constant name.
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

# Each part of gatewayd and the parts it may import (besides itself and gatewayd_drivers).
# Leaf modules import no other part; the daemon wires the parts; the CLI and the demo sit
# on top. A new package must be placed here before it can pass.
LEAVES = {
    "gatewayd",
    "gatewayd.clock",
    "gatewayd.errors",
    "gatewayd.gs1",
    "gatewayd.logging_setup",
    "gatewayd.memory",
    "gatewayd.payloads",
    "gatewayd.status_file",
    "gatewayd.systemd",
}
PARTS = {"gatewayd.config", "gatewayd.reads", "gatewayd.delivery", "gatewayd.printing", "gatewayd.epcis"}
LAYERS: dict[str, set[str]] = {
    **dict.fromkeys(LEAVES, LEAVES),
    "gatewayd.config": LEAVES,
    "gatewayd.reads": LEAVES | {"gatewayd.config"},
    "gatewayd.delivery": LEAVES | {"gatewayd.config"},
    "gatewayd.printing": LEAVES | {"gatewayd.config"},
    "gatewayd.feedback": LEAVES | {"gatewayd.config"},
    "gatewayd.epcis": LEAVES | {"gatewayd.config"},
    # The HTTP surface shows the feedback boards; it gets the rest from the daemon as callables.
    "gatewayd.http": LEAVES | {"gatewayd.config", "gatewayd.feedback"},
    "gatewayd.daemon": LEAVES | PARTS | {"gatewayd.feedback", "gatewayd.http"},
    "gatewayd.demo": LEAVES | PARTS | {"gatewayd.feedback", "gatewayd.http", "gatewayd.daemon"},
    "gatewayd.cli": LEAVES | PARTS | {"gatewayd.feedback", "gatewayd.http", "gatewayd.daemon", "gatewayd.demo"},
    "gatewayd.__main__": {"gatewayd.cli"},
}

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


# -- the module graph ------------------------------------------------------------------


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[0] == "drivers":
        parts[0] = "gatewayd_drivers"
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in [*GATEWAYD, *DRIVERS]}


def resolve(name: str) -> str | None:
    """The project module an imported name refers to (``a.b.Attr`` → ``a.b``), if any."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES:
            return candidate
        parts.pop()
    return None


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for mod, path in MODULES.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        targets = {resolve(n) for _, n in imported_names(path.read_text(encoding="utf-8"), package=package)}
        edges[mod] = {t for t in targets if t is not None and t != mod}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def part_of(module: str) -> str:
    """The LAYERS entry a gatewayd module belongs to (its package, or itself for a leaf)."""
    if module in LAYERS:
        return module
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def test_no_import_cycles() -> None:
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_one() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_part_imports_only_the_parts_below_it() -> None:
    problems = []
    for mod, targets in sorted(graph().items()):
        if not mod.startswith("gatewayd.") and mod != "gatewayd":
            continue
        part = part_of(mod)
        if part not in LAYERS:
            problems.append(f"{mod}: package {part} is not placed in LAYERS")
            continue
        for target in sorted(targets):
            if target.startswith("gatewayd_drivers"):
                continue
            target_part = part_of(target)
            if target_part != part and target_part not in LAYERS[part]:
                problems.append(f"{mod} imports {target}: {part} may not import {target_part}")
    assert problems == []


def test_only_the_entry_points_import_the_daemon() -> None:
    importers = sorted(m for m, targets in graph().items() if "gatewayd.daemon" in targets)
    assert all(part_of(m) in ("gatewayd.cli", "gatewayd.demo") for m in importers), importers


def test_importing_the_daemon_loads_no_fake_and_no_optional_printer_library() -> None:
    code = (
        "import json, sys\n"
        "import gatewayd.daemon, gatewayd.cli.main\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('escpos', 'tests')"
        " or m == 'gatewayd_drivers.fake')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_importing_the_daemon_loads_no_http_stack_and_no_gpio_library() -> None:
    # A gateway without [http] or GPIO lights pays nothing for them: they load when configured.
    code = (
        "import json, sys\n"
        "import gatewayd.daemon, gatewayd.cli.main\n"
        "heavy = {'starlette', 'uvicorn', 'prometheus_client', 'gpiozero'}\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in heavy or m.startswith('gatewayd.http')]\n"
        "print(json.dumps(sorted(loaded)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    assert "gatewayd.http" in LAYERS and "gatewayd.feedback" in LAYERS
