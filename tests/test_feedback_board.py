"""A station board's subscribers: events in order, a slow page closed, not buffered forever."""

from __future__ import annotations

from gatewayd.feedback.board import QUEUE_LIMIT, Board


async def test_events_reach_every_subscriber_in_order_with_rising_revisions() -> None:
    board = Board("dock-03")
    a, b = board.subscribe(), board.subscribe()
    board.set_verdict({"verdict": "reject"})
    board.emit("step", {"step": "dispatch"})
    for sub in (a, b):
        assert await sub.get() == ("verdict", 1, {"verdict": "reject"})
        assert await sub.get() == ("step", 2, {"step": "dispatch"})
    board.unsubscribe(a)
    board.emit("step", {"step": "picking"})
    assert a.queue.empty()
    assert await b.get() == ("step", 3, {"step": "picking"})


async def test_a_subscriber_that_falls_behind_is_closed_and_dropped() -> None:
    board = Board("dock-03")
    slow = board.subscribe()
    for i in range(QUEUE_LIMIT + 10):
        board.emit("step", {"n": i})
    assert slow.closed and board._subscribers == set()
    items = [await slow.get() for _ in range(slow.queue.qsize())]
    assert items[-1] is None  # its page reconnects and starts again from a snapshot
    assert len(items) == QUEUE_LIMIT + 1


async def test_closing_the_board_ends_every_stream() -> None:
    board = Board("dock-03")
    sub = board.subscribe()
    board.close()
    assert await sub.get() is None
