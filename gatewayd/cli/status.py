"""``gatewayd status``: is the gateway on this machine working?

Read from the status file the running daemon keeps in its state directory
(:mod:`gatewayd.status_file`), so it answers without a broker, a network or systemd, and
at once. Exit status as ``systemctl is-active`` and LSB init scripts have it: 0 running,
1 running but not responding, 3 not running, 4 unknown (the file cannot be read).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from typing import Any

from gatewayd.config import default_config_path, load
from gatewayd.status_file import STATUS_FILE, StatusReading, read_status

__all__ = ["EXIT_NOT_RUNNING", "EXIT_UNKNOWN", "EXIT_UNRESPONSIVE", "cmd_status", "render"]

EXIT_UNRESPONSIVE = 1
EXIT_NOT_RUNNING = 3
EXIT_UNKNOWN = 4

EXIT_BY_LIVENESS = {
    "running": 0,
    "unresponsive": EXIT_UNRESPONSIVE,
    "stopped": EXIT_NOT_RUNNING,
    "gone": EXIT_NOT_RUNNING,
}


def cmd_status(args: argparse.Namespace) -> int:
    config = args.config or default_config_path()
    settings = load(config)
    path = settings.gateway.state_dir / STATUS_FILE
    try:
        reading = read_status(path)
    except FileNotFoundError:
        message = (
            f"gatewayd is not running: no status file at {path} (the gateway writes it while it runs; "
            f"is {config} the config it runs with?)"
        )
        return _not_known(args, message, EXIT_NOT_RUNNING)
    except PermissionError:
        message = f"gatewayd: cannot read {path} (permission denied): run it as root or as the gatewayd user"
        return _not_known(args, message, EXIT_UNKNOWN)
    except (OSError, ValueError) as exc:
        return _not_known(args, f"gatewayd: cannot read {path} ({exc})", EXIT_UNKNOWN)
    if args.json:
        print(json.dumps({"running": reading.liveness in ("running", "unresponsive"),
                          "liveness": reading.liveness, "status_age_s": round(reading.age_s, 1),
                          "status": reading.body}))  # fmt: skip
    else:
        print(render(reading))
    return EXIT_BY_LIVENESS[reading.liveness]


def _not_known(args: argparse.Namespace, message: str, code: int) -> int:
    if args.json:
        print(json.dumps({"running": False if code == EXIT_NOT_RUNNING else None, "liveness": None,
                          "error": message}))  # fmt: skip
    else:
        print(message, file=sys.stderr)
    return code


def _epcis(e: dict[str, Any]) -> str:
    """The EPCIS output in one line: MQTT backlog, and the capture endpoint's state."""
    text = f"{e['depth']} documents undelivered on MQTT" if e.get("depth") else "all documents delivered on MQTT"
    capture = e.get("capture")
    if capture:
        pending = max(0, e.get("last_seq", 0) - capture.get("cursor", 0))
        state = f"FAILING, {pending} waiting ({capture['last_error']})" if capture.get("last_error") else "ok"
        text += f"; capture {capture.get('url')}: {state}"
        if capture.get("refused"):
            text += f"; {capture['refused']} REFUSED (kept in the state directory's epcis-refused/)"
    if e.get("errors"):
        text += f"; {e['errors']} reads could not be mapped (see the log)"
    return text


def render(reading: StatusReading, *, now: float | None = None) -> str:
    """The status for a person: one line on the process, then broker, outbox, stations,
    devices, printers and alarms, each time with how long ago it was."""
    now = time.time() if now is None else now
    b = reading.body
    name = b.get("gateway", "?") + (f" (site {b['site']})" if b.get("site") else "")
    pid = b.get("process", {}).get("pid")
    at = b.get("at")
    if reading.liveness == "running":
        since = _when(b.get("started_at"), now)
        head = f"gatewayd {name}: running since {since}, pid {pid}, version {b.get('version')}"
    elif reading.liveness == "unresponsive":
        head = (
            f"gatewayd {name}: NOT RESPONDING: pid {pid} runs but has not written its status for "
            f"{_age(reading.age_s)} (its event loop is stuck; under systemd the watchdog restarts it)"
        )
    elif reading.liveness == "stopped":
        head = f"gatewayd {name}: not running: stopped in order at {_when(at, now)}"
    else:
        head = (
            f"gatewayd {name}: not running: pid {pid} is gone (killed, crashed, or the machine restarted); "
            f"last status at {_when(at, now)}"
        )
    lines = [head]
    if reading.liveness != "running":
        lines.append("last known state:")
    mqtt = b.get("mqtt", {})
    if mqtt.get("connected"):
        broker = f"connected to {mqtt.get('broker')}"
    else:
        error = f" ({mqtt['last_error']})" if mqtt.get("last_error") else ""
        broker = f"NOT CONNECTED{error}; reads are kept in the outbox"
    lines.append(f"broker:    {broker}")
    box = b.get("outbox", {})
    if box.get("depth"):
        oldest = f", oldest seq {box.get('oldest_undelivered_seq')} read {_when(box.get('oldest_undelivered_at'), now)}"
        outbox = f"{box['depth']} undelivered{oldest}; last seq {box.get('last_seq')}"
    else:
        outbox = f"all delivered; last seq {box.get('last_seq', '-')}"
    if box.get("full"):
        outbox += "; FULL: new reads are refused"
    lines.append(f"outbox:    {outbox}")
    if b.get("epcis"):
        lines.append(f"epcis:     {_epcis(b['epcis'])}")
    stations = b.get("stations", {})
    if stations:
        lines.append("stations:")
        width = max(len(s) for s in stations)
        for sid, st in stations.items():
            last = st.get("last_read")
            read = (
                f"last read {_when(last.get('at'), now)}: seq {last.get('seq')} by {last.get('scanner')}, "
                f"{last.get('kind')}"
                if last
                else "no read since start"
            )
            lines.append(f"  {sid:<{width}}  {st.get('step', '?'):<9}  {read}")
    devices = b.get("devices", {})
    if devices:
        lines.append("scanners:")
        lines += _states(devices, now)
    printers = b.get("printer_states", {})
    if printers:
        lines.append("printers:")
        lines += _states(printers, now)
    alarms = b.get("alarms", [])
    if alarms:
        lines.append("alarms:")
        lines += [f"  {a.get('alarm')}: {a.get('detail')}" for a in alarms]
    else:
        lines.append("alarms:    none")
    return "\n".join(lines)


def _states(states: dict[str, Any], now: float) -> list[str]:
    width = max(len(d) for d in states)
    out = []
    for device, st in states.items():
        since = f" since {_when(st['since'], now)}" if st.get("since") else ""
        detail = f": {st['detail']}" if st.get("detail") else ""
        out.append(f"  {device:<{width}}  {st.get('state', '?')}{since}{detail}")
    return out


def _when(stamp: Any, now: float) -> str:
    """``2026-11-27T10:15:02.123Z (3 min ago)``; ``-`` for nothing."""
    if not isinstance(stamp, str):
        return "-"
    try:
        at = datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return stamp
    return f"{stamp} ({_age(now - at)} ago)"


def _age(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"
