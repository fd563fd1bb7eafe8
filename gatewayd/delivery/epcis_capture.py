"""EPCIS 2.0 REST capture: the EPCIS outbox POSTed to a repository, at least once, in order.

The EPCIS 2.0 REST binding (GS1 EPCIS 2.0 §12, its OpenAPI ``POST /capture``): the body is
an ``EPCISDocument``, the answer ``202 Accepted`` with a ``Location`` naming the capture job,
and ``GET`` on that job says whether it is still ``running`` and whether it ended in
``success``. Documents go in ``seq`` order, up to ``capture_batch`` of them merged into one
``EPCISDocument``; a batch counts as delivered only when its job succeeded, and the cursor
that says so (``capture_cursor`` in the outbox's meta table) is what survives a restart or
``kill -9``: a batch in flight then is sent again, with the same ``eventID`` values.

What an answer means:

* 202 and a job that succeeds: delivered; the cursor moves on.
* No answer, 5xx, 408, 429, or a job that never finishes: sent again after a capped,
  jittered backoff (``Retry-After`` honoured), for as long as it takes.
* 400, 409, 413, 422, or a job that ends without success: the repository refuses these
  documents. A batch of several is split and sent one document at a time, so only the
  refused one is set aside: written to ``state_dir/epcis-refused/<seq>.json`` (it also stays
  in the outbox for ``replay``), an alarm names it, and the next document goes on.
* Any other 4xx (401, 403, 404, 415...): the endpoint or the credentials are wrong for
  every document, so nothing is set aside; the ``epcis_capture_failing`` alarm says so until
  it works again, and the batch is tried again at the longest backoff, with credentials read
  afresh from their files each time.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.client
import json
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import urljoin, urlsplit

from gatewayd.clock import rfc3339
from gatewayd.config import EpcisSettings
from gatewayd.delivery.outbox import Event, Outbox

__all__ = ["CAPTURE_CURSOR", "CaptureSender", "check_capture_files", "merge_documents"]

log = logging.getLogger("gatewayd.epcis")

CAPTURE_CURSOR = "capture_cursor"
# The REST binding's version headers (its OpenAPI: pattern ^\d+(\.\d+)*$, example 2.0.0).
VERSION_HEADERS = {"GS1-EPCIS-Version": "2.0.0", "GS1-CBV-Version": "2.0.0"}
RETRY_STATUSES = frozenset({408, 429})
DOCUMENT_REFUSALS = frozenset({400, 409, 413, 422})
FIRST_RETRY_S = 1.0
JOB_POLL_MIN_S = 0.05
JOB_POLL_MAX_S = 5.0

Alarm = Callable[[str, str | None], None]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class Refused(Exception):
    """The repository refused these documents (a 4xx, or a failed capture job)."""

    def __init__(self, detail: str, *, per_document: bool) -> None:
        super().__init__(detail)
        self.per_document = per_document


class Retry(Exception):
    """Try again later: no answer, a 5xx, 408 or 429, a job that did not finish."""

    def __init__(self, detail: str, *, after: float | None = None) -> None:
        super().__init__(detail)
        self.after = after


def merge_documents(payloads: list[bytes], *, created: str) -> bytes:
    """One EPCISDocument holding the events of several, in order (their header from the first)."""
    docs = [json.loads(p) for p in payloads]
    merged: dict[str, Any] = {k: v for k, v in docs[0].items() if k != "epcisBody"}
    merged["creationDate"] = created
    merged["epcisBody"] = {"eventList": [e for d in docs for e in d["epcisBody"]["eventList"]]}
    return json.dumps(merged, ensure_ascii=False, separators=(",", ":")).encode()


async def _in_thread(fn: Callable[[], T]) -> T:
    """Run blocking ``fn`` in a daemon thread: cancelling the caller does not wait for it,
    so a hung endpoint never holds up the daemon's shutdown."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(value: T | None, exc: BaseException | None) -> None:
        if future.done():
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(value)  # type: ignore[arg-type]

    def run() -> None:
        try:
            value = fn()
        except BaseException as exc:  # handed to the awaiting task
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(settle, None, exc)
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, value, None)

    threading.Thread(target=run, name="gatewayd[epcis].http", daemon=True).start()
    return await future


class CaptureSender:
    """``async with CaptureSender(...)``: runs ``gatewayd[epcis].capture``."""

    def __init__(self, *, outbox: Outbox, settings: EpcisSettings, refused_dir: Path, alarm: Alarm) -> None:
        if settings.capture_url is None:
            raise ValueError("CaptureSender needs epcis.capture_url")
        self.outbox = outbox
        self.settings = settings
        self.url: str = settings.capture_url
        self.refused_dir = refused_dir
        self.alarm = alarm
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._replay: list[list[Event]] = []
        self.captured = 0  # documents the repository accepted since start
        self.refused = 0
        self.last_error: str | None = None
        self._failing_since: float | None = None
        self._holding = False  # the endpoint refuses every document (credentials, URL)
        self._cursor = int(outbox.get_meta(CAPTURE_CURSOR) or 0)

    @property
    def cursor(self) -> int:
        """The last EPCIS outbox seq the endpoint has taken (or that was set aside)."""
        return self._cursor

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run(), name="gatewayd[epcis].capture")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def wake(self) -> None:
        """New documents are in the outbox."""
        self._wake.set()

    def replay(self, events: list[Event]) -> None:
        """Send these documents again (``request/replay``), between regular batches."""
        if events:
            self._replay.append(events)
            self._wake.set()

    # -- the loop ----------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                await self._send_all()
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug or a failing disk must not end capture for good: say it, try again.
                log.exception("epcis: capture sender failed; trying again in %g s", self.settings.capture_retry_max_s)
                await asyncio.sleep(self.settings.capture_retry_max_s)

    async def _send_all(self) -> None:
        delay = FIRST_RETRY_S
        while True:
            if self._replay:
                batch, replaying = self._replay[0][: self.settings.capture_batch], True
            else:
                batch = self.outbox.history(
                    from_seq=self._cursor + 1, to_seq=self.outbox.last_seq, limit=self.settings.capture_batch
                )
                replaying = False
            if not batch:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=1.0)
                continue
            try:
                await self._deliver(batch)
            except Retry as exc:
                self._failing(str(exc))
                wait = exc.after if exc.after is not None else delay
                delay = min(delay * 2, self.settings.capture_retry_max_s)
                await asyncio.sleep(min(wait, self.settings.capture_retry_max_s) * random.uniform(0.8, 1.0))
                continue
            except Refused as exc:
                if not exc.per_document:
                    self._failing(str(exc))
                    self.alarm("epcis_capture_failing", f"{self.url}: {exc}; retrying every few minutes")
                    self._holding = True
                    delay = self.settings.capture_retry_max_s
                    await asyncio.sleep(delay * random.uniform(0.8, 1.0))
                    continue
                if len(batch) > 1:
                    # Find the refused document(s): one at a time, same order.
                    for event in batch:
                        await self._single(event)
                else:
                    self._set_aside(batch[0], str(exc))
            else:
                self.captured += len(batch)
            if replaying:
                rest = self._replay[0][len(batch) :]
                if rest:
                    self._replay[0] = rest
                else:
                    self._replay.pop(0)
            else:
                self.outbox.set_meta(CAPTURE_CURSOR, str(batch[-1].seq))
                self._cursor = batch[-1].seq
            delay = FIRST_RETRY_S
            self._recovered()

    async def _single(self, event: Event) -> None:
        delay = FIRST_RETRY_S
        while True:
            try:
                await self._deliver([event])
            except Retry as exc:
                self._failing(str(exc))
                await asyncio.sleep((exc.after or delay) * random.uniform(0.8, 1.0))
                delay = min(delay * 2, self.settings.capture_retry_max_s)
                continue
            except Refused as exc:
                if not exc.per_document:
                    self._failing(str(exc))
                    await asyncio.sleep(self.settings.capture_retry_max_s)
                    continue
                self._set_aside(event, str(exc))
                return
            self.captured += 1
            return

    def _set_aside(self, event: Event, detail: str) -> None:
        self.refused += 1
        path = self.refused_dir / f"{event.seq}.json"
        try:
            self.refused_dir.mkdir(parents=True, exist_ok=True)
            path.write_bytes(event.payload)
        except OSError as exc:
            log.error("epcis: cannot keep the refused document seq %d in %s: %s", event.seq, path, exc)
        log.error("epcis: the repository refused document seq %d (%s); kept in %s", event.seq, detail, path)
        self.alarm("epcis_capture_refused", f"document seq {event.seq} refused ({detail}); kept in {path}")

    def _failing(self, detail: str) -> None:
        if self._failing_since is None:
            self._failing_since = time.monotonic()
            log.warning("epcis: capture at %s failed, will retry: %s", self.url, detail)
        self.last_error = detail

    def _recovered(self) -> None:
        if self._holding:
            self._holding = False
            self.alarm("epcis_capture_failing", None)
        if self._failing_since is not None:
            log.warning(
                "epcis: capture at %s works again after %.0f s", self.url, time.monotonic() - self._failing_since
            )
            self._failing_since = None
            self.last_error = None

    # -- one batch -------------------------------------------------------------------

    async def _deliver(self, batch: list[Event]) -> None:
        body = merge_documents([e.payload for e in batch], created=rfc3339(time.time()))
        answer = await self._request("POST", self.url, body)
        if answer.status != 202:
            self._judge(answer, f"POST {len(batch)} document(s) from seq {batch[0].seq}")
            # A 2xx other than 202 (a repository that captures synchronously): delivered.
            return
        location = answer.header("location")
        if not location:
            return  # accepted, but no job to follow: the binding makes Location mandatory
        job = urljoin(self.url, location)
        if urlsplit(job)[:2] != urlsplit(self.url)[:2]:
            # The credentials go to the capture endpoint's origin only.
            log.warning("epcis: not following capture job %s on another origin; taking 202 as accepted", job)
            return
        await self._follow(job)

    async def _follow(self, job_url: str) -> None:
        deadline = time.monotonic() + self.settings.capture_job_timeout_s
        poll = JOB_POLL_MIN_S
        while True:
            answer = await self._request("GET", job_url, None)
            if answer.status == 404:
                raise Retry(f"capture job {job_url} is unknown to the endpoint (restarted?)")
            if answer.status != 200:
                self._judge(answer, f"GET capture job {job_url}")
                raise Retry(f"capture job {job_url}: HTTP {answer.status}")
            try:
                job = json.loads(answer.body)
            except ValueError:
                raise Retry(f"capture job {job_url}: not JSON") from None
            if not job.get("running", False):
                if job.get("success", False):
                    return
                errors = job.get("errors") or []
                detail = "; ".join(str(e.get("title") or e.get("type") or e) for e in errors if isinstance(e, dict))
                raise Refused(f"capture job {job_url} failed: {detail or 'no details'}", per_document=True)
            if time.monotonic() > deadline:
                raise Retry(f"capture job {job_url} still running after {self.settings.capture_job_timeout_s:g} s")
            await asyncio.sleep(poll)
            poll = min(poll * 2, JOB_POLL_MAX_S)

    def _judge(self, answer: Answer, what: str) -> None:
        status = answer.status
        if 200 <= status < 300:
            return
        detail = f"{what}: HTTP {status}{_problem(answer.body)}"
        if status >= 500 or status in RETRY_STATUSES:
            raise Retry(detail, after=_retry_after(answer.header("retry-after")))
        if status in DOCUMENT_REFUSALS:
            raise Refused(detail, per_document=True)
        raise Refused(detail, per_document=False)

    async def _request(self, method: str, url: str, body: bytes | None) -> Answer:
        headers = {**VERSION_HEADERS, "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = self.settings.content_type
        try:
            headers.update(self._credentials())
        except OSError as exc:
            raise Retry(f"cannot read the EPCIS credentials: {exc}") from None
        try:
            return await _in_thread(lambda: self._http(method, url, body, headers))
        except (OSError, http.client.HTTPException) as exc:
            raise Retry(f"{method} {url}: {exc or type(exc).__name__}") from None

    def _credentials(self) -> dict[str, str]:
        # Read on every request: a token renewed in its file is used without a restart.
        s = self.settings
        if s.token_file is not None:
            return {"Authorization": f"Bearer {s.token_file.read_text(encoding='utf-8').strip()}"}
        if s.username is not None and s.password_file is not None:
            password = s.password_file.read_text(encoding="utf-8").rstrip("\r\n")
            pair = base64.b64encode(f"{s.username}:{password}".encode()).decode()
            return {"Authorization": f"Basic {pair}"}
        return {}

    def _http(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> Answer:
        parts = urlsplit(url)
        timeout = self.settings.capture_timeout_s
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            context = ssl.create_default_context(
                cafile=str(self.settings.ca_file) if self.settings.ca_file is not None else None
            )
            conn = http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=timeout, context=context)
        else:
            conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
        try:
            path = parts.path or "/"
            if parts.query:
                path += f"?{parts.query}"
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
        finally:
            conn.close()


def check_capture_files(settings: EpcisSettings | None) -> list[str]:
    """Problems with the capture credentials and CA files, by key path (``gatewayd check``)."""
    if settings is None or settings.capture_url is None:
        return []
    problems = []
    for name in ("token_file", "password_file"):
        path = getattr(settings, name)
        if path is None:
            continue
        try:
            if not path.read_text(encoding="utf-8").strip():
                problems.append(f"epcis.{name}: {path} is empty")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"epcis.{name}: cannot read {path} ({exc})")
    if settings.ca_file is not None:
        try:
            ssl.create_default_context(cafile=str(settings.ca_file))
        except (OSError, ssl.SSLError) as exc:
            problems.append(f"epcis.ca_file: cannot use {settings.ca_file} as a CA bundle ({exc})")
    return problems


def _problem(body: bytes) -> str:
    """The RFC 7807 problem's title or type, which the binding's errors carry."""
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    text = data.get("title") or data.get("type") or ""
    return f" ({text})" if text else ""


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: use our own backoff
