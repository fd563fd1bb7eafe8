"""An EPCIS 2.0 capture endpoint on a real socket, scripted by the test.

A small asyncio HTTP/1.1 server in a background thread, speaking the REST binding's capture
interface: ``POST /capture`` → ``202`` + ``Location: /capture/{id}``, and ``GET`` on that job →
``running`` first, then the outcome. The test sets what it answers (:attr:`mode`, or a queue
of answers for the next POSTs), takes it down and brings it back on the same port, and reads
every document it accepted.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import threading
from dataclasses import dataclass, field
from typing import Any

# What the server does with a POST: "accept" (202, job succeeds), "fail_job" (202, the job
# ends without success), or an HTTP status to answer with (400, 401, 503...).
Mode = str


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class CaptureServer:
    tls: ssl.SSLContext | None = None
    mode: Mode = "accept"
    script: list[Mode] = field(default_factory=list)  # answers for the next POSTs, then mode
    requests: list[Request] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)  # documents of succeeded jobs
    port: int = 0
    token: str | None = None  # when set, a request without "Bearer {token}" is answered 401

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, dict[str, Any]] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="capture-server", daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/capture"

    # -- control, from the test's thread ---------------------------------------------------

    def up(self) -> CaptureServer:
        asyncio.run_coroutine_threadsafe(self._up(), self._loop).result(10)
        return self

    def down(self) -> None:
        """Stop listening and drop open connections: the endpoint is unreachable."""
        asyncio.run_coroutine_threadsafe(self._down(), self._loop).result(10)

    def close(self) -> None:
        self.down()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return [e for doc in self.accepted for e in doc["epcisBody"]["eventList"]]

    def posts(self) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.method == "POST"]

    # -- the server --------------------------------------------------------------------

    async def _up(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, ssl=self.tls)

    async def _down(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):  # Server.close leaves accepted connections open
                writer.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, path, _ = line.decode().split(" ", 2)
                headers: dict[str, str] = {}
                while (h := await reader.readline()) not in (b"\r\n", b""):
                    name, value = h.decode().split(":", 1)
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                with self._lock:
                    self.requests.append(Request(method, path, headers, body))
                status, extra, payload = self._answer(method, path, body, headers)
                head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(payload)}\r\n"
                head += "".join(f"{k}: {v}\r\n" for k, v in extra.items())
                writer.write(head.encode() + b"\r\n" + payload)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    def _answer(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            if self.token is not None and headers.get("authorization") != f"Bearer {self.token}":
                problem = {"type": "epcisException:SecurityException", "title": "bad credentials"}
                return 401, {"Content-Type": "application/problem+json"}, json.dumps(problem).encode()
            if method == "POST" and path == "/capture":
                mode = self.script.pop(0) if self.script else self.mode
                if mode in ("accept", "fail_job"):
                    job = f"job{len(self._jobs) + 1}"
                    self._jobs[job] = {"polls": 0, "mode": mode, "document": json.loads(body)}
                    return 202, {"Location": f"/capture/{job}", "GS1-EPCIS-Version": "2.0.0"}, b""
                problem = {"type": "epcisException:ValidationException", "title": f"scripted {mode}"}
                return int(mode), {"Content-Type": "application/problem+json"}, json.dumps(problem).encode()
            if method == "GET" and path.startswith("/capture/"):
                job = self._jobs.get(path.rsplit("/", 1)[1])
                if job is None:
                    return 404, {}, b""
                job["polls"] += 1
                if job["polls"] == 1:  # the first look finds it running
                    state: dict[str, Any] = {"running": True, "success": False, "errors": []}
                elif job["mode"] == "accept":
                    if not job.get("done"):
                        job["done"] = True
                        self.accepted.append(job["document"])
                    state = {"running": False, "success": True, "errors": []}
                else:
                    state = {
                        "running": False,
                        "success": False,
                        "errors": [{"type": "epcisException:ValidationException", "title": "scripted failure"}],
                    }
                return 200, {"Content-Type": "application/json"}, json.dumps(state).encode()
            return 404, {}, b""
