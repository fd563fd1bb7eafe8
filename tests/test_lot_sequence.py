"""LotSequence: reservations never overlap, across reopen and concurrent connections."""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path

import pytest

from gatewayd.errors import PayloadError
from gatewayd.printing.lot_sequence import LotSequence

DAY = date(2026, 11, 27)


def test_consecutive_reservations_do_not_overlap(tmp_path: Path) -> None:
    with LotSequence(tmp_path / "lots.db") as seq:
        assert seq.reserve("SUP1", DAY, 3, max_seq=9999) == range(1, 4)
        assert seq.reserve("SUP1", DAY, 500, max_seq=9999) == range(4, 504)
        assert seq.last("SUP1", DAY) == 503


def test_survives_reopen(tmp_path: Path) -> None:
    with LotSequence(tmp_path / "lots.db") as seq:
        seq.reserve("SUP1", DAY, 10, max_seq=9999)
    with LotSequence(tmp_path / "lots.db") as seq:
        assert seq.reserve("SUP1", DAY, 1, max_seq=9999) == range(11, 12)


def test_suppliers_and_dates_are_independent(tmp_path: Path) -> None:
    with LotSequence(tmp_path / "lots.db") as seq:
        seq.reserve("SUP1", DAY, 5, max_seq=9999)
        assert seq.reserve("SUP2", DAY, 2, max_seq=9999) == range(1, 3)
        assert seq.reserve("SUP1", date(2026, 11, 28), 2, max_seq=9999) == range(1, 3)
        assert seq.reserve("SUP1", DAY, 1, max_seq=9999) == range(6, 7)


def test_exceeding_max_reserves_nothing(tmp_path: Path) -> None:
    with LotSequence(tmp_path / "lots.db") as seq:
        seq.reserve("SUP1", DAY, 9990, max_seq=9999)
        with pytest.raises(PayloadError) as info:
            seq.reserve("SUP1", DAY, 10, max_seq=9999)
        assert str(info.value) == (
            "Cannot reserve 10 lot numbers for supplier 'SUP1' on 2026-11-27: "
            "9990 of 9999 are used, 9 left"
        )
        assert seq.reserve("SUP1", DAY, 9, max_seq=9999) == range(9991, 10000)


@pytest.mark.parametrize(
    ("supplier", "count", "message"),
    [
        ("SUP1", 0, "Cannot reserve 0 lot numbers: expected a count >= 1"),
        ("SUP1", -3, "Cannot reserve -3 lot numbers: expected a count >= 1"),
        ("", 1, "Cannot reserve lot numbers: supplier is empty"),
    ],
)
def test_bad_requests(tmp_path: Path, supplier: str, count: int, message: str) -> None:
    with LotSequence(tmp_path / "lots.db") as seq, pytest.raises(PayloadError) as info:
        seq.reserve(supplier, DAY, count, max_seq=9999)
    assert str(info.value) == message


def test_concurrent_connections_do_not_overlap(tmp_path: Path) -> None:
    path = tmp_path / "lots.db"
    LotSequence(path).close()  # create the schema once
    got: list[list[range]] = [[], []]
    start = threading.Barrier(2)

    def worker(slot: int) -> None:
        with LotSequence(path) as seq:
            start.wait(timeout=10)
            for _ in range(50):
                got[slot].append(seq.reserve("SUP1", DAY, 7, max_seq=9999))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    numbers = [n for ranges in got for r in ranges for n in r]
    assert len(numbers) == 2 * 50 * 7
    assert sorted(numbers) == list(range(1, 701))
