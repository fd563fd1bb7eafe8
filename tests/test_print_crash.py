"""The real daemon killed with SIGKILL mid-batch: every label printed at most once, and
every label not reported ``unconfirmed`` printed exactly once, after the restart."""

from __future__ import annotations

import asyncio
import re
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from gatewayd.demo.local_broker import LocalBroker
from tests.fake_zebra import FakeZebra
from tests.mqtt_tools import DaemonProcess, Subscriber, wait_until, write_config

P = "gatewayd/crash-gw"
LOT_RE = re.compile(rb"SUP9-20261127-\d{4}")


class ThreadedZebra:
    """A FakeZebra served from its own event loop thread, for a daemon in another process."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.zebra = FakeZebra()
        asyncio.run_coroutine_threadsafe(self.zebra.__aenter__(), self.loop).result(10)

    def labels(self) -> list[bytes]:
        return asyncio.run_coroutine_threadsafe(self._labels(), self.loop).result(10)

    async def _labels(self) -> list[bytes]:
        return self.zebra.labels()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.zebra.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def zebra() -> Iterator[ThreadedZebra]:
    z = ThreadedZebra()
    yield z
    z.close()


def test_kill9_mid_batch_prints_each_label_once(broker: LocalBroker, tmp_path: Path, zebra: ThreadedZebra) -> None:
    cfg = write_config(
        tmp_path / "gatewayd.toml",
        f"""
[gateway]
id = "crash-gw"
state_dir = "{tmp_path / "state"}"
[mqtt]
brokers = ["{broker.url}"]
protocol = {broker.protocol}
reconnect_min_s = 0.1
[[stations]]
id = "dock-03"
step = "receiving"
[[printers]]
id = "zebra"
driver = "zpl"
transport = "{zebra.zebra.url}"
status_interval_s = 0.2
""",
    )
    total = 1000
    daemon = DaemonProcess(cfg, tmp_path)
    second = DaemonProcess(cfg, tmp_path)
    try:
        with Subscriber(broker.port, [f"{P}/#"], protocol=broker.protocol) as sub:
            daemon.start()
            sub.wait_for(f"{P}/status", lambda p: p["state"] == "online", timeout=20)
            sub.publish(
                f"{P}/request/print",
                {
                    "transaction": "t",
                    "job_id": "BATCH-9",
                    "printer": "zebra",
                    "batch": {"count": total, "supplier": "SUP9", "date": "2026-11-27"},
                },
            )
            answer = sub.wait_for(f"{P}/response/print", lambda p: p.get("transaction") == "t")
            assert answer["status"] == "ok", answer
            wait_until(lambda: len(zebra.labels()) >= 100, timeout=30, what="100 labels printed")
            daemon.kill9()
            printed_before = len(zebra.labels())
            second.start()
            done = sub.wait_for(
                f"{P}/printers/zebra/jobs", lambda p: p["job_id"] == "BATCH-9" and p["state"] == "done", timeout=60
            )
            # A repeat of the request after the crash is answered, not reprinted.
            sub.publish(
                f"{P}/request/print",
                {
                    "transaction": "t2",
                    "job_id": "BATCH-9",
                    "printer": "zebra",
                    "batch": {"count": total, "supplier": "SUP9", "date": "2026-11-27"},
                },
            )
            again = sub.wait_for(f"{P}/response/print", lambda p: p.get("transaction") == "t2")
            assert again["data"]["duplicate"] is True
            assert second.terminate() == 0
    finally:
        daemon.stop()
        second.stop()
    lots = [m.group(0).decode() for label in zebra.labels() if (m := LOT_RE.search(label))]
    counts = Counter(lots)
    expected = {f"SUP9-20261127-{i:04d}" for i in range(1, total + 1)}
    unconfirmed = {f"SUP9-20261127-{i + 1:04d}" for i in done.get("unconfirmed", [])}
    assert printed_before < total, "the kill did not land mid-batch"
    assert max(counts.values()) == 1, f"printed twice: {[k for k, v in counts.items() if v > 1]}"
    assert set(counts) <= expected
    assert expected - set(counts) <= unconfirmed, (
        f"missing and not reported: {sorted(expected - set(counts) - unconfirmed)}"
    )
    assert done["lots"] == sorted(expected)
