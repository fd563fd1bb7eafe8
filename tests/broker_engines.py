"""Brokers a site scales onto, run by the test itself: a 3-node nats-server JetStream
cluster with MQTT, and RabbitMQ with its MQTT plugin, both the Debian packages.

Each runs as processes the test owns, on free ports of 127.0.0.1, with every file in the
test's temporary directory; nothing touches a system-wide instance. Both speak MQTT
3.1.1 only: they refuse an MQTT 5 CONNECT (NATS with CONNACK return code 1, RabbitMQ
3.10 by closing the connection), which is what ``protocol = "auto"`` is for.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from gatewayd.demo.local_broker import free_port

__all__ = ["NatsCluster", "RabbitMq", "find_nats_server", "find_rabbitmq_server"]


def find_nats_server() -> str | None:
    return shutil.which("nats-server") or next((p for p in ("/usr/sbin/nats-server",) if Path(p).exists()), None)


def find_rabbitmq_server() -> str | None:
    # The real start script, not the /usr/sbin wrapper that changes to the system's user
    # and data directory.
    script = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
    return str(script) if script.exists() and shutil.which("epmd") else None


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited at start (code {proc.returncode}): {log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout:g} s: {log.read_text()[-3000:]}")


def _kill_group(proc: subprocess.Popen[bytes] | None, sig: signal.Signals = signal.SIGKILL) -> None:
    """Signal the process group the test started (the broker and its helpers)."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


class NatsCluster:
    """``with NatsCluster(workdir) as c:``; ``c.mqtt_ports[i]``, ``c.kill(i)``, ``c.start(i)``.

    nats-server's MQTT needs JetStream, which in a cluster needs a ``server_name`` per
    node; the MQTT sessions, retained messages and QoS 1 queues live in JetStream streams,
    here with 3 replicas, so any one node can die without losing them.
    """

    def __init__(self, workdir: Path, *, nodes: int = 3) -> None:
        self.workdir = workdir
        self.nodes = nodes
        self.client_ports = [free_port() for _ in range(nodes)]
        self.route_ports = [free_port() for _ in range(nodes)]
        self.mqtt_ports = [free_port() for _ in range(nodes)]
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * nodes
        self._binary = find_nats_server()

    @property
    def urls(self) -> list[str]:
        return [f"mqtt://127.0.0.1:{p}" for p in self.mqtt_ports]

    def __enter__(self) -> Self:
        try:
            for i in range(self.nodes):
                self.start(i)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def log(self, i: int) -> Path:
        return self.workdir / f"nats-{i + 1}.log"

    def start(self, i: int, timeout: float = 20.0) -> None:
        assert self._binary is not None, "nats-server is not installed"
        self.workdir.mkdir(parents=True, exist_ok=True)
        routes = ", ".join(f'"nats://127.0.0.1:{p}"' for p in self.route_ports)
        conf = self.workdir / f"nats-{i + 1}.conf"
        cluster = (
            f"cluster {{ name: gatewayd-test, listen: 127.0.0.1:{self.route_ports[i]}, routes: [{routes}] }}\n"
            if self.nodes > 1
            else ""
        )
        conf.write_text(
            f"server_name: n{i + 1}\n"
            f"listen: 127.0.0.1:{self.client_ports[i]}\n"
            f'jetstream {{ store_dir: "{self.workdir / f"store-{i + 1}"}" }}\n'
            f"{cluster}"
            f"mqtt {{ listen: 127.0.0.1:{self.mqtt_ports[i]}, stream_replicas: {self.nodes} }}\n"
        )
        with self.log(i).open("ab") as log:
            self.procs[i] = subprocess.Popen(
                [self._binary, "-c", str(conf)],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        proc = self.procs[i]
        assert proc is not None
        _wait_listening(self.mqtt_ports[i], proc, self.log(i), timeout)

    def kill(self, i: int) -> None:
        """``kill -9`` node ``i``: its clients see a reset, its peers a lost route."""
        _kill_group(self.procs[i])
        self.procs[i] = None

    def close(self) -> None:
        for i in range(self.nodes):
            self.kill(i)


class RabbitMq:
    """``with RabbitMq(workdir) as r:``; ``r.mqtt_port``; one node, MQTT plugin enabled.

    Its own epmd on a free port (``ERL_EPMD_PORT``), node name, Mnesia and log
    directories, cookie (``HOME``), config file and enabled-plugins file: it shares nothing
    with a system instance or with another test. Start-up takes 10 to 25 s.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.mqtt_port = free_port()
        self.amqp_port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.node = f"gatewayd-test-{self.mqtt_port}@localhost"
        self.proc: subprocess.Popen[bytes] | None = None
        self.epmd: subprocess.Popen[bytes] | None = None
        self._script = find_rabbitmq_server()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.mqtt_port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "rabbitmq.log"

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self, timeout: float = 90.0) -> None:
        assert self._script is not None, "rabbitmq-server is not installed"
        w = self.workdir
        w.mkdir(parents=True, exist_ok=True)
        (w / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.amqp_port}\n"
            f"mqtt.listeners.tcp.default = 127.0.0.1:{self.mqtt_port}\n"
            "mqtt.allow_anonymous = true\n"
            "loopback_users = none\n"
        )
        (w / "enabled_plugins").write_text("[rabbitmq_mqtt].\n")
        env = dict(
            os.environ,
            HOME=str(w),  # the Erlang cookie
            ERL_EPMD_PORT=str(self.epmd_port),
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(w / "mnesia"),
            RABBITMQ_LOG_BASE=str(w / "log"),
            RABBITMQ_LOGS="-",
            RABBITMQ_PID_FILE=str(w / "rabbitmq.pid"),
            RABBITMQ_CONFIG_FILE=str(w / "rabbitmq.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(w / "enabled_plugins"),
        )
        with (w / "epmd.log").open("ab") as log:
            # Foreground epmd the test owns; otherwise Erlang starts a daemon that outlives it.
            self.epmd = subprocess.Popen(
                ["epmd", "-port", str(self.epmd_port)],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        _wait_listening(self.epmd_port, self.epmd, w / "epmd.log", 10)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [self._script],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=w,
                start_new_session=True,
            )
        _wait_listening(self.mqtt_port, self.proc, self.log_path, timeout)

    def close(self) -> None:
        _kill_group(self.proc)
        self.proc = None
        _kill_group(self.epmd)
        self.epmd = None
