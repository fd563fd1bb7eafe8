"""One small hierarchy of errors; each message gives the value and what was expected."""

from __future__ import annotations

from gatewayd_drivers.base import DeviceUnavailable

__all__ = [
    "ConfigError",
    "DeviceUnavailable",
    "GatewaydError",
    "OutboxDamaged",
    "OutboxFull",
    "PayloadError",
    "RequestFailed",
    "StateUnavailable",
    "StateUnwritable",
]


class GatewaydError(Exception):
    """Base of gatewayd's own errors."""


class ConfigError(GatewaydError):
    """The configuration is invalid. ``problems`` lists every one as ``key.path: message``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid configuration:\n" + "\n".join(f"  {p}" for p in problems))


class PayloadError(GatewaydError):
    """A request or label payload is invalid; the request is answered with this message."""


class OutboxFull(GatewaydError):
    """The outbox is at its limit: the read is refused, nothing captured is dropped."""


class StateUnwritable(GatewaydError):
    """The state directory cannot be written: a restart cannot fix it (exit 2)."""


class StateUnavailable(GatewaydError):
    """The state directory cannot be written now (a full disk, an I/O error): retrying may help."""


class OutboxDamaged(GatewaydError):
    """The outbox database is damaged; the daemon recovers it at start, the CLI only reports."""


class RequestFailed(GatewaydError):
    """A request from the command line got no answer: no broker, no SUBACK, no gateway."""
