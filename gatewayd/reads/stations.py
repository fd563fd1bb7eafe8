"""Stations: the movement step each dock position is doing, and its dedupe window.

A station's step changes by a ``station/step`` request or by a step command barcode
(``STEP:transfer`` with the default prefix). The change is recorded (persisted and
published as the station's retained state), never published as a scan.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from gatewayd.config import STEPS, Settings, StationSettings, Step

__all__ = ["BIZ_STEPS", "StationState", "Stations", "StepCommand"]

# GS1 CBV 2.0 business steps (README "Scan event": step mapping).
BIZ_STEPS: dict[str, str] = {
    "receiving": "urn:epcglobal:cbv:bizstep:receiving",
    "transfer": "urn:epcglobal:cbv:bizstep:storing",
    "picking": "urn:epcglobal:cbv:bizstep:picking",
    "dispatch": "urn:epcglobal:cbv:bizstep:shipping",
}


@dataclass(frozen=True, slots=True)
class StationState:
    id: str
    step: Step
    since: float
    location: str | None
    dedupe_ms: int

    @property
    def biz_step(self) -> str:
        return BIZ_STEPS[self.step]


@dataclass(frozen=True, slots=True)
class StepCommand:
    """A scanned step command: ``step`` is set when valid, else ``error`` says why."""

    step: Step | None
    error: str | None


class Stations:
    """Current step per station, persisted through ``load``/``save`` callbacks.

    The dedupe window slides: a payload read again at the same station within
    ``dedupe_ms`` of its previous read is suppressed and counted, so a pallet parked in
    front of a fixed-mount scanner yields one scan, not one every window.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        load: Callable[[str], str | None] = lambda key: None,
        save: Callable[[str, str], None] = lambda key, value: None,
    ) -> None:
        self._save = save
        self._prefix = settings.decode.step_prefix
        self._states: dict[str, StationState] = {}
        self._last_seen: dict[str, dict[bytes, float]] = {}
        self.suppressed: dict[str, int] = {}
        now = time.time()
        for s in settings.stations:
            self._states[s.id] = self._restore(s, load, now)
            self._last_seen[s.id] = {}
            self.suppressed[s.id] = 0

    @staticmethod
    def _restore(s: StationSettings, load: Callable[[str], str | None], now: float) -> StationState:
        saved = load(f"station.{s.id}.step")
        step: Step = s.step
        since = now
        if saved:
            name, _, at = saved.partition("@")
            if name in STEPS:
                step = name
                since = float(at) if at else now
        return StationState(s.id, step, since, s.location, s.dedupe_ms)

    def __contains__(self, station_id: object) -> bool:
        return station_id in self._states

    def __getitem__(self, station_id: str) -> StationState:
        return self._states[station_id]

    def all(self) -> list[StationState]:
        return list(self._states.values())

    def set_step(self, station_id: str, step: Step, *, at: float | None = None) -> StationState:
        old = self._states[station_id]
        now = time.time() if at is None else at
        new = StationState(old.id, step, now, old.location, old.dedupe_ms)
        self._save(f"station.{station_id}.step", f"{step}@{now}")
        self._states[station_id] = new
        return new

    def step_command(self, data: bytes) -> StepCommand | None:
        """The step command in a read, or ``None`` when the read is not a command."""
        prefix = self._prefix.encode()
        stripped = data.strip()
        if stripped[:1] == b"]" and len(stripped) >= 3:
            # A scanner set to send AIM identifiers prefixes commands too (]C0, ]Q1...).
            stripped = stripped[3:]
        if not stripped.startswith(prefix):
            return None
        name = stripped[len(prefix) :].decode("utf-8", "replace").strip().lower()
        if name in STEPS:
            return StepCommand(name, None)
        return StepCommand(
            None, f"step command {stripped!r}: expected one of {', '.join(STEPS)} after {self._prefix!r}"
        )

    def is_repeat(self, station_id: str, data: bytes, monotonic: float) -> bool:
        """True when ``data`` was read at this station within its dedupe window."""
        state = self._states[station_id]
        if state.dedupe_ms <= 0:
            return False
        window = state.dedupe_ms / 1000
        seen = self._last_seen[station_id]
        last = seen.get(data)
        seen[data] = monotonic
        if len(seen) > 1024:  # forget entries whose window has long passed
            for key, t in list(seen.items()):
                if monotonic - t > window:
                    del seen[key]
        if last is not None and monotonic - last < window:
            self.suppressed[station_id] += 1
            return True
        return False
