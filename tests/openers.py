"""A scripted device opener: the seam through which driver tests hand a driver its device."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class Opener(Generic[T]):
    """Returns (or raises) the scripted results in turn, the last one for good; records paths."""

    def __init__(self, *results: T | BaseException) -> None:
        self.results = list(results)
        self.opened: list[str] = []

    def __call__(self, path: str) -> T:
        self.opened.append(path)
        result = self.results.pop(0) if len(self.results) > 1 else self.results[0]
        if isinstance(result, BaseException):
            raise result
        return result
