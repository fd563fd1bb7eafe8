"""The HTTP server: starlette routes on uvicorn, in the daemon's own event loop.

Routes (GET and HEAD only; everything else is 404 or 405):

- ``/``: the index, a link to each station's page, and the health.
- ``/stations/{station}``: the station page (one self-contained file, no external assets).
- ``/stations/{station}/state.json``: the page's snapshot.
- ``/stations/{station}/events``: server-sent events (text/event-stream): a snapshot first
  on every connection, then each change as it happens, a ping every ``HEARTBEAT_S``.
- ``/metrics``: Prometheus text format. ``/healthz``: 200, or 503 with the reasons.

Nothing a request names is read from disk: the page is loaded once from the package, so
no path can make the server serve anything else. Scanned data reaches the browser only
as JSON, which the page inserts as text; a Content-Security-Policy allows exactly the
page's own inline script and style (by hash), so injected markup could not run even if
it got into the DOM.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import html
import json
import logging
import re
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from types import TracebackType
from typing import Any, Self

from gatewayd.clock import rfc3339
from gatewayd.config import HttpSettings
from gatewayd.errors import ConfigError
from gatewayd.feedback.service import Feedback
from gatewayd.http.metrics import CONTENT_TYPE, Metrics

__all__ = ["HEARTBEAT_S", "GatewayView", "HttpServer", "build_app"]

log = logging.getLogger("gatewayd.http")

HEARTBEAT_S = 10.0  # a ping this often keeps proxies from closing the stream; the page
# declares the link lost after 2.5 heartbeats of silence
RETRY_MS = 1000  # EventSource reconnect delay


@dataclass(frozen=True, slots=True)
class GatewayView:
    """What the server may ask the gateway: read-only callables, handed in by the daemon."""

    gateway: str
    feedback: Feedback
    metrics: Metrics
    health: Callable[[], list[str]]  # the reasons the gateway is unhealthy; [] = healthy


def _hashes(text: str, tag: str) -> str:
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)  # the page's doc comment names the tags
    blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", text, re.S)
    return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in blocks)


NONE = "'none'"


def _csp(page: str) -> str:
    """A policy that lets exactly this page's inline script and style run (CSP Level 3)."""
    return (
        f"default-src 'none'; script-src {_hashes(page, 'script') or NONE}; "
        f"style-src {_hashes(page, 'style') or NONE}; connect-src 'self'; img-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "
        "require-trusted-types-for 'script'; trusted-types 'none'"
    )


def _security_headers(csp: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


INDEX_STYLE = (
    "body{font:3vh 'DejaVu Sans',sans-serif;background:#0d1216;color:#eef2f4;margin:5vh 6vw}"
    "a{color:#7fc4ff}li{margin:1.5vh 0}small{color:#93a3ad}.bad{color:#ff7b81}.ok{color:#7fe0a4}"
)


def _sse(event: str, data: dict[str, Any], rev: int | None = None) -> bytes:
    # One line of JSON: json.dumps never emits a raw newline, so data cannot end the event.
    head = f"id: {rev}\n" if rev is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n".encode()


def build_app(view: GatewayView, *, closing: asyncio.Event) -> Any:
    """The ASGI application. ``closing`` ends every event stream (shutdown)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    page = resources.files("gatewayd.http").joinpath("station.html").read_text(encoding="utf-8")
    page_headers = _security_headers(_csp(page))
    index_style = f"<style>{INDEX_STYLE}</style>"
    index_headers = _security_headers(_csp(index_style))
    json_headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    feedback = view.feedback

    def station_of(request: Request) -> str | None:
        station = request.path_params["station"]
        return station if station in feedback.boards else None

    def not_found(what: str) -> Response:
        return JSONResponse({"error": f"no such {what}"}, status_code=404, headers=json_headers)

    def snapshot(station: str) -> dict[str, Any]:
        return {
            "schema": "gatewayd.station-view/1",
            "title": station,
            "gateway": view.gateway,
            "heartbeat_s": HEARTBEAT_S,
            "server_time": rfc3339(time.time()),
            **feedback.snapshot(station),
        }

    async def index(request: Request) -> Response:
        reasons = view.health()
        items = "".join(
            f'<li><a href="/stations/{html.escape(s)}">{html.escape(s)}</a></li>' for s in sorted(feedback.boards)
        )
        health = (
            '<p class="ok">healthy</p>'
            if not reasons
            else "<p class=bad>" + "<br>".join(html.escape(r) for r in reasons) + "</p>"
        )
        body = (
            f"<!doctype html><html lang=en><head><meta charset=utf-8><title>gatewayd {html.escape(view.gateway)}"
            f"</title>{index_style}</head><body><h1>gatewayd {html.escape(view.gateway)}</h1>{health}"
            f"<h2>Stations</h2><ul>{items or '<li><small>none configured</small></li>'}</ul>"
            '<p><small><a href="/metrics">metrics</a> · <a href="/healthz">healthz</a></small></p></body></html>'
        )
        return HTMLResponse(body, headers=index_headers)

    async def station_page(request: Request) -> Response:
        if station_of(request) is None:
            return not_found("station")
        return HTMLResponse(page, headers=page_headers)

    async def state_json(request: Request) -> Response:
        station = station_of(request)
        if station is None:
            return not_found("station")
        return JSONResponse(snapshot(station), headers=json_headers)

    async def events(request: Request) -> Response:
        station = station_of(request)
        if station is None:
            return not_found("station")
        if request.method == "HEAD":
            # Headers only: a HEAD must not hold a subscription open for no one.
            return Response(media_type="text/event-stream", headers={"Cache-Control": "no-store"})
        sub = feedback.subscribe(station)

        async def stream() -> AsyncIterator[bytes]:
            try:
                yield f"retry: {RETRY_MS}\n\n".encode()
                snap = snapshot(station)
                yield _sse("snapshot", snap, snap["rev"])
                while not closing.is_set():
                    get = asyncio.ensure_future(sub.get())
                    stop = asyncio.ensure_future(closing.wait())
                    done, _ = await asyncio.wait({get, stop}, timeout=HEARTBEAT_S, return_when=asyncio.FIRST_COMPLETED)
                    stop.cancel()
                    if get not in done:
                        get.cancel()
                        if closing.is_set():
                            return
                        yield _sse("ping", {"server_time": rfc3339(time.time())})
                        continue
                    item = get.result()
                    if item is None:
                        return  # closed: fell behind, or the gateway stops; the page reconnects
                    kind, rev, data = item
                    yield _sse(kind, data, rev)
            finally:
                feedback.unsubscribe(station, sub)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no", "X-Content-Type-Options": "nosniff"},
        )

    async def metrics(request: Request) -> Response:
        return Response(view.metrics.render(), media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})

    async def healthz(request: Request) -> Response:
        reasons = view.health()
        body = {"status": "ok" if not reasons else "unhealthy", "gateway": view.gateway, "reasons": reasons}
        return JSONResponse(body, status_code=200 if not reasons else 503, headers=json_headers)

    get = ["GET", "HEAD"]
    return Starlette(
        routes=[
            Route("/", index, methods=get),
            Route("/stations/{station}", station_page, methods=get),
            Route("/stations/{station}/state.json", state_json, methods=get),
            Route("/stations/{station}/events", events, methods=get),
            Route("/metrics", metrics, methods=get),
            Route("/healthz", healthz, methods=get),
        ]
    )


class HttpServer:
    """``async with HttpServer(settings, view):`` serves until the block ends."""

    def __init__(self, settings: HttpSettings, view: GatewayView) -> None:
        self.settings = settings
        self.view = view
        self.closing = asyncio.Event()
        self.port = settings.port
        self._task: asyncio.Task[None] | None = None
        self._server: Any = None

    def _bind(self) -> socket.socket:
        s = self.settings
        try:
            infos = socket.getaddrinfo(s.host, s.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
            family, kind, proto, _, address = infos[0]
            sock = socket.socket(family, kind, proto)
        except OSError as exc:
            raise ConfigError([f"http.listen: cannot resolve {s.listen} ({exc})"]) from None
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(128)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise ConfigError([f"http.listen: cannot listen on {s.listen} ({exc.strerror or exc})"]) from None
        return sock

    async def __aenter__(self) -> Self:
        import uvicorn

        class _Server(uvicorn.Server):
            # The daemon owns SIGTERM and SIGINT; uvicorn must not install its own handlers.
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield

        sock = self._bind()
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            build_app(self.view, closing=self.closing),
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            proxy_headers=False,
            timeout_graceful_shutdown=2,
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="gatewayd[http].serve")
        deadline = time.monotonic() + 10
        while not self._server.started and not self._task.done() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if self._task.done():
            self._task.result()
        log.info(
            "http: serving station pages, /metrics and /healthz on http://%s:%d/",
            f"[{self.settings.host}]" if ":" in self.settings.host else self.settings.host,
            self.port,
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.closing.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            try:
                async with asyncio.timeout(5):
                    await self._task
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
            except Exception:
                log.exception("http: server failed while stopping")
