"""Key checking for TOML tables: each key taken once with its type and check, the rest reported.

One helper for every TOML file gatewayd reads (the config, label templates), so each names
its problems the same way, ``key.path: message``, and reports them all at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["MISSING", "Problems", "Table"]

# Marks a key that is absent, and a default that does not exist (the key is required).
MISSING: Any = object()

_TYPE_NAMES: dict[type, str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "a table",
}


class Problems:
    """Every problem found in one file, as ``key.path: message`` lines."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}")


class Table:
    """One TOML table being validated: takes keys, then reports the ones never taken."""

    def __init__(self, data: Mapping[str, Any], path: str, problems: Problems) -> None:
        self.data = data
        self.path = path
        self.problems = problems
        self.taken: set[str] = set()

    def key(self, name: str) -> str:
        """The key path of ``name`` in this table."""
        return f"{self.path}.{name}" if self.path else name

    def raw(self, name: str) -> Any:
        """The value of ``name`` as written (``MISSING`` if absent), taken unchecked."""
        self.taken.add(name)
        return self.data.get(name, MISSING)

    def get(
        self,
        name: str,
        kind: type | tuple[type, ...],
        default: Any = MISSING,
        *,
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        """The value of ``name`` if it has the type ``kind`` and passes ``check``.

        An absent key yields ``default`` (a problem when there is none); a wrong value is
        a problem and yields ``default`` too (``None`` when required), so one mistake is
        reported once, not again by whatever depends on it. An integer is taken where a
        number (float) is expected; ``true`` is never taken as a number.
        """
        fallback = None if default is MISSING else default
        value = self.raw(name)
        if value is MISSING:
            if default is MISSING:
                self.problems.add(self.key(name), "required key is missing")
            return fallback
        kinds = kind if isinstance(kind, tuple) else (kind,)
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            ok = True
            value = float(value)
        if not ok:
            want = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
            self.problems.add(self.key(name), f"expected {want}, got {value!r}")
            return fallback
        message = check(value) if check is not None else None
        if message:
            self.problems.add(self.key(name), message)
            return fallback
        return value

    def skip(self, names: Iterable[str]) -> None:
        """Take ``names`` unchecked: they cannot be judged (their table's type is wrong)."""
        self.taken.update(names)

    def finish(self, *, elsewhere: Mapping[str, str] | None = None) -> None:
        """Report every key never taken. ``elsewhere`` explains keys that belong to another
        kind of table (``{"host": "host is a key of driver 'tcp'"}``), so the problem says
        where the key goes rather than suggesting a typo."""
        hints = elsewhere or {}
        for name in self.data:
            if name not in self.taken:
                hint = hints.get(name, "check the spelling")
                self.problems.add(self.key(name), f"unknown key ({hint})")
