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
