"""A private MQTT broker on 127.0.0.1 for the demo and the test suite.

mosquitto when it is installed; otherwise the pure-Python amqtt broker, which speaks
MQTT 3.1.1 only (``protocol`` tells which the gateway must use).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = ["LocalBroker", "find_mosquitto", "free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def find_mosquitto() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None


def _user_name() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return "root" if os.geteuid() == 0 else "nobody"


class LocalBroker:
    """``with LocalBroker(workdir=...) as broker:``; ``broker.port``, ``kill()``, ``start()``.

    The port stays the same across ``kill()``/``start()`` so clients can reconnect.
    ``extra_conf`` adds mosquitto configuration lines to the listener (TLS, passwords).
    """

    def __init__(
        self,
        *,
        workdir: Path,
        port: int | None = None,
        prefer: str = "mosquitto",
        extra_conf: str = "",
        allow_anonymous: bool = True,
    ) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.extra_conf = extra_conf
        self.allow_anonymous = allow_anonymous
        mosquitto = find_mosquitto() if prefer == "mosquitto" else None
        self.kind = "mosquitto" if mosquitto else "amqtt"
        self._mosquitto = mosquitto
        self.protocol = 5 if self.kind == "mosquitto" else 3
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"broker-{self.port}.log"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        if self.kind == "mosquitto":
            conf = self.workdir / f"mosquitto-{self.port}.conf"
            conf.write_text(
                f"listener {self.port} 127.0.0.1\n"
                f"allow_anonymous {'true' if self.allow_anonymous else 'false'}\n"
                "persistence false\n"
                "log_dest stderr\n"
                "log_type error\nlog_type warning\nlog_type notice\n"
                "max_queued_messages 0\n"
                # Requests (feedback, print) are small packets answered at once: without
                # this, Nagle's algorithm can hold one until the gateway's delayed ACK,
                # about 40 ms on Linux.
                "set_tcp_nodelay true\n"
                # Started as root, mosquitto drops to user "mosquitto", which cannot read
                # the certificates and password files in a private work directory.
                f"user {_user_name()}\n"
                f"{self.extra_conf}\n"
            )
            cmd = [str(self._mosquitto), "-c", str(conf)]
        else:
            conf = self.workdir / f"amqtt-{self.port}.yaml"
            conf.write_text(
                "listeners:\n  default:\n    type: tcp\n"
                f"    bind: 127.0.0.1:{self.port}\n"
                "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n    allow_anonymous: true\n"
            )
            amqtt = Path(sys.executable).with_name("amqtt")
            cmd = [str(amqtt), "-c", str(conf)]
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited at start: {self.log_path.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"{self.kind} did not listen on port {self.port} within {timeout} s")

    def kill(self) -> None:
        """``kill -9``: no goodbye to clients, no state kept."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
