"""The durable print-job queue against FakeZebra on a real socket and real SQLite files."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from gatewayd.errors import PayloadError
from gatewayd.printing.jobs import JobSpec, PrinterBinding, PrintJobs
from gatewayd_drivers.fake import RecordingTransport
from gatewayd_drivers.file_printer import FilePrinter
from gatewayd_drivers.tcp_printer import TcpPrinter
from tests.fake_zebra import PASSWORD, FakeZebra

PRINTER = "dock-03-zebra"


def label(i: int) -> bytes:
    return f"^XA^JZN^FO50,50^A0N,40,40^FDSUP1-20261127-{i:04d}^FS^XZ".encode()


def spec(job_id: str, n: int, *, printer: str = PRINTER) -> JobSpec:
    return JobSpec(
        job_id=job_id,
        printer=printer,
        labels=tuple(label(i) for i in range(1, n + 1)),
        total=n,
        lot_ids=tuple(f"SUP1-20261127-{i:04d}" for i in range(1, n + 1)),
        meta={"template": "lot"},
    )


class Recorder:
    """Collects the callbacks' payloads and lets a test wait for one."""

    def __init__(self) -> None:
        self.jobs: list[dict[str, Any]] = []
        self.states: list[dict[str, Any]] = []
        self._changed = asyncio.Condition()
        self._loop = asyncio.get_running_loop()
        self._pending: set[asyncio.Task[None]] = set()

    def on_job(self, printer: str, payload: dict[str, Any]) -> None:
        self.jobs.append({"printer": printer, **payload})
        self._spawn_notify()

    def on_state(self, printer: str, payload: dict[str, Any]) -> None:
        self.states.append({"printer": printer, **payload})
        self._spawn_notify()

    def _spawn_notify(self) -> None:
        task = self._loop.create_task(self._notify())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)

    def job_states(self, job_id: str) -> list[str]:
        return [j["state"] for j in self.jobs if j["job_id"] == job_id]

    def done(self, job_id: str) -> bool:
        return "done" in self.job_states(job_id)


@pytest.fixture
async def fake() -> AsyncIterator[FakeZebra]:
    async with FakeZebra() as printer:
        yield printer


def zebra_jobs(tmp_path: Path, fake: FakeZebra, rec: Recorder, **kw: Any) -> PrintJobs:
    binding = PrinterBinding(
        id=PRINTER,
        transport=TcpPrinter(id=PRINTER, host=fake.host, port=fake.port, timeout=2),
        kind="zpl",
        status_interval=0.05,
        query_timeout=0.3,
        retry_max=0.2,
    )
    return PrintJobs(
        db_path=tmp_path / "jobs.db",
        printers={PRINTER: binding},
        on_job_event=rec.on_job,
        on_printer_state=rec.on_state,
        **kw,
    )


def assert_each_once(fake: FakeZebra, n: int) -> None:
    counts = Counter(fake.labels())
    assert counts == Counter(label(i) for i in range(1, n + 1))


async def test_prints_each_label_once_and_reports(tmp_path: Path, fake: FakeZebra) -> None:
    rec = Recorder()
    async with zebra_jobs(tmp_path, fake, rec) as jobs:
        result = await jobs.submit(spec("J-1", 5))
        assert (result.accepted, result.duplicate, result.state) == (True, False, "queued")
        await rec.wait_for(lambda: rec.done("J-1"))
        status = await jobs.status("J-1")
        assert status is not None
        assert (status["state"], status["printed"], status["total"]) == ("done", 5, 5)
        assert jobs.printer_state(PRINTER)["state"] == "ready"  # type: ignore[index]
    assert_each_once(fake, 5)
    assert rec.job_states("J-1") == ["queued", "printing", "done"]
    assert rec.jobs[-1] == {
        "printer": PRINTER, "job_id": "J-1", "state": "done", "printed": 5, "total": 5,
        "reason": None, "lots": [f"SUP1-20261127-{i:04d}" for i in range(1, 6)], "event_seq": 3,
    }
    assert all(PASSWORD not in repr(s) for s in rec.states)


async def test_job_events_are_durable_until_delivered(tmp_path: Path, fake: FakeZebra) -> None:
    """Nobody took the events (a broker outage): they wait in the store, in order, across a restart."""
    rec = Recorder()
    async with zebra_jobs(tmp_path, fake, rec) as jobs:
        await jobs.submit(spec("J-1", 2))
        await rec.wait_for(lambda: rec.done("J-1"))
    async with zebra_jobs(tmp_path, fake, Recorder()) as jobs:
        pending = await jobs.pending_events(after_seq=0, limit=100)
        assert [(e.seq, e.payload["state"]) for e in pending] == [(1, "queued"), (2, "printing"), (3, "done")]
        assert {**pending[-1].payload, "printer": PRINTER} == rec.jobs[-1]  # reported = stored
        assert pending[-1].payload["lots"] == ["SUP1-20261127-0001", "SUP1-20261127-0002"]
        assert [e.seq for e in await jobs.pending_events(after_seq=1, limit=1)] == [2]
        await jobs.events_delivered([1, 2])
        assert [e.seq for e in await jobs.pending_events(after_seq=0, limit=100)] == [3]
        await jobs.submit(spec("J-2", 1))
        await jobs.events_delivered([3])
        assert (await jobs.pending_events(after_seq=0, limit=100))[0].seq == 4  # never reused


@pytest.mark.parametrize(
    ("trouble", "reason"),
    [
        ("paper_out", "paper_out: paper out (load media to resume)"),
        ("head_open", "head_open: print head open (close the head to resume)"),
        ("ribbon_out", "ribbon_out: ribbon out (load a ribbon to resume)"),
        ("paused", "paused: paused (press PAUSE on the printer, or send ~PS)"),
    ],
)
async def test_holds_until_ready_then_resumes(
    tmp_path: Path, fake: FakeZebra, trouble: Any, reason: str
) -> None:
    rec = Recorder()
    fake.state = trouble
    async with zebra_jobs(tmp_path, fake, rec) as jobs:
        await jobs.submit(spec("J-1", 4))
        await rec.wait_for(lambda: "held" in rec.job_states("J-1"))
        held = next(j for j in rec.jobs if j["state"] == "held")
        assert held["reason"] == reason
        assert held["printed"] == 0
        assert fake.labels() == []
        assert jobs.printer_state(PRINTER)["state"] == trouble  # type: ignore[index]
        fake.state = "ready"
        await rec.wait_for(lambda: rec.done("J-1"))
    assert_each_once(fake, 4)
    assert rec.job_states("J-1") == ["queued", "held", "printing", "done"]
    assert [s["state"] for s in rec.states] == [trouble, "ready"]


async def test_paper_out_mid_batch(tmp_path: Path, fake: FakeZebra) -> None:
    rec = Recorder()
    async with zebra_jobs(tmp_path, fake, rec) as jobs:
        await jobs.submit(spec("J-1", 30))
        await fake.wait_for(lambda: len(fake.labels()) >= 3)
        fake.state = "paper_out"
        await rec.wait_for(lambda: "held" in rec.job_states("J-1"))
        fake.state = "ready"
        await rec.wait_for(lambda: rec.done("J-1"))
    assert_each_once(fake, 30)


async def test_silent_printer_holds(tmp_path: Path, fake: FakeZebra) -> None:
    rec = Recorder()
    fake.silent = True
    async with zebra_jobs(tmp_path, fake, rec) as jobs:
        await jobs.submit(spec("J-1", 2))
        await rec.wait_for(lambda: "held" in rec.job_states("J-1"))
        assert rec.jobs[-1]["reason"].startswith("unknown: no answer to ~HS")
        fake.silent = False
        await rec.wait_for(lambda: rec.done("J-1"))
    assert_each_once(fake, 2)


async def test_printer_drops_connection_mid_batch(tmp_path: Path, fake: FakeZebra) -> None:
    rec = Recorder()
    fake.drop_after_labels = 4
    async with zebra_jobs(tmp_path, fake, rec) as jobs:
        await jobs.submit(spec("J-1", 10))
        await rec.wait_for(lambda: rec.done("J-1"))
        status = await jobs.status("J-1")
    assert fake.drops == 1
    assert len(fake.connections) >= 2
    assert_each_once(fake, 10)
    assert status is not None
    # Label 4 was cut off from its confirmation: reported, not resent.
    assert status["unconfirmed"] == [3]
    assert rec.jobs[-1]["unconfirmed"] == [3]


async def test_unreachable_printer_holds_not_fails(tmp_path: Path) -> None:
    rec = Recorder()
    async with FakeZebra() as fake:
        pass  # the port is now closed
    async with zebra_jobs(tmp_path, fake, rec) as jobs:
        await jobs.submit(spec("J-1", 2))
        await rec.wait_for(lambda: "held" in rec.job_states("J-1"))
        assert rec.jobs[-1]["reason"].startswith("offline: printer dock-03-zebra at 127.0.0.1")
        assert jobs.printer_state(PRINTER)["state"] == "offline"  # type: ignore[index]
    status_db = sqlite3.connect(tmp_path / "jobs.db")
    assert status_db.execute("SELECT state FROM jobs").fetchone() == ("held",)
    status_db.close()


async def test_duplicate_job_id_prints_once(tmp_path: Path, fake: FakeZebra) -> None:
    rec = Recorder()
    async with zebra_jobs(tmp_path, fake, rec) as jobs:
        first = await jobs.submit(spec("J-1", 3))
        again = await jobs.submit(spec("J-1", 3))
        assert (again.accepted, again.duplicate) == (False, True)
        assert again.job_id == first.job_id == "J-1"
        await rec.wait_for(lambda: rec.done("J-1"))
        late = await jobs.submit(spec("J-1", 3))
        assert (late.accepted, late.duplicate, late.state, late.printed) == (False, True, "done", 3)
    async with zebra_jobs(tmp_path, fake, rec) as jobs:
        after_restart = await jobs.submit(spec("J-1", 3))
        assert (after_restart.duplicate, after_restart.state) == (True, "done")
    assert_each_once(fake, 3)


async def test_restart_mid_batch_resumes(tmp_path: Path, fake: FakeZebra) -> None:
    rec = Recorder()
    async with zebra_jobs(tmp_path, fake, rec) as jobs:
        await jobs.submit(spec("J-1", 40))
        await fake.wait_for(lambda: len(fake.labels()) >= 5)
    sent_before = len(fake.labels())
    assert 5 <= sent_before < 40
    status_db = sqlite3.connect(tmp_path / "jobs.db")
    assert status_db.execute("SELECT state, printed FROM jobs").fetchone() == (
        "printing", sent_before,
    )
    status_db.close()
    rec2 = Recorder()
    async with zebra_jobs(tmp_path, fake, rec2) as jobs:
        await rec2.wait_for(lambda: rec2.done("J-1"))
    assert_each_once(fake, 40)


async def test_crash_during_a_send_never_resends_that_label(tmp_path: Path, fake: FakeZebra) -> None:
    rec = Recorder()
    fake.state = "paused"
    async with zebra_jobs(tmp_path, fake, rec) as jobs:
        await jobs.submit(spec("J-1", 3))
        await rec.wait_for(lambda: "held" in rec.job_states("J-1"))
    # What a kill -9 between handing label 1 to the transport and recording it leaves.
    db = sqlite3.connect(tmp_path / "jobs.db")
    db.execute("UPDATE jobs SET inflight = 0")
    db.commit()
    db.close()
    fake.state = "ready"
    rec2 = Recorder()
    async with zebra_jobs(tmp_path, fake, rec2) as jobs:
        await rec2.wait_for(lambda: rec2.done("J-1"))
        status = await jobs.status("J-1")
    assert fake.labels() == [label(2), label(3)]
    assert status is not None
    assert (status["printed"], status["unconfirmed"]) == (3, [0])


async def test_jobs_run_in_order_and_survive_restart_while_queued(
    tmp_path: Path, fake: FakeZebra
) -> None:
    rec = Recorder()
    fake.state = "head_open"
    async with zebra_jobs(tmp_path, fake, rec) as jobs:
        await jobs.submit(spec("J-1", 2))
        await jobs.submit(JobSpec(job_id="J-2", printer=PRINTER, labels=(label(3),), total=1))
        await rec.wait_for(lambda: "held" in rec.job_states("J-1"))
    fake.state = "ready"
    rec2 = Recorder()
    async with zebra_jobs(tmp_path, fake, rec2) as jobs:
        await rec2.wait_for(lambda: rec2.done("J-2"))
    assert fake.labels() == [label(1), label(2), label(3)]


async def test_job_for_removed_printer_fails(tmp_path: Path, fake: FakeZebra) -> None:
    rec = Recorder()
    fake.state = "paper_out"
    async with zebra_jobs(tmp_path, fake, rec) as jobs:
        await jobs.submit(spec("J-1", 2))
        await rec.wait_for(lambda: "held" in rec.job_states("J-1"))
    rec2 = Recorder()
    async with PrintJobs(
        db_path=tmp_path / "jobs.db", printers={}, on_job_event=rec2.on_job,
        on_printer_state=rec2.on_state,
    ) as jobs:
        status = await jobs.status("J-1")
    assert status is not None
    assert (status["state"], status["reason"]) == (
        "failed", "printer 'dock-03-zebra' is no longer configured",
    )
    assert rec2.jobs[0]["state"] == "failed"


@pytest.mark.parametrize(
    ("job", "message"),
    [
        (spec("J-1", 1, printer="nope"), "Unknown printer 'nope': expected one of dock-03-zebra"),
        (JobSpec(job_id="J-1", printer=PRINTER, labels=(), total=0),
         "Job 'J-1' has no labels: expected at least one"),
        (JobSpec(job_id="J-1", printer=PRINTER, labels=(b"^XA^XZ",), total=2),
         "Job 'J-1' says total=2 but carries 1 labels"),
        (JobSpec(job_id="", printer=PRINTER, labels=(b"^XA^XZ",), total=1),
         "job_id is empty: expected a unique, non-empty string"),
    ],
)
async def test_invalid_jobs_are_refused_and_not_recorded(
    tmp_path: Path, fake: FakeZebra, job: JobSpec, message: str
) -> None:
    rec = Recorder()
    async with zebra_jobs(tmp_path, fake, rec) as jobs:
        with pytest.raises(PayloadError) as info:
            await jobs.submit(job)
        assert str(info.value) == message
        assert await jobs.status(job.job_id) is None


async def test_escpos_job_on_a_file(tmp_path: Path) -> None:
    rec = Recorder()
    out = tmp_path / "receipt.bin"
    binding = PrinterBinding(
        id="pack-escpos", transport=FilePrinter(id="pack-escpos", path=out), kind="escpos",
        status_interval=0.05,
    )
    tickets = (b"\x1b@LOT SUP1-0001\n\x1dV\x00", b"\x1b@LOT SUP1-0002\n\x1dV\x00")
    async with PrintJobs(
        db_path=tmp_path / "jobs.db", printers={"pack-escpos": binding},
        on_job_event=rec.on_job, on_printer_state=rec.on_state,
    ) as jobs:
        await jobs.submit(JobSpec(job_id="E-1", printer="pack-escpos", labels=tickets, total=2))
        await rec.wait_for(lambda: rec.done("E-1"))
    assert out.read_bytes() == b"".join(tickets)
    assert rec.states[0]["state"] == "unknown"


async def test_escpos_status_holds_on_cover_open(tmp_path: Path) -> None:
    rec = Recorder()
    t = RecordingTransport(id="pack", answer=b"\x1a\x16\x12\x12")  # offline, cover open
    binding = PrinterBinding(id="pack", transport=t, kind="escpos", status_interval=0.05)
    async with PrintJobs(
        db_path=tmp_path / "jobs.db", printers={"pack": binding},
        on_job_event=rec.on_job, on_printer_state=rec.on_state,
    ) as jobs:
        await jobs.submit(JobSpec(job_id="E-1", printer="pack", labels=(b"one",), total=1))
        await rec.wait_for(lambda: "held" in rec.job_states("E-1"))
        assert rec.jobs[-1]["reason"] == "head_open: cover open (close it to resume)"
        assert t.sent == []
        t.answer = b"\x12\x12\x12\x12"
        await rec.wait_for(lambda: rec.done("E-1"))
    assert t.sent == [b"one"]
    assert t.queries[0] == b"\x10\x04\x01\x10\x04\x02\x10\x04\x03\x10\x04\x04"
