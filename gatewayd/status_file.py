"""The status file: what the running daemon says about itself, for ``gatewayd status``.

The daemon writes ``{state_dir}/status.json`` every :data:`REFRESH_S` seconds and soon
after a change (a read, a device or printer state, an alarm, a connection), and a last
time with ``"state": "stopped"`` on an orderly stop. Each write goes to a temporary file
renamed over the old one, so a reader never sees half a file. It needs no broker and no
network: it works when the broker is down, which is when a site engineer asks.

The file names the process that wrote it (pid, boot id, the process's start time since
boot), so a reader tells a running daemon from a file left behind by one that was killed,
crashed, or ran before the machine restarted, and from an unrelated process that got the
same pid since.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gatewayd.payloads import json_bytes

__all__ = [
    "REFRESH_S",
    "STALE_AFTER",
    "STATUS_FILE",
    "ProcessId",
    "StatusReading",
    "read_status",
    "write_status",
]

STATUS_FILE = "status.json"
REFRESH_S = 5.0  # the longest a running daemon leaves the file unwritten
STALE_AFTER = 3  # refreshes missed before the daemon counts as not responding

Liveness = Literal["running", "unresponsive", "stopped", "gone"]


@dataclass(frozen=True, slots=True)
class ProcessId:
    """A process, told apart from any later one with the same pid (proc(5): stat field 22)."""

    pid: int
    boot_id: str | None
    start_ticks: int | None

    @classmethod
    def of(cls, pid: int) -> ProcessId | None:
        """The process ``pid`` as it is now; ``None`` when there is no such live process."""
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return None
        except OSError:  # no /proc here: all that can be known is whether the pid exists
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return None
            except PermissionError:
                pass
            return cls(pid, None, None)
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] in ("Z", "X"):  # a zombie has stopped running, whatever it left behind
            return None
        return cls(pid, _boot_id(), int(fields[19]))

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "boot_id": self.boot_id, "start_ticks": self.start_ticks}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProcessId:
        pid = data.get("pid")
        if not isinstance(pid, int):
            raise ValueError(f"expected an integer pid, got {pid!r}")
        boot_id, ticks = data.get("boot_id"), data.get("start_ticks")
        return cls(pid, boot_id if isinstance(boot_id, str) else None, ticks if isinstance(ticks, int) else None)

    def is_running(self) -> bool:
        """Whether this very process still runs: same pid, same boot, same start time."""
        now = ProcessId.of(self.pid)
        if now is None:
            return False
        same_boot = self.boot_id is None or now.boot_id is None or self.boot_id == now.boot_id
        same_start = self.start_ticks is None or now.start_ticks is None or self.start_ticks == now.start_ticks
        return same_boot and same_start


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def write_status(path: Path, body: Mapping[str, Any]) -> None:
    """Replace the status file atomically (no fsync: it is rewritten within seconds, and
    after a power cut the process it names is gone anyway)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(json_bytes(body))
    os.replace(tmp, path)


@dataclass(frozen=True, slots=True)
class StatusReading:
    """The status file and what it means now.

    ``liveness``: ``running``; ``unresponsive`` (the process runs but has not written for
    :data:`STALE_AFTER` refreshes: its event loop is stuck); ``stopped`` (it said so on an
    orderly stop); ``gone`` (killed, crashed, or from before a restart).
    """

    body: dict[str, Any]
    liveness: Liveness
    age_s: float


def read_status(path: Path, *, now: float | None = None) -> StatusReading:
    """Read the status file; raises ``OSError`` (missing, unreadable) or ``ValueError``."""
    with path.open("rb") as f:
        written = os.fstat(f.fileno()).st_mtime
        body = json.loads(f.read())
    if not isinstance(body, dict) or not isinstance(body.get("process"), dict):
        raise ValueError(f"{path} is not a gatewayd status file")
    age = max(0.0, (time.time() if now is None else now) - written)
    refresh = body.get("refresh_s")
    refresh = float(refresh) if isinstance(refresh, int | float) else REFRESH_S
    liveness: Liveness
    if body.get("state") == "stopped":
        liveness = "stopped"
    elif not ProcessId.from_dict(body["process"]).is_running():
        liveness = "gone"
    elif age > STALE_AFTER * refresh:
        liveness = "unresponsive"
    else:
        liveness = "running"
    return StatusReading(body, liveness, age)
