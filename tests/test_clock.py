"""The timestamps every payload carries."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import example, given
from hypothesis import strategies as st

from gatewayd.clock import rfc3339


@given(st.floats(min_value=0, max_value=2**32 * 2, allow_nan=False))
@example(1_000_000_000.9999995)  # rounds up into the next second
@example(1_700_000_000.0000005)
@example(86_399.9995)
@example(0.0)
def test_rfc3339_is_what_datetime_says_to_the_millisecond(at: float) -> None:
    dt = datetime.fromtimestamp(at, tz=UTC)
    assert rfc3339(at) == dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def test_uuid7_ids_are_version_7_increasing_and_carry_the_millisecond() -> None:
    import uuid

    from gatewayd.clock import _Uuid7

    uuid7 = _Uuid7()  # its own: the process's one may have made ids later than ``at``
    at = 1_764_000_000.123
    ids = [uuid7.text(at) for _ in range(5000)]  # one millisecond: the counter, then borrowing
    ids.append(str(uuid7(at + 10)))
    parsed = [uuid.UUID(i) for i in ids]
    assert [str(u) for u in parsed] == ids  # the text is the canonical form
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in parsed)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert parsed[0].int >> 80 == 1_764_000_000_123  # unix milliseconds in the top 48 bits
    assert parsed[-1].int >> 80 == 1_764_000_010_123  # ten seconds later
    assert len({u.int & (2**62 - 1) for u in parsed}) == len(parsed)  # random bits differ
