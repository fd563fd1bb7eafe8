"""Fakes that ship beside the real drivers, injected in tests and the demo."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Self

from drivers.base import DeviceUnavailable


class RecordingTransport:
    """A printer transport that records every byte sent (``.output``) and answers queries.

    ``answer`` is what ``query`` returns: bytes (``b""`` = a silent printer), ``None`` (a
    transport that cannot read back), or a callable given the request. Set ``unavailable``
    to a message to make ``send`` and ``query`` raise :class:`DeviceUnavailable` with it.
    """

    def __init__(
        self,
        *,
        id: str = "recording",
        answer: bytes | Callable[[bytes], bytes | None] | None = None,
    ) -> None:
        self.id = id
        self.answer = answer
        self.unavailable: str | None = None
        self.sent: list[bytes] = []
        self.queries: list[bytes] = []
        self.opened = 0
        self.closed = 0

    @property
    def output(self) -> bytes:
        return b"".join(self.sent)

    async def __aenter__(self) -> Self:
        self.opened += 1
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.closed += 1

    async def send(self, data: bytes) -> None:
        if self.unavailable is not None:
            raise DeviceUnavailable(f"printer {self.id}: {self.unavailable}")
        self.sent.append(bytes(data))

    async def query(self, data: bytes, *, timeout: float) -> bytes | None:
        if self.unavailable is not None:
            raise DeviceUnavailable(f"printer {self.id}: {self.unavailable}")
        self.queries.append(bytes(data))
        return self.answer(data) if callable(self.answer) else self.answer
