"""Wall-clock helpers: RFC 3339 timestamps, UUIDv7 event ids, and an honest sync flag."""

from __future__ import annotations

import ctypes
import functools
import math
import os
import threading
import time
import uuid

__all__ = ["ClockSync", "rfc3339", "uuid7"]


def rfc3339(at: float) -> str:
    """``2026-11-27T10:15:02.123Z``: RFC 3339, UTC, milliseconds (README "MQTT topics")."""
    # As datetime.fromtimestamp rounds (to the microsecond, half to even), at a third of
    # its cost: this is on every read's path.
    frac, whole = math.modf(at)
    us = round(frac * 1e6)
    if us >= 1_000_000:
        whole, us = whole + 1, us - 1_000_000
    elif us < 0:
        whole, us = whole - 1, us + 1_000_000
    return f"{_second(int(whole))}.{us // 1000:03d}Z"


@functools.lru_cache(maxsize=8)
def _second(whole: int) -> str:
    """``2026-11-27T10:15:02``: reads come many to a second."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))


class _Uuid7:
    """RFC 9562 UUIDv7: 48-bit Unix milliseconds, then random bits.

    Ids made by one process are strictly increasing (RFC 9562 6.2, method 1: a 12-bit
    counter in ``rand_a`` for ids within the same millisecond), so they sort like ``seq``.
    The random bits come from the kernel's CSPRNG, drawn 4 KiB at a time: one system call
    per 512 ids rather than one or two per id, which is on every read's path.
    """

    _POOL = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = 0
        self._counter = 0
        self._pool = b""
        self._pos = 0

    def _random(self) -> int:
        """8 random bytes as an integer (under the lock)."""
        if self._pos + 8 > len(self._pool):
            self._pool, self._pos = os.urandom(self._POOL), 0
        pos = self._pos
        self._pos = pos + 8
        return int.from_bytes(self._pool[pos : pos + 8])

    def _value(self, at: float | None) -> int:
        ms = int((time.time() if at is None else at) * 1000)
        with self._lock:
            if ms <= self._last_ms:
                ms = self._last_ms
                self._counter += 1
                if self._counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                    ms += 1
                    self._counter = 0
            else:
                self._counter = self._random() >> 53  # 11 random bits leave room to count up
            self._last_ms = ms
            counter = self._counter
            rand_b = self._random() >> 2  # 62 bits
        return (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand_b

    def __call__(self, at: float | None = None) -> uuid.UUID:
        return uuid.UUID(int=self._value(at))

    def text(self, at: float | None = None) -> str:
        """``str(uuid7(at))``, at half the cost."""
        h = f"{self._value(at):032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


uuid7 = _Uuid7()


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h>; only ``status`` is read, the rest is padding room.
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("_rest", ctypes.c_byte * 256),
    ]


_TIME_ERROR = 5  # adjtimex(2): the clock is not synchronised


class ClockSync:
    """Whether the system clock is disciplined by NTP/PTP, as the kernel reports it.

    ``adjtimex(2)`` returns ``TIME_ERROR`` while the kernel considers the clock
    unsynchronised (``STA_UNSYNC``); chrony, ntpd and systemd-timesyncd all clear it once
    synchronised. The answer is cached for a few seconds. ``GATEWAYD_CLOCK_SYNCED=0|1``
    overrides it (for tests and for clocks synchronised by other means).
    """

    def __init__(self, *, cache_s: float = 10.0) -> None:
        self._cache_s = cache_s
        self._checked = -1e9
        self._value = False
        self._adjtimex = None
        # The running interpreter already has the C library loaded: look the symbol up
        # there rather than with ctypes.util.find_library, which spawns ldconfig.
        try:
            self._adjtimex = ctypes.CDLL(None, use_errno=True).adjtimex
        except (OSError, AttributeError):
            self._adjtimex = None

    def synced(self) -> bool:
        now = time.monotonic()
        if now - self._checked < self._cache_s:
            return self._value  # every read asks: the environment is read with the kernel
        self._checked = now
        override = os.environ.get("GATEWAYD_CLOCK_SYNCED")
        self._value = override == "1" if override in ("0", "1") else self._query()
        return self._value

    def _query(self) -> bool:
        if self._adjtimex is None:
            return False
        tx = _Timex()
        state = self._adjtimex(ctypes.byref(tx))
        return bool(state >= 0 and state != _TIME_ERROR)
