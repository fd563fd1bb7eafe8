"""A TCP proxy on 127.0.0.1 whose cable a test can cut and plug back in.

Between the gateway and the broker it makes the gateway lose its connection while the
broker keeps running (and keeps the gateway's MQTT session). While cut, connections are
accepted and closed at once with a reset, so the gateway sees a broker that drops it.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType
from typing import Self

__all__ = ["TcpProxy"]


def _reset(sock: socket.socket) -> None:
    # SO_LINGER 0: close with RST. shutdown() first, because close() alone neither wakes
    # a pump thread blocked in recv() on this socket nor releases it while it is blocked.
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class TcpProxy:
    """``with TcpProxy(upstream_port) as proxy:``; ``proxy.port``, ``cut()``, ``restore()``."""

    def __init__(self, upstream_port: int, *, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._half_closed: set[tuple[socket.socket, socket.socket]] = set()
        self._cut = False
        self._closed = False
        self.accepted = 0  # connection attempts seen, cut or not
        self.refused = 0  # attempts reset because the cable was cut
        self._thread = threading.Thread(target=self._accept_loop, name=f"tcp-proxy-{self.port}", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def active(self) -> int:
        with self._lock:
            return len(self._pairs)

    def cut(self) -> None:
        """Drop every connection and refuse new ones until :meth:`restore`."""
        with self._lock:
            self._cut = True
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            _reset(a)
            _reset(b)

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        if self._thread.is_alive():
            self._thread.join(5)
        self._listener.close()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            with self._lock:
                self.accepted += 1
                cut = self._cut
            if cut:
                self.refused += 1
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                if self._cut:
                    _reset(client)
                    _reset(upstream)
                    continue
                self._pairs.append((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst, client, upstream), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, a: socket.socket, b: socket.socket) -> None:
        # Ends are passed on as orderly closes, never as resets: a TLS alert sent just
        # before a close must reach the other side intact. Only cut() resets.
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)
                break
            try:
                dst.sendall(data)
            except OSError:
                break
        if self._finish(a, b):
            a.close()
            b.close()

    def _finish(self, a: socket.socket, b: socket.socket) -> bool:
        """Note one direction closed; True when it was the second (the caller closes)."""
        with self._lock:
            key = (a, b)
            if key in self._half_closed:
                self._half_closed.discard(key)
                if key in self._pairs:
                    self._pairs.remove(key)
                return True
            self._half_closed.add(key)
            return False
